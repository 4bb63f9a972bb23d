package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Presented says how the value an exchange was given relates to its token.
type Presented int

const (
	// PresentedCurrent is the token's current value.
	PresentedCurrent Presented = iota
	// PresentedPrevious is the value the last rotation replaced, within its grace period.
	PresentedPrevious
	// PresentedRetired is a value rotated away earlier, or after its grace period: a reuse.
	PresentedRetired
)

// ExchangeState is what an exchange decides on: the live token (row-locked), how
// the value presented relates to it, its application and tenant (with the
// tenant's rotation secret), and whether its user is active.
type ExchangeState struct {
	Token          RefreshToken
	Presented      Presented
	Application    Application
	Tenant         Tenant
	RotationSecret []byte
	UserActive     bool
}

// ExchangePlan is what an exchange does to its token. The token keeps living with
// StartInstant and ExpiresAt (a sliding window moves them); its metadata records
// the access (now, LastAccessedAddress). With NextHash set (one-time use) its
// value rotates in place: same row and id, the next generation, and the value
// presented is remembered as history, answering with the current value until
// GraceUntil. With Revoke set (a detected reuse) the token is revoked instead,
// with its jwt.refresh-token.revoke event, and nothing else happens.
type ExchangePlan struct {
	StartInstant        int64
	ExpiresAt           int64
	LastAccessedAddress string
	NextHash            []byte
	GraceUntil          int64
	Revoke              bool
}

// ErrExchangeRefused is returned by a decide function to refuse an exchange
// without changing anything.
var ErrExchangeRefused = errors.New("store: exchange refused")

// ErrUserGone is returned when the token's user was deleted while the exchange
// looked the token up.
var ErrUserGone = errors.New("store: the token's user is gone")

// HistoryGenerations is how many rotated-away values of a session are remembered
// for reuse detection; older ones are forgotten as the session rotates on.
const HistoryGenerations = 32

const (
	// exchangeFind finds the token a value names: as its current value, or as a
	// value it rotated away.
	exchangeFind = `
SELECT r.id, r.user_id, r.application_id FROM refresh_tokens r WHERE r.token_hash = $1 AND r.expires_at > $2
UNION ALL
SELECT r.id, r.user_id, r.application_id
FROM refresh_token_history h JOIN refresh_tokens r ON r.id = h.token_id
WHERE h.token_hash = $1 AND r.expires_at > $2
LIMIT 1`
	// KEY SHARE on the owners, before the token: the same order as a bulk
	// revocation (owner, then tokens), which takes FOR UPDATE on the user or the
	// application. So an exchange either completes before a bulk revocation of its
	// owner starts deleting, or locks the token after that revocation committed.
	exchangeLockUser = `SELECT active FROM users WHERE id = $1 FOR KEY SHARE`
	exchangeLockApp  = `
SELECT a.id, a.tenant_id, a.name, a.active, a.jwt_configuration, a.insert_instant, a.last_update_instant,
       t.id AS "tenant.id", t.name AS "tenant.name", t.is_default AS "tenant.is_default",
       t.jwt_configuration AS "tenant.jwt_configuration", t.insert_instant AS "tenant.insert_instant",
       t.rotation_secret
FROM applications a JOIN tenants t ON t.id = a.tenant_id
WHERE a.id = $1 FOR KEY SHARE OF a`
	// The row lock, by id, serialises exchanges of one session (one-time use:
	// exactly one rotates) and makes a concurrent revocation of it wait for the
	// outcome. A rotation that committed while this waited is seen here: the row
	// comes back as it is now.
	exchangeLockToken = `SELECT ` + tokenColumns + ` FROM refresh_tokens WHERE id = $1 AND expires_at > $2 FOR UPDATE`
	// A separate statement, so that it sees a rotation committed while the lock
	// above waited.
	exchangeHistory = `SELECT generation, grace_until FROM refresh_token_history WHERE token_hash = $1 AND token_id = $2`

	// exchangeApply moves the token's window, records the access in its metadata,
	// rotates its value when told to (remembering the old one and forgetting the
	// oldest), and records the jwt.refresh event: one statement.
	exchangeApply = `
WITH upd AS (
    UPDATE refresh_tokens SET
        start_instant = $2, expires_at = $3,
        token_hash = coalesce($4, token_hash),
        generation = generation + CASE WHEN $4::bytea IS NULL THEN 0 ELSE 1 END,
        meta_data = coalesce(meta_data, '{}'::jsonb) || jsonb_build_object('device',
            CASE WHEN jsonb_typeof(meta_data -> 'device') = 'object' THEN meta_data -> 'device' ELSE '{}'::jsonb END
            || jsonb_strip_nulls(jsonb_build_object('lastAccessedInstant', $7::bigint,
                                                    'lastAccessedAddress', nullif($8::text, ''))))
    WHERE id = $1
    RETURNING id
), remember AS (
    INSERT INTO refresh_token_history (token_hash, token_id, generation, grace_until)
    SELECT $5, $1, $6, $9 WHERE $4::bytea IS NOT NULL
    ON CONFLICT (token_hash) DO UPDATE
        SET token_id = EXCLUDED.token_id, generation = EXCLUDED.generation, grace_until = EXCLUDED.grace_until
), forget AS (
    DELETE FROM refresh_token_history
    WHERE $4::bytea IS NOT NULL AND token_id = $1 AND generation <= $6 - $10::integer
)
SELECT record_event('jwt.refresh', $11, $12, $13, $14, $15, $7) FROM upd`
	exchangeRevoke = `SELECT revoked FROM revoke_refresh_token(NULL, NULL, NULL, NULL, $1, $2, $3)`
)

// ExchangeRefreshToken runs one exchange of the token a value names (by its hash:
// the current value, or a value it rotated away) in one transaction: it locks the
// token's user and application, then the token, hands the state to decide and
// applies the plan decide returns. ErrNotFound when no live token has or had
// that value, ErrUserGone when its user was deleted meanwhile; decide's error is
// returned as it is.
//
// The jwt.refresh event (with info as its info object) is recorded in the same
// transaction; a revocation (a detected reuse) records its own event instead.
func (s *Store) ExchangeRefreshToken(ctx context.Context, hash []byte, now int64, info []byte,
	decide func(ExchangeState) (ExchangePlan, error)) (ExchangeState, ExchangePlan, error) {
	var state ExchangeState
	var plan ExchangePlan
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		var found struct {
			ID            uuid.UUID `db:"id"`
			UserID        uuid.UUID `db:"user_id"`
			ApplicationID uuid.UUID `db:"application_id"`
		}
		if err := tx.GetContext(ctx, &found, exchangeFind, hash, now); err != nil {
			return classify(err)
		}
		state = ExchangeState{}
		if err := tx.GetContext(ctx, &state.UserActive, exchangeLockUser, found.UserID); err != nil {
			if err = classify(err); errors.Is(err, ErrNotFound) {
				return ErrUserGone
			}
			return err
		}
		var app struct {
			Application
			Tenant         Tenant `db:"tenant"`
			RotationSecret []byte `db:"rotation_secret"`
		}
		if err := tx.GetContext(ctx, &app, exchangeLockApp, found.ApplicationID); err != nil {
			return classify(err)
		}
		state.Application, state.Tenant, state.RotationSecret = app.Application, app.Tenant, app.RotationSecret
		if err := tx.GetContext(ctx, &state.Token, exchangeLockToken, found.ID, now); err != nil {
			return classify(err)
		}
		if !bytes.Equal(state.Token.TokenHash, hash) {
			var h struct {
				Generation int32 `db:"generation"`
				GraceUntil int64 `db:"grace_until"`
			}
			if err := tx.GetContext(ctx, &h, exchangeHistory, hash, found.ID); err != nil {
				return classify(err) // forgotten meanwhile: as if never issued
			}
			state.Presented = PresentedRetired
			if h.Generation == state.Token.Generation-1 && now < h.GraceUntil {
				state.Presented = PresentedPrevious
			}
		}
		var err error
		if plan, err = decide(state); err != nil {
			return err
		}
		if plan.Revoke {
			_, err := tx.ExecContext(ctx, exchangeRevoke, state.Token.ID, now, jsonArg(info))
			return err
		}
		fields, err := json.Marshal(map[string]any{"applicationId": state.Token.ApplicationID,
			"userId": state.Token.UserID, "refreshTokenId": state.Token.ID})
		if err != nil {
			return err
		}
		var nextHash any
		if plan.NextHash != nil {
			nextHash = plan.NextHash
		}
		var eventID uuid.UUID
		err = tx.GetContext(ctx, &eventID, exchangeApply, state.Token.ID, plan.StartInstant, plan.ExpiresAt,
			nextHash, state.Token.TokenHash, state.Token.Generation, now, plan.LastAccessedAddress, plan.GraceUntil,
			HistoryGenerations, state.Token.TenantID, state.Token.UserID, state.Token.ApplicationID,
			string(fields), jsonArg(info))
		return classify(err)
	})
	return state, plan, err
}

// reapExpired deletes up to a batch of expired tokens, skipping rows that other
// transactions hold, so that it never waits on or blocks live traffic for long.
// The values they rotated away go with them.
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
	querySigningKey     = `SELECT id, tenant_id, algorithm, secret, insert_instant FROM signing_keys WHERE tenant_id = $1 AND algorithm = $2`
	querySigningKeyByID = `SELECT id, tenant_id, algorithm, secret, insert_instant FROM signing_keys WHERE id = $1`
	querySigningKeys    = `SELECT id, tenant_id, algorithm, secret, insert_instant FROM signing_keys ORDER BY insert_instant, id`
	insertSigningKey    = `
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

// SigningKeyByID returns a signing key by its id (the kid of the tokens it
// signed), or ErrNotFound.
func (s *Store) SigningKeyByID(ctx context.Context, id uuid.UUID) (SigningKey, error) {
	var k SigningKey
	err := s.db.GetContext(ctx, &k, querySigningKeyByID, id)
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
