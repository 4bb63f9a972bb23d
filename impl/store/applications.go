package store

import (
	"context"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Application owns refresh tokens; its JWT configuration decides their lifetime.
type Application struct {
	ID                uuid.UUID `db:"id"`
	TenantID          uuid.UUID `db:"tenant_id"`
	Name              string    `db:"name"`
	Active            bool      `db:"active"`
	JWT               JWTConfig `db:"jwt_configuration"`
	InsertInstant     int64     `db:"insert_instant"`
	LastUpdateInstant int64     `db:"last_update_instant"`
	// The application as an OAuth client: its unique client id, the SHA-256 of
	// its client secret, and whether the secret is needed.
	ClientID                   string `db:"client_id"`
	ClientSecretHash           []byte `db:"client_secret_hash"`
	ClientAuthenticationPolicy string `db:"client_authentication_policy"`
}

const applicationColumns = `id, tenant_id, name, active, jwt_configuration, insert_instant, last_update_instant,
       client_id, client_secret_hash, client_authentication_policy`

const insertApplication = `
INSERT INTO applications (id, tenant_id, name, active, jwt_configuration, insert_instant, last_update_instant,
                          client_id, client_secret_hash, client_authentication_policy)
VALUES (:id, :tenant_id, :name, :active, :jwt_configuration, :insert_instant, :last_update_instant,
        :client_id, :client_secret_hash, :client_authentication_policy)`

// CreateApplication stores a new application. A taken id is a *ConstraintError on
// applications_pkey, a taken client id one on applications_client_id_key; an
// unknown tenant one on applications_tenant_id_fkey.
func (s *Store) CreateApplication(ctx context.Context, a Application) error {
	_, err := s.db.NamedExecContext(ctx, insertApplication, a)
	return classify(err)
}

const queryApplication = `SELECT ` + applicationColumns + ` FROM applications
WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`

// Application returns one application within the scope, or ErrNotFound.
func (s *Store) Application(ctx context.Context, sc Scope, id uuid.UUID) (Application, error) {
	var a Application
	err := s.db.GetContext(ctx, &a, queryApplication, id, sc.TenantID)
	return a, classify(err)
}

const queryApplicationByClientID = `SELECT ` + applicationColumns + ` FROM applications WHERE client_id = $1`

// ApplicationByClientID returns the application with the given OAuth client id,
// or ErrNotFound.
func (s *Store) ApplicationByClientID(ctx context.Context, clientID string) (Application, error) {
	if pgText(clientID) != clientID { // text no client id can be: PostgreSQL would refuse to compare it
		return Application{}, ErrNotFound
	}
	var a Application
	err := s.db.GetContext(ctx, &a, queryApplicationByClientID, clientID)
	return a, classify(err)
}

const deactivateApplication = `
UPDATE applications SET active = false, last_update_instant = $3
WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`

// DeactivateApplication marks an application inactive; its tokens stay. ErrNotFound
// when it does not exist within the scope.
func (s *Store) DeactivateApplication(ctx context.Context, sc Scope, id uuid.UUID) error {
	return affectedOne(s.db.ExecContext(ctx, deactivateApplication, id, sc.TenantID, NowMillis()))
}

// An application's hard delete first revokes its tokens as a revocation by
// application does — the application locked, the tokens deleted, the event
// recorded — then deletes the application; both in one transaction.
const (
	revokeApplicationTokens = `SELECT app_ok FROM revoke_refresh_tokens($1, NULL, $2, NULL, $3, $4, false)`
	deleteApplication       = `DELETE FROM applications WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`
)

// DeleteApplication deletes an application and all its refresh tokens
// atomically, recording the jwt.refresh-token.revoke event of a revocation by
// application with info. ErrNotFound when it does not exist within the scope.
func (s *Store) DeleteApplication(ctx context.Context, sc Scope, id uuid.UUID, info []byte) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var found bool
		if err := tx.GetContext(ctx, &found, revokeApplicationTokens, sc.TenantID, id, NowMillis(), jsonArg(info)); err != nil {
			return classify(err)
		}
		if !found {
			return ErrNotFound
		}
		return affectedOne(tx.ExecContext(ctx, deleteApplication, id, sc.TenantID))
	})
}
