package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"refreshd/impl/store"
)

// The minimal SQL of each scenario: the least plain SQL that leaves the database
// in the state the server's request leaves it in, written here and not taken
// from the store, so that the distance between the two is what our SQL (and our
// server) adds to what the work needs. The contract fixes that work: delete the
// tokens (or, for an exchange, record the access on the token), record one event
// in the same transaction, and one delivery row for each webhook that wants it.
// Each is one statement, hence one transaction and one round trip. What the
// minimal leaves out, because it changes no row: the existence checks of the
// named user and application (the 404 case), the user object and the
// access-token lifetimes in the revoke event's body (it holds the ids), and, for
// the exchange, the policy lookup (user and application active, their
// configuration) and the access token itself.
//
// Import and validation have no minimal of their own: the raw side already is
// it (a COPY; one EXISTS lookup).

// minimalDeliveries fans an event out to the webhooks that want it, as
// record_event does: it follows an "ev" CTE returning seq, tenant_id and type,
// and takes the event's time as $2.
const minimalDeliveries = `
dl AS (INSERT INTO deliveries (webhook_id, event_seq, next_attempt_at)
       SELECT w.id, ev.seq, $2::bigint FROM ev JOIN webhooks w
       ON ev.type = ANY (w.events_enabled) AND (w.global OR ev.tenant_id = ANY (w.tenant_ids)))`

// minimalEventColumns are the events columns every minimal statement fills.
const minimalEventColumns = `INSERT INTO events (id, tenant_id, type, create_instant, user_id, application_id, body)`

// Revoke one token by its value's hash ($1) at $2; $3 is the event's id, $4 its
// info. The event only when a live token was deleted. Returns the tokens deleted.
const minimalRevokeToken = `
WITH d AS (DELETE FROM refresh_tokens WHERE token_hash = $1 AND expires_at > $2::bigint
           RETURNING id, tenant_id, user_id, application_id),
ev AS (` + minimalEventColumns + `
       SELECT $3::uuid, d.tenant_id, 'jwt.refresh-token.revoke', $2::bigint, d.user_id, d.application_id,
              jsonb_build_object('id', $3::uuid, 'type', 'jwt.refresh-token.revoke', 'createInstant', $2::bigint,
                  'tenantId', d.tenant_id, 'userId', d.user_id, 'applicationId', d.application_id,
                  'refreshTokenId', d.id, 'info', $4::jsonb)
       FROM d
       RETURNING seq, tenant_id, type),` + minimalDeliveries + `
SELECT count(*) FROM d`

// Revoke every token of user $1 at $2 ($3 the event's id, $4 its info). The event
// only when something was deleted, in the tenant of the deleted tokens (a user's
// tokens are all in the user's tenant). Returns the tokens deleted.
const minimalRevokeUser = `
WITH d AS (DELETE FROM refresh_tokens WHERE user_id = $1::uuid RETURNING tenant_id),
ev AS (` + minimalEventColumns + `
       SELECT $3::uuid, t.tenant_id, 'jwt.refresh-token.revoke', $2::bigint, $1::uuid, NULL,
              jsonb_build_object('id', $3::uuid, 'type', 'jwt.refresh-token.revoke', 'createInstant', $2::bigint,
                  'tenantId', t.tenant_id, 'userId', $1::uuid, 'info', $4::jsonb)
       FROM (SELECT tenant_id FROM d LIMIT 1) t
       RETURNING seq, tenant_id, type),` + minimalDeliveries + `
SELECT count(*) FROM d`

// Revoke the tokens of user $1 for application $5 at $2, with the event always,
// in tenant $6 ($3 the event's id, $4 its info). The DELETE is the statement
// itself: its row count is the tokens deleted, and no deleted row is kept.
const minimalRevokeUserApp = `
WITH ev AS (` + minimalEventColumns + `
       VALUES ($3::uuid, $6::uuid, 'jwt.refresh-token.revoke', $2::bigint, $1::uuid, $5::uuid,
               jsonb_build_object('id', $3::uuid, 'type', 'jwt.refresh-token.revoke', 'createInstant', $2::bigint,
                   'tenantId', $6::uuid, 'userId', $1::uuid, 'applicationId', $5::uuid, 'info', $4::jsonb))
       RETURNING seq, tenant_id, type),` + minimalDeliveries + `
DELETE FROM refresh_tokens WHERE user_id = $1::uuid AND application_id = $5::uuid`

// Revoke every token of application $1 at $2, with the event always, in tenant
// $5 ($3 the event's id, $4 its info); as above, the row count is the tokens
// deleted (a million, which a RETURNING would keep).
const minimalRevokeApp = `
WITH ev AS (` + minimalEventColumns + `
       VALUES ($3::uuid, $5::uuid, 'jwt.refresh-token.revoke', $2::bigint, NULL::uuid, $1::uuid,
               jsonb_build_object('id', $3::uuid, 'type', 'jwt.refresh-token.revoke', 'createInstant', $2::bigint,
                   'tenantId', $5::uuid, 'applicationId', $1::uuid, 'info', $4::jsonb))
       RETURNING seq, tenant_id, type),` + minimalDeliveries + `
DELETE FROM refresh_tokens WHERE application_id = $1::uuid`

// Exchange a reusable token ($1, the value's hash) at $2 from address $3: record
// the access in the token's metaData as the server does, and the jwt.refresh
// event ($4 its id, $5 its info). Returns the tokens updated.
const minimalExchange = `
WITH u AS (UPDATE refresh_tokens SET meta_data = coalesce(meta_data, '{}') || jsonb_build_object('device',
               coalesce(meta_data -> 'device', '{}') || jsonb_build_object('lastAccessedInstant', $2::bigint,
                   'lastAccessedAddress', $3::text))
           WHERE token_hash = $1 AND expires_at > $2::bigint
           RETURNING id, tenant_id, user_id, application_id),
ev AS (` + minimalEventColumns + `
       SELECT $4::uuid, u.tenant_id, 'jwt.refresh', $2::bigint, u.user_id, u.application_id,
              jsonb_build_object('id', $4::uuid, 'type', 'jwt.refresh', 'createInstant', $2::bigint,
                  'tenantId', u.tenant_id, 'userId', u.user_id, 'applicationId', u.application_id,
                  'refreshTokenId', u.id, 'info', $5::jsonb)
       FROM u
       RETURNING seq, tenant_id, type),` + minimalDeliveries + `
SELECT count(*) FROM u`

// prepareMinimal runs the minimal SQL of sp.Op, connected as the store connects
// and with one connection per client, as the raw side.
func prepareMinimal(sp runSpec, n int) (doFunc, func(int) int, func(), error) {
	switch sp.Op {
	case opImport, opValidate:
		return nil, nil, nil, fmt.Errorf("%s: the raw statement already is the minimal; there is no minimal run", sp.Op)
	case opExchange:
		if sp.Pool.Size < 1 {
			return nil, nil, nil, errors.New("exchange: empty pool")
		}
	}
	db, err := store.OpenDB(sp.DSN)
	if err != nil {
		return nil, nil, nil, err
	}
	db.SetMaxOpenConns(sp.Concurrency)
	db.SetMaxIdleConns(sp.Concurrency)
	closeFn := func() { db.Close() }
	info := string(sp.EventInfo)
	if info == "" {
		info = "{}"
	}
	count := func(ctx context.Context, query string, args ...any) (int64, error) {
		var n int64
		err := db.QueryRowContext(ctx, query, args...).Scan(&n)
		return n, err
	}
	var do doFunc
	switch sp.Op {
	case opRevokeTokenQuery, opRevokeTokenJSON:
		hashes := make([][]byte, n)
		for i := range hashes {
			hashes[i] = tokenHash(tokenValue(sp.Seed, sp.Pool.Name, i))
		}
		do = func(ctx context.Context, i int) (int64, error) {
			r, err := count(ctx, minimalRevokeToken, hashes[i], store.NowMillis(), uuid.New(), info)
			if err == nil && r != 1 {
				err = fmt.Errorf("revoked %d tokens, want 1", r)
			}
			return r, err
		}
	case opRevokeUser:
		do = func(ctx context.Context, i int) (int64, error) {
			return count(ctx, minimalRevokeUser, userID(sp.Seed, sp.Pool.Group, i), store.NowMillis(), uuid.New(), info)
		}
	case opRevokeUserApp, opRevokeApp:
		if sp.TenantID == uuid.Nil {
			closeFn()
			return nil, nil, nil, fmt.Errorf("%s: no tenant for the event", sp.Op)
		}
		do = func(ctx context.Context, i int) (int64, error) {
			var res sql.Result
			var err error
			if sp.Op == opRevokeUserApp {
				res, err = db.ExecContext(ctx, minimalRevokeUserApp, userID(sp.Seed, sp.Pool.Group, i), store.NowMillis(),
					uuid.New(), info, sp.AppID, sp.TenantID)
			} else {
				res, err = db.ExecContext(ctx, minimalRevokeApp, sp.appFor(i), store.NowMillis(), uuid.New(), info, sp.TenantID)
			}
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		}
	case opExchange:
		hashes := make([][]byte, sp.Pool.Size)
		for i := range hashes {
			hashes[i] = tokenHash(tokenValue(sp.Seed, sp.Pool.Name, i))
		}
		do = func(ctx context.Context, i int) (int64, error) {
			u, err := count(ctx, minimalExchange, hashes[i%len(hashes)], store.NowMillis(), "127.0.0.1", uuid.New(), info)
			if err == nil && u != 1 {
				err = fmt.Errorf("exchange: %d tokens updated, want 1", u)
			}
			return 0, err
		}
	default:
		closeFn()
		return nil, nil, nil, fmt.Errorf("unknown operation %q", sp.Op)
	}
	return do, nil, closeFn, nil
}
