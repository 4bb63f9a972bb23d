package store

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// ExchangeState is what an exchange decides on: the live token (row-locked), its
// application and tenant, and whether its user is active.
type ExchangeState struct {
	Token       RefreshToken
	Application Application
	Tenant      Tenant
	UserActive  bool
}

// ExchangePlan is what an exchange does to the token it used. The token keeps
// living with StartInstant and ExpiresAt (a sliding window moves them). When
// Successor is set (one-time use), the successor is inserted and the used token
// is deleted, or with RetireAt > 0 expires then (a grace period).
type ExchangePlan struct {
	StartInstant int64
	ExpiresAt    int64
	Successor    *RefreshToken
	RetireAt     int64
}

// ErrExchangeRefused is returned by a decide function to refuse an exchange
// without changing anything.
var ErrExchangeRefused = errors.New("store: exchange refused")

const (
	exchangeFind = `SELECT user_id, application_id FROM refresh_tokens WHERE token_hash = $1 AND expires_at > $2`
	// KEY SHARE on the owners, before the token: the same order as a bulk
	// revocation (owner, then tokens), which takes FOR UPDATE on the user or the
	// application. So an exchange either completes before a bulk revocation of its
	// owner starts deleting, or locks the token after that revocation committed.
	exchangeLockUser = `SELECT active FROM users WHERE id = $1 FOR KEY SHARE`
	exchangeLockApp  = `SELECT id, tenant_id, name, active, jwt_configuration, insert_instant, last_update_instant
FROM applications WHERE id = $1 FOR KEY SHARE`
	// The row lock serialises exchanges of one token (one-time use: exactly one
	// wins) and makes a concurrent revocation of it wait for the outcome.
	exchangeLockToken = `SELECT ` + tokenColumns + ` FROM refresh_tokens
WHERE token_hash = $1 AND expires_at > $2 FOR UPDATE`
	recordEvent    = `SELECT record_event($1, $2, $3, $4, $5, $6, $7)`
	exchangeSlide  = `UPDATE refresh_tokens SET start_instant = $2, expires_at = $3 WHERE id = $1`
	exchangeDelete = `DELETE FROM refresh_tokens WHERE id = $1`
	exchangeRetire = `UPDATE refresh_tokens SET expires_at = least(expires_at, $2) WHERE id = $1`
	exchangeInsert = `
INSERT INTO refresh_tokens (id, tenant_id, user_id, application_id, token_hash, start_instant, insert_instant,
                            expires_at, meta_data)
VALUES (:id, :tenant_id, :user_id, :application_id, :token_hash, :start_instant, :insert_instant, :expires_at,
        :meta_data)`
)

// ExchangeRefreshToken runs one exchange of the live token with the given hash in
// one transaction: it locks the token's user and application, then the token,
// hands the state to decide and applies the plan decide returns. ErrNotFound when
// there is no live token with that hash; decide's error is returned as it is.
//
// The jwt.refresh event (with info as its info object) is recorded in the same
// transaction.
func (s *Store) ExchangeRefreshToken(ctx context.Context, hash []byte, now int64, info []byte,
	decide func(ExchangeState) (ExchangePlan, error)) (ExchangeState, ExchangePlan, error) {
	var state ExchangeState
	var plan ExchangePlan
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var owners struct {
			UserID        uuid.UUID `db:"user_id"`
			ApplicationID uuid.UUID `db:"application_id"`
		}
		if err := tx.GetContext(ctx, &owners, exchangeFind, hash, now); err != nil {
			return classify(err)
		}
		state = ExchangeState{}
		if err := tx.GetContext(ctx, &state.UserActive, exchangeLockUser, owners.UserID); err != nil {
			return classify(err)
		}
		if err := tx.GetContext(ctx, &state.Application, exchangeLockApp, owners.ApplicationID); err != nil {
			return classify(err)
		}
		if err := tx.GetContext(ctx, &state.Token, exchangeLockToken, hash, now); err != nil {
			return classify(err)
		}
		if err := tx.GetContext(ctx, &state.Tenant, queryTenant, state.Token.TenantID); err != nil {
			return classify(err)
		}
		var err error
		if plan, err = decide(state); err != nil {
			return err
		}
		if err := applyPlan(ctx, tx, state.Token, plan); err != nil {
			return err
		}
		current := state.Token.ID
		if plan.Successor != nil {
			current = plan.Successor.ID
		}
		fields, err := json.Marshal(map[string]any{"applicationId": state.Token.ApplicationID, "userId": state.Token.UserID,
			"refreshTokenId": current, "originalRefreshTokenId": state.Token.ID})
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, recordEvent, "jwt.refresh", state.Token.TenantID, state.Token.UserID,
			state.Token.ApplicationID, string(fields), jsonArg(info), now)
		return err
	})
	return state, plan, err
}

func applyPlan(ctx context.Context, tx *sqlx.Tx, used RefreshToken, plan ExchangePlan) error {
	if plan.Successor != nil {
		if _, err := tx.NamedExecContext(ctx, exchangeInsert, plan.Successor); err != nil {
			return classify(err)
		}
		var err error
		if plan.RetireAt > 0 {
			_, err = tx.ExecContext(ctx, exchangeRetire, used.ID, plan.RetireAt)
		} else {
			_, err = tx.ExecContext(ctx, exchangeDelete, used.ID)
		}
		return classify(err)
	}
	if plan.StartInstant != used.StartInstant || plan.ExpiresAt != used.ExpiresAt {
		_, err := tx.ExecContext(ctx, exchangeSlide, used.ID, plan.StartInstant, plan.ExpiresAt)
		return classify(err)
	}
	return nil
}

// reapExpired deletes up to a batch of expired tokens, skipping rows that other
// transactions hold, so that it never waits on or blocks live traffic for long.
const reapExpired = `
DELETE FROM refresh_tokens WHERE id IN (
    SELECT id FROM refresh_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`

// ReapExpired deletes up to limit expired tokens and says how many it deleted.
func (s *Store) ReapExpired(ctx context.Context, now int64, limit int) (int64, error) {
	res, err := s.db.ExecContext(ctx, reapExpired, now, limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SigningKey signs access tokens of one tenant with one algorithm.
type SigningKey struct {
	ID            uuid.UUID `db:"id"`
	TenantID      uuid.UUID `db:"tenant_id"`
	Algorithm     string    `db:"algorithm"`
	Secret        []byte    `db:"secret"`
	InsertInstant int64     `db:"insert_instant"`
}

const (
	querySigningKey  = `SELECT id, tenant_id, algorithm, secret, insert_instant FROM signing_keys WHERE tenant_id = $1 AND algorithm = $2`
	querySigningKeys = `SELECT id, tenant_id, algorithm, secret, insert_instant FROM signing_keys ORDER BY insert_instant, id`
	insertSigningKey = `
INSERT INTO signing_keys (id, tenant_id, algorithm, secret, insert_instant)
VALUES (:id, :tenant_id, :algorithm, :secret, :insert_instant)
ON CONFLICT (tenant_id, algorithm) DO NOTHING`
	queryTenantIDs = `SELECT id FROM tenants ORDER BY insert_instant, id`
)

// SigningKey returns the key of a tenant for an algorithm, or ErrNotFound.
func (s *Store) SigningKey(ctx context.Context, tenantID uuid.UUID, alg string) (SigningKey, error) {
	var k SigningKey
	err := s.db.GetContext(ctx, &k, querySigningKey, tenantID, alg)
	return k, classify(err)
}

// SigningKeys returns every signing key.
func (s *Store) SigningKeys(ctx context.Context) ([]SigningKey, error) {
	var keys []SigningKey
	err := s.db.SelectContext(ctx, &keys, querySigningKeys)
	return keys, err
}

// AddSigningKey stores k unless the tenant already has a key for its algorithm
// (another server may have made one first); the caller reads the winner back.
func (s *Store) AddSigningKey(ctx context.Context, k SigningKey) error {
	_, err := s.db.NamedExecContext(ctx, insertSigningKey, k)
	return classify(err)
}

// TenantIDs lists every tenant.
func (s *Store) TenantIDs(ctx context.Context) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	err := s.db.SelectContext(ctx, &ids, queryTenantIDs)
	return ids, err
}
