package store

import (
	"bytes"
	"context"
	"sort"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Exchange is one exchange's input: the hash of the value presented, the hash of
// the value it derives (what a rotation stores, and what a reuse within the grace
// period must find), the caller's address, and an access-token lifetime asked
// for (0: none).
type Exchange struct {
	Hash, NextHash []byte
	Now            int64
	Address        string
	TTLSeconds     int32
	Info           []byte
}

// Outcomes of an exchange.
const (
	ExchangeOK           = "ok"
	ExchangeNotFound     = "not-found"
	ExchangeUserGone     = "user-gone"
	ExchangeRefused      = "refused"
	ExchangeReuseRevoked = "reuse-revoked"
	ExchangeBadTTL       = "bad-ttl"
)

// ExchangeResult is what an exchange did. For ExchangeOK: the token (its id is
// the session's, whatever its value), when it now expires, whether the answer
// carries the derived value (a rotation, or a reuse within the grace period)
// rather than the value presented, and the configurations that chose its
// policy, from which the caller picks how to sign the access token.
type ExchangeResult struct {
	Outcome       string    `db:"outcome"`
	TokenID       uuid.UUID `db:"token_id"`
	TenantID      uuid.UUID `db:"tenant_id"`
	UserID        uuid.UUID `db:"user_id"`
	ApplicationID uuid.UUID `db:"application_id"`
	ExpiresAt     int64     `db:"expires_at"`
	AnswerNext    bool      `db:"answer_next"`
	AppJWT        JWTConfig `db:"app_jwt"`
	TenantJWT     JWTConfig `db:"tenant_jwt"`
}

// HistoryGenerations is how many rotated-away values of a session are remembered
// for reuse detection; older ones are forgotten as the session rotates on.
const HistoryGenerations = 32

// exchangeCall is the whole exchange, one database function (migration 00011):
// the lookup, the row lock, the decision by the application's policy, the
// rotation or the revocation of a reused session, and the event.
const exchangeCall = `SELECT ` + exchangeColumns + ` FROM exchange_refresh_token($1, $2, $3, $4, $5, $6, $7)`

// exchangeColumns are an exchange's outcome, with zero values for what an
// outcome other than ok leaves NULL.
const exchangeColumns = `outcome, coalesce(token_id, '00000000-0000-0000-0000-000000000000') AS token_id,
       coalesce(tenant_id, '00000000-0000-0000-0000-000000000000') AS tenant_id,
       coalesce(user_id, '00000000-0000-0000-0000-000000000000') AS user_id,
       coalesce(application_id, '00000000-0000-0000-0000-000000000000') AS application_id,
       coalesce(expires_at, 0) AS expires_at, answer_next,
       coalesce(app_jwt, '{}') AS app_jwt, coalesce(tenant_jwt, '{}') AS tenant_jwt`

// ExchangeStatement is the statement, with its arguments, that
// ExchangeRefreshToken runs: exported so that benchmarks can run exactly it.
func ExchangeStatement(x Exchange) (string, []any) {
	var ttl any
	if x.TTLSeconds != 0 {
		ttl = x.TTLSeconds
	}
	return exchangeCall, []any{x.Hash, x.NextHash, x.Now, x.Address, ttl, jsonArg(x.Info), HistoryGenerations}
}

// ExchangeRefreshToken runs one exchange in one statement; the outcome says what
// happened. Concurrent exchanges commit together (group commit, batch.go), each
// with its own outcome, as if it had run alone.
func (s *Store) ExchangeRefreshToken(ctx context.Context, x Exchange) (ExchangeResult, error) {
	r := &exchangeRequest{x: x, done: make(chan exchangeOutcome, 1)}
	return call(ctx, s.batch.exchanges, r, r.done)
}

type exchangeRequest struct {
	x    Exchange
	done chan exchangeOutcome // buffered: the worker never blocks on it
}

type exchangeOutcome = outcome[ExchangeResult]

// exchangeMany runs a batch of exchanges in one statement, each exactly as
// exchangeCall runs one (migration 00012).
const exchangeMany = `SELECT idx, ` + exchangeColumns + ` FROM exchange_refresh_token_many($1, $2, $3, $4, $5, $6, $7)`

// runExchanges runs a batch of exchanges in one statement and one transaction,
// in the order of their values' hashes (so that two batches lock the rows they
// share in the same order, as far as the values tell). Its context is not any
// one request's: the batch serves them all.
func (b *batcher) runExchanges(batch []*exchangeRequest) {
	if len(batch) == 1 {
		r := batch[0]
		var res ExchangeResult
		query, args := ExchangeStatement(r.x)
		err := retry(func() error { return b.store.db.GetContext(context.Background(), &res, query, args...) })
		r.done <- exchangeOutcome{res, classify(err)}
		return
	}
	batch = append([]*exchangeRequest(nil), batch...) // sorted copy; the caller's order stays
	sort.SliceStable(batch, func(i, j int) bool { return bytes.Compare(batch[i].x.Hash, batch[j].x.Hash) < 0 })
	n := len(batch)
	hashes, nexts := make(pq.ByteaArray, n), make(pq.ByteaArray, n)
	nows, ttls := make(pq.Int64Array, n), make(pq.Int32Array, n)
	addrs, infos := make(pq.StringArray, n), make(pq.StringArray, n)
	for i, r := range batch {
		hashes[i], nexts[i], nows[i], ttls[i] = r.x.Hash, r.x.NextHash, r.x.Now, r.x.TTLSeconds
		addrs[i], infos[i] = r.x.Address, string(pgJSON(r.x.Info))
	}
	results := make([]ExchangeResult, n)
	err := retry(func() error {
		rows, err := b.store.db.Queryx(exchangeMany, hashes, nexts, nows, addrs, ttls, infos, HistoryGenerations)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var row struct {
				Idx int `db:"idx"`
				ExchangeResult
			}
			if err := rows.StructScan(&row); err != nil {
				return err
			}
			results[row.Idx-1] = row.ExchangeResult
		}
		return rows.Err()
	})
	for i, r := range batch {
		r.done <- exchangeOutcome{results[i], classify(err)}
	}
}

// RotationSecret is the installation's key for deriving a rotated token's next
// value; it never changes, so it is read once.
func (s *Store) RotationSecret(ctx context.Context) ([]byte, error) {
	if b := s.secret.Load(); b != nil {
		return *b, nil
	}
	var b []byte
	if err := s.db.GetContext(ctx, &b, `SELECT secret FROM server_secrets WHERE name = 'rotation'`); err != nil {
		return nil, classify(err) // read again next time: the database may have been away
	}
	s.secret.Store(&b)
	return b, nil
}

// reapExpired deletes up to a batch of expired tokens, skipping rows that other
// transactions hold, so that it never waits on or blocks live traffic for long.
const reapExpired = `
DELETE FROM refresh_tokens WHERE id IN (
    SELECT id FROM refresh_tokens WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)`

// reapForgotten deletes up to a batch of the rotated-away values of tokens that
// are gone (revoked, expired, deleted with their user or application).
const reapForgotten = `
DELETE FROM refresh_token_history WHERE token_hash IN (
    SELECT x.token_hash FROM refresh_token_history x
    WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.id = x.token_id)
    LIMIT $1)`

// ReapForgotten deletes up to limit remembered values whose token is gone and
// says how many it deleted.
func (s *Store) ReapForgotten(ctx context.Context, limit int) (int64, error) {
	res, err := s.db.ExecContext(ctx, reapForgotten, limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

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
