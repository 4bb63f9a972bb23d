package store

import (
	"context"
	"database/sql/driver"

	"github.com/google/uuid"
)

// APIKey authenticates requests. Only the SHA-256 of the key value is stored.
type APIKey struct {
	ID            uuid.UUID   `db:"id"`
	KeyHash       []byte      `db:"key_hash"`
	TenantID      *uuid.UUID  `db:"tenant_id"`
	Permissions   Permissions `db:"permissions"`
	Description   string      `db:"description"`
	InsertInstant int64       `db:"insert_instant"`
}

// Permissions limits a key to endpoint+method pairs; no endpoints means all.
type Permissions struct {
	Endpoints map[string][]string `json:"endpoints,omitempty"`
}

// Value stores the permissions as jsonb.
func (p Permissions) Value() (driver.Value, error) { return jsonText(p) }

// Scan reads the permissions from jsonb.
func (p *Permissions) Scan(src any) error { return scanJSON(src, p) }

// Unrestricted reports whether the key may call every endpoint of every tenant.
func (k APIKey) Unrestricted() bool {
	return k.TenantID == nil && len(k.Permissions.Endpoints) == 0
}

// Allows reports whether the key may call method on endpoint (a route without its
// trailing path parameters, e.g. /api/jwt/refresh).
func (k APIKey) Allows(endpoint, method string) bool {
	if len(k.Permissions.Endpoints) == 0 {
		return true
	}
	for _, m := range k.Permissions.Endpoints[endpoint] {
		if m == method {
			return true
		}
	}
	return false
}

// The tenant check rides along so that authentication costs one round trip.
const queryAPIKey = `
SELECT k.id, k.key_hash, k.tenant_id, k.permissions, k.description, k.insert_instant,
       ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM tenants t WHERE t.id = $2)) AS tenant_exists
FROM api_keys k
WHERE k.key_hash = $1`

// Authenticate finds the key with the given hash and reports whether the optional
// tenant id names an existing tenant. ErrNotFound when no key has that hash.
func (s *Store) Authenticate(ctx context.Context, keyHash []byte, tenantID *uuid.UUID) (APIKey, bool, error) {
	var row struct {
		APIKey
		TenantExists bool `db:"tenant_exists"`
	}
	err := s.db.GetContext(ctx, &row, queryAPIKey, keyHash, tenantID)
	return row.APIKey, row.TenantExists, classify(err)
}

const insertAPIKey = `
INSERT INTO api_keys (id, key_hash, tenant_id, permissions, description, insert_instant)
VALUES (:id, :key_hash, :tenant_id, :permissions, :description, :insert_instant)`

// CreateAPIKey stores a key. A *ConstraintError names api_keys_pkey or
// api_keys_key_hash_key (taken), or api_keys_tenant_id_fkey (unknown tenant).
func (s *Store) CreateAPIKey(ctx context.Context, k APIKey) error {
	_, err := s.db.NamedExecContext(ctx, insertAPIKey, k)
	return classify(err)
}

const ensureAPIKey = `
INSERT INTO api_keys (id, key_hash, tenant_id, permissions, description, insert_instant)
VALUES (:id, :key_hash, :tenant_id, :permissions, :description, :insert_instant)
ON CONFLICT (key_hash) DO NOTHING`

// EnsureAPIKey stores k unless a key with the same hash exists.
func (s *Store) EnsureAPIKey(ctx context.Context, k APIKey) error {
	_, err := s.db.NamedExecContext(ctx, ensureAPIKey, k)
	return classify(err)
}

// CountAPIKeys returns how many keys exist.
func (s *Store) CountAPIKeys(ctx context.Context) (int, error) {
	var n int
	err := s.db.GetContext(ctx, &n, `SELECT count(*) FROM api_keys`)
	return n, err
}

const queryAPIKeyByID = `
SELECT id, key_hash, tenant_id, permissions, description, insert_instant FROM api_keys WHERE id = $1`

// APIKeyByID returns a key, or ErrNotFound.
func (s *Store) APIKeyByID(ctx context.Context, id uuid.UUID) (APIKey, error) {
	var k APIKey
	err := s.db.GetContext(ctx, &k, queryAPIKeyByID, id)
	return k, classify(err)
}

// DeleteAPIKey deletes a key; ErrNotFound when absent.
func (s *Store) DeleteAPIKey(ctx context.Context, id uuid.UUID) error {
	return affectedOne(s.db.ExecContext(ctx, `DELETE FROM api_keys WHERE id = $1`, id))
}
