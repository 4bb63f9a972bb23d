package store

import (
	"context"
	"database/sql"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// User owns refresh tokens. Email and username are unique within a tenant,
// ignoring case. No password is stored: this service has no login.
type User struct {
	ID                uuid.UUID  `db:"id"`
	TenantID          uuid.UUID  `db:"tenant_id"`
	Email             *string    `db:"email"`
	Username          *string    `db:"username"`
	FirstName         *string    `db:"first_name"`
	LastName          *string    `db:"last_name"`
	FullName          *string    `db:"full_name"`
	Data              JSONObject `db:"data"`
	Active            bool       `db:"active"`
	InsertInstant     int64      `db:"insert_instant"`
	LastUpdateInstant int64      `db:"last_update_instant"`
}

const insertUser = `
INSERT INTO users (id, tenant_id, email, username, first_name, last_name, full_name, data, active,
                   insert_instant, last_update_instant)
VALUES (:id, :tenant_id, :email, :username, :first_name, :last_name, :full_name, :data, :active,
        :insert_instant, :last_update_instant)`

// CreateUser stores a new user. A *ConstraintError names users_pkey (taken id),
// users_email_key or users_username_key (taken within the tenant), or
// users_tenant_id_fkey (unknown tenant).
func (s *Store) CreateUser(ctx context.Context, u User) error {
	_, err := s.db.NamedExecContext(ctx, insertUser, u)
	return classify(err)
}

const queryUser = `
SELECT id, tenant_id, email, username, first_name, last_name, full_name, data, active,
       insert_instant, last_update_instant
FROM users
WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`

// User returns one user within the scope, or ErrNotFound.
func (s *Store) User(ctx context.Context, sc Scope, id uuid.UUID) (User, error) {
	var u User
	err := s.db.GetContext(ctx, &u, queryUser, id, sc.TenantID)
	return u, classify(err)
}

const deactivateUser = `
UPDATE users SET active = false, last_update_instant = $3
WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`

// DeactivateUser marks a user inactive; ErrNotFound when absent from the scope.
func (s *Store) DeactivateUser(ctx context.Context, sc Scope, id uuid.UUID) error {
	return affectedOne(s.db.ExecContext(ctx, deactivateUser, id, sc.TenantID, NowMillis()))
}

// A user's hard delete first revokes their tokens as a revocation by user does —
// the user locked, the tokens deleted, the event recorded when one was live —
// then deletes the user; both in one transaction.
const (
	revokeUserTokens = `SELECT user_ok FROM revoke_refresh_tokens($1, $2, NULL, NULL, $3, $4, false)`
	deleteUser       = `DELETE FROM users WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2)`
)

// DeleteUser deletes a user and all their refresh tokens atomically, recording
// the jwt.refresh-token.revoke event of a revocation by user with info;
// ErrNotFound when absent from the scope.
func (s *Store) DeleteUser(ctx context.Context, sc Scope, id uuid.UUID, info []byte) error {
	return s.inTx(ctx, func(tx *sqlx.Tx) error {
		var found bool
		if err := tx.GetContext(ctx, &found, revokeUserTokens, sc.TenantID, id, NowMillis(), jsonArg(info)); err != nil {
			return classify(err)
		}
		if !found {
			return ErrNotFound
		}
		return affectedOne(tx.ExecContext(ctx, deleteUser, id, sc.TenantID))
	})
}

// affectedOne maps "no row affected" to ErrNotFound.
func affectedOne(res sql.Result, err error) error {
	if err != nil {
		return classify(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}
