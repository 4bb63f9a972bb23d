package store

import (
	"context"
	"errors"

	"github.com/google/uuid"
)

// Tenant is an isolated set of applications, users, tokens and keys.
type Tenant struct {
	ID            uuid.UUID `db:"id"`
	Name          string    `db:"name"`
	IsDefault     bool      `db:"is_default"`
	JWT           JWTConfig `db:"jwt_configuration"`
	InsertInstant int64     `db:"insert_instant"`
}

const tenantColumns = `id, name, is_default, jwt_configuration, insert_instant`

const queryDefaultTenant = `SELECT ` + tenantColumns + ` FROM tenants WHERE is_default`

// DefaultTenant returns the tenant created at first start, which receives objects
// created without a tenant.
func (s *Store) DefaultTenant(ctx context.Context) (Tenant, error) {
	var t Tenant
	err := s.db.GetContext(ctx, &t, queryDefaultTenant)
	return t, classify(err)
}

const queryTenant = `SELECT ` + tenantColumns + ` FROM tenants WHERE id = $1`

// Tenant returns one tenant, or ErrNotFound.
func (s *Store) Tenant(ctx context.Context, id uuid.UUID) (Tenant, error) {
	var t Tenant
	err := s.db.GetContext(ctx, &t, queryTenant, id)
	return t, classify(err)
}

const insertTenant = `
INSERT INTO tenants (id, name, jwt_configuration, insert_instant)
VALUES (:id, :name, :jwt_configuration, :insert_instant)`

// CreateTenant stores a new tenant. A taken id or name is a *ConstraintError
// (constraints tenants_pkey, tenants_name_key).
func (s *Store) CreateTenant(ctx context.Context, t Tenant) error {
	_, err := s.db.NamedExecContext(ctx, insertTenant, t)
	return classify(err)
}

// deleteTenant removes a tenant; everything in it goes by ON DELETE CASCADE, in
// this one statement. The default tenant is never deleted.
const deleteTenant = `DELETE FROM tenants WHERE id = $1 AND NOT is_default`

// ErrDefaultTenant is returned when a change would remove the default tenant.
var ErrDefaultTenant = errors.New("store: the default tenant cannot be deleted")

// DeleteTenant deletes a tenant and everything in it. ErrNotFound when there is no
// such tenant, ErrDefaultTenant when it is the default one.
func (s *Store) DeleteTenant(ctx context.Context, id uuid.UUID) error {
	err := retry(func() error { return affectedOne(s.db.ExecContext(ctx, deleteTenant, id)) })
	if errors.Is(err, ErrNotFound) {
		if t, lookErr := s.Tenant(ctx, id); lookErr == nil && t.IsDefault {
			return ErrDefaultTenant
		}
	}
	return err
}
