package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// RefreshToken is a stored refresh token. Its value is known only by its hash.
// A token whose ExpiresAt has passed is treated as absent everywhere.
type RefreshToken struct {
	ID            uuid.UUID  `db:"id"`
	TenantID      uuid.UUID  `db:"tenant_id"`
	UserID        uuid.UUID  `db:"user_id"`
	ApplicationID uuid.UUID  `db:"application_id"`
	TokenHash     []byte     `db:"token_hash"`
	StartInstant  int64      `db:"start_instant"`
	InsertInstant int64      `db:"insert_instant"`
	ExpiresAt     int64      `db:"expires_at"`
	MetaData      JSONObject `db:"meta_data"`
	// Generation counts the rotations of a one-time-use token's value.
	Generation int32 `db:"generation"`
}

// RevokeResult says what a revocation found: whether the given user and
// application exist within the scope (true when not given), and how many live
// tokens it revoked. Nothing is revoked unless both exist.
type RevokeResult struct {
	UserFound        bool
	ApplicationFound bool
	Revoked          int64
	// IDs are the ids of the live tokens revoked: always for a single token, for
	// a bulk form only when a receipt was asked for, and at most 1,000 of them.
	IDs []uuid.UUID
}

// Each revoke form is one call of a database function (migrations/00003), so it
// is one round trip and one transaction: the existence checks of the named user
// and application, the DELETE, and the jwt.refresh-token.revoke event with its
// webhook deliveries. Expired rows that match are removed too (they are absent
// anyway) but not counted.
const (
	revokeOne  = `SELECT user_ok, app_ok, revoked, ids FROM revoke_refresh_token($1, $2, $3, $4, $5, $6, $7)`
	revokeBulk = `SELECT user_ok, app_ok, revoked, ids FROM revoke_refresh_tokens($1, $2, $3, $4, $5, $6, $7)`
)

// RevokeByTokenStatement is the statement, with its arguments, that RevokeByToken
// runs: exported so that benchmarks can run exactly it against the database.
func RevokeByTokenStatement(sc Scope, hash []byte, userID, appID *uuid.UUID, info []byte) (string, []any) {
	return revokeOne, []any{sc.TenantID, userID, appID, hash, nil, NowMillis(), jsonArg(info)}
}

// Bulk is what a bulk revocation names: a user, an application or both; it may
// spare one token (Except) and ask for the ids revoked (Receipt).
type Bulk struct {
	UserID, ApplicationID, Except *uuid.UUID
	Receipt                       bool
}

// RevokeBulkStatement is the statement, with its arguments, that RevokeBulk runs.
func RevokeBulkStatement(sc Scope, b Bulk, info []byte) (string, []any) {
	return revokeBulk, []any{sc.TenantID, b.UserID, b.ApplicationID, b.Except, NowMillis(), jsonArg(info), b.Receipt}
}

// RevokeByToken revokes the live token with the given hash, if it belongs to the
// given user and application (each optional). info is the event's info object.
// Concurrent calls are committed together (see batch.go); each still gets its
// own outcome, only after its revocation committed.
func (s *Store) RevokeByToken(ctx context.Context, sc Scope, hash []byte, userID, appID *uuid.UUID, info []byte) (RevokeResult, error) {
	return s.batch.revoke(ctx, &revokeRequest{sc: sc, userID: userID, appID: appID, hash: hash, info: info})
}

// RevokeBulk revokes all tokens of a user, of an application, or of a user for an
// application (but b.Except); at least one of the user and the application must
// be given, and a user with Except.
func (s *Store) RevokeBulk(ctx context.Context, sc Scope, b Bulk, info []byte) (RevokeResult, error) {
	if (b.UserID == nil && b.ApplicationID == nil) || (b.Except != nil && b.UserID == nil) {
		return RevokeResult{}, fmt.Errorf("store: bulk revoke needs a user or an application, and a user to spare a token of")
	}
	if b.UserID != nil {
		// A user's tokens are few: concurrent revocations of users commit together.
		return s.batch.revokeUser(ctx, &bulkRequest{sc: sc, b: b, info: info})
	}
	query, args := RevokeBulkStatement(sc, b, info)
	return s.revoke(ctx, query, args...)
}

// RevokeByID revokes one live token by its id — of the given user, when userID is
// set; ErrNotFound when there is none.
func (s *Store) RevokeByID(ctx context.Context, sc Scope, id uuid.UUID, userID *uuid.UUID, info []byte) error {
	res, err := s.revoke(ctx, revokeOne, sc.TenantID, userID, nil, nil, id, NowMillis(), jsonArg(info))
	if err == nil && res.Revoked == 0 {
		return ErrNotFound
	}
	return err
}

// endSession revokes the session a value names — its current value, or one it
// rotated away and still remembers — alone, or with every other token of its
// user when global is set, recording the event of that revoke form.
const endSession = `
WITH session AS (
    SELECT r.id, r.user_id FROM refresh_tokens r WHERE r.token_hash = $1 AND r.expires_at > $2
    UNION ALL
    SELECT r.id, r.user_id FROM refresh_token_history h JOIN refresh_tokens r ON r.id = h.token_id
    WHERE h.token_hash = $1 AND r.expires_at > $2
    LIMIT 1
)
SELECT CASE WHEN $3::boolean
            THEN (SELECT revoked FROM revoke_refresh_tokens(NULL, session.user_id, NULL, NULL, $2, $4, false))
            ELSE (SELECT revoked FROM revoke_refresh_token(NULL, NULL, NULL, NULL, session.id, $2, $4)) END
FROM session`

// EndSession is a logout: it revokes the session the value with the given hash
// names (see endSession), or with global every token of its user, and says how
// many live tokens it revoked (0 when the value names no live session).
func (s *Store) EndSession(ctx context.Context, hash []byte, global bool, info []byte) (int64, error) {
	var revoked int64
	err := retry(func() error {
		return s.db.QueryRowContext(ctx, endSession, hash, NowMillis(), global, jsonArg(info)).Scan(&revoked)
	})
	if err = classify(err); errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return revoked, err
}

func (s *Store) revoke(ctx context.Context, query string, args ...any) (RevokeResult, error) {
	var res RevokeResult
	var ids UUIDArray
	err := retry(func() error {
		return s.db.QueryRowContext(ctx, query, args...).Scan(&res.UserFound, &res.ApplicationFound, &res.Revoked, &ids)
	})
	res.IDs = ids
	return res, classify(err)
}

// jsonArg passes JSON text as a jsonb parameter (nil stays NULL), as jsonb can
// hold it (see pgJSON).
func jsonArg(b []byte) any {
	if b == nil {
		return nil
	}
	return string(pgJSON(b))
}

const tokenColumns = `id, tenant_id, user_id, application_id, token_hash, start_instant, insert_instant,
       expires_at, meta_data, generation`

const queryTokenByID = `
SELECT ` + tokenColumns + ` FROM refresh_tokens
WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) AND expires_at > $3`

// RefreshToken returns one live token by id, or ErrNotFound.
func (s *Store) RefreshToken(ctx context.Context, sc Scope, id uuid.UUID) (RefreshToken, error) {
	var t RefreshToken
	err := s.db.GetContext(ctx, &t, queryTokenByID, id, sc.TenantID, NowMillis())
	return t, classify(err)
}

const querySessionLive = `SELECT EXISTS (SELECT 1 FROM refresh_tokens WHERE id = $1 AND tenant_id = $2 AND expires_at > $3)`

// SessionLiveStatement is the statement, with its arguments, that SessionLive
// runs: exported so that benchmarks can run exactly it.
func SessionLiveStatement(tenantID, id uuid.UUID) (string, []any) {
	return querySessionLive, []any{id, tenantID, NowMillis()}
}

// SessionLive reports whether the session (refresh token) with the given id is
// live in the tenant: neither revoked nor expired.
func (s *Store) SessionLive(ctx context.Context, tenantID, id uuid.UUID) (bool, error) {
	var live bool
	err := s.db.GetContext(ctx, &live, querySessionLive, id, tenantID, NowMillis())
	return live, err
}

const queryUserExists = `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1 AND ($2::uuid IS NULL OR tenant_id = $2))`

const queryTokensByUser = `
SELECT ` + tokenColumns + ` FROM refresh_tokens
WHERE user_id = $1 AND ($2::uuid IS NULL OR tenant_id = $2) AND expires_at > $3
ORDER BY insert_instant DESC, id
LIMIT $4`

// RefreshTokensByUser returns up to limit live tokens of a user, newest first;
// ErrNotFound when the user does not exist within the scope.
func (s *Store) RefreshTokensByUser(ctx context.Context, sc Scope, userID uuid.UUID, limit int) ([]RefreshToken, error) {
	var exists bool
	if err := s.db.GetContext(ctx, &exists, queryUserExists, userID, sc.TenantID); err != nil {
		return nil, err
	}
	if !exists {
		return nil, ErrNotFound
	}
	tokens := []RefreshToken{}
	err := s.db.SelectContext(ctx, &tokens, queryTokensByUser, userID, sc.TenantID, NowMillis(), limit)
	return tokens, classify(err)
}

// ImportLookup is what an import needs to know to validate a batch: the users and
// applications it names (within the scope), the tenants of those applications,
// and which of its token hashes are already held by live tokens. In the first,
// optimistic pass UserTenants and Taken are nil: not looked up, because the
// constraints of the insert check them anyway.
type ImportLookup struct {
	UserTenants  map[uuid.UUID]uuid.UUID
	Applications map[uuid.UUID]Application
	Tenants      map[uuid.UUID]Tenant
	Taken        map[string]bool
}

// Everything an import batch needs to know, in one statement: the users and
// applications it names (within the scope), their tenants' configurations,
// and which of its token values are held by live tokens. Expired tokens with
// those values are absent: the insert frees their values (freeExpired), in its
// own transaction, so that a batch refused changes nothing.
const importLookup = `
SELECT 'user' AS kind, u.id, u.tenant_id, NULL::jsonb AS jwt_configuration, NULL::bytea AS token_hash
FROM users u WHERE u.id = ANY ($1::uuid[]) AND ($4::uuid IS NULL OR u.tenant_id = $4)
UNION ALL
SELECT 'application', a.id, a.tenant_id, a.jwt_configuration, NULL
FROM applications a WHERE a.id = ANY ($2::uuid[]) AND ($4::uuid IS NULL OR a.tenant_id = $4)
UNION ALL
SELECT 'tenant', t.id, t.id, t.jwt_configuration, NULL
FROM tenants t WHERE t.id IN (SELECT tenant_id FROM applications WHERE id = ANY ($2::uuid[]))
UNION ALL
SELECT 'taken', NULL, NULL, NULL, r.token_hash
FROM refresh_tokens r WHERE r.token_hash = ANY ($3::bytea[]) AND r.expires_at > $5`

// The optimistic first pass of an import looks up only the applications and their
// tenants (a batch names few): their configurations set each token's expiry.
const importLookupApplications = `
SELECT 'application' AS kind, a.id, a.tenant_id, a.jwt_configuration, NULL::bytea AS token_hash
FROM applications a WHERE a.id = ANY ($1::uuid[]) AND ($2::uuid IS NULL OR a.tenant_id = $2)
UNION ALL
SELECT 'tenant', t.id, t.id, t.jwt_configuration, NULL
FROM tenants t WHERE t.id IN (SELECT tenant_id FROM applications WHERE id = ANY ($1::uuid[]))`

// ImportRefreshTokens stores a batch atomically. build validates the batch against
// what was looked up and returns the rows to insert, or an error, which is
// returned as it is. The common case costs two statements: the first pass looks up
// only the applications and copies the rows, letting the foreign keys and the
// unique token hash check users and duplicates. Only when that pass fails does a
// second one look up everything, so that build can say which tokens are wrong and
// why, and copy again if none is (freeing the values of expired tokens first, in
// the copy's transaction: a batch refused changes nothing). A user,
// application or value that changed in between surfaces as a *ConstraintError.
func (s *Store) ImportRefreshTokens(ctx context.Context, sc Scope, userIDs, appIDs []uuid.UUID, hashes [][]byte,
	build func(ImportLookup) ([]RefreshToken, error)) error {
	look, err := s.importLookup(ctx, importLookupApplications, uuidArray(appIDs), sc.TenantID)
	if err != nil {
		return err
	}
	look.UserTenants, look.Taken = nil, nil
	toInsert, err := build(look)
	if err == nil {
		err = InsertTokens(ctx, s.db.DB, toInsert)
		var ce *ConstraintError
		if !errors.As(err, &ce) {
			return err
		}
	}
	// Something is wrong with the batch: look up everything, to say exactly what.
	look, err = s.importLookup(ctx, importLookup, uuidArray(userIDs), uuidArray(appIDs), pq.ByteaArray(hashes),
		sc.TenantID, NowMillis())
	if err != nil {
		return err
	}
	if toInsert, err = build(look); err != nil {
		return err
	}
	return retry(func() error { return insertTokens(ctx, s.db.DB, toInsert, hashes) })
}

func (s *Store) importLookup(ctx context.Context, query string, args ...any) (ImportLookup, error) {
	look := ImportLookup{
		UserTenants:  map[uuid.UUID]uuid.UUID{},
		Applications: map[uuid.UUID]Application{},
		Tenants:      map[uuid.UUID]Tenant{},
		Taken:        map[string]bool{},
	}
	var rows []struct {
		Kind      string     `db:"kind"`
		ID        *uuid.UUID `db:"id"`
		TenantID  *uuid.UUID `db:"tenant_id"`
		JWT       JWTConfig  `db:"jwt_configuration"`
		TokenHash []byte     `db:"token_hash"`
	}
	err := retry(func() error {
		rows = rows[:0]
		return s.db.SelectContext(ctx, &rows, query, args...)
	})
	if err != nil {
		return look, err
	}
	for _, r := range rows {
		switch r.Kind {
		case "user":
			look.UserTenants[*r.ID] = *r.TenantID
		case "application":
			look.Applications[*r.ID] = Application{ID: *r.ID, TenantID: *r.TenantID, JWT: r.JWT}
		case "tenant":
			look.Tenants[*r.ID] = Tenant{ID: *r.ID, JWT: r.JWT}
		case "taken":
			look.Taken[string(r.TokenHash)] = true
		}
	}
	return look, nil
}

// tokenCopyColumns are the columns InsertTokens copies, in order.
var tokenCopyColumns = []string{"id", "tenant_id", "user_id", "application_id", "token_hash", "start_instant",
	"insert_instant", "expires_at", "meta_data"}

// freeExpired deletes the expired tokens holding any of the given values: they
// are absent already, and their values may be imported again.
const freeExpired = `DELETE FROM refresh_tokens WHERE token_hash = ANY ($1::bytea[]) AND expires_at <= $2`

// InsertTokens stores a batch with COPY, in one transaction: all rows or none.
// COPY moves a batch of a thousand tokens about 1.6 times as fast as a multi-row
// INSERT from arrays. Exported so that benchmarks can run exactly it. A unique or
// foreign-key violation is a *ConstraintError.
func InsertTokens(ctx context.Context, db *sql.DB, rows []RefreshToken) error {
	return insertTokens(ctx, db, rows, nil)
}

// insertTokens is InsertTokens that first, in the same transaction, frees the
// values of expired tokens holding any of free.
func insertTokens(ctx context.Context, db *sql.DB, rows []RefreshToken, free [][]byte) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if len(free) > 0 {
		if _, err := tx.ExecContext(ctx, freeExpired, pq.ByteaArray(free), NowMillis()); err != nil {
			return classify(err)
		}
	}
	stmt, err := tx.PrepareContext(ctx, pq.CopyIn("refresh_tokens", tokenCopyColumns...))
	if err != nil {
		return classify(err)
	}
	defer stmt.Close()
	for _, r := range rows {
		meta := "{}"
		if r.MetaData != nil {
			v, err := r.MetaData.Value()
			if err != nil {
				return err
			}
			meta = v.(string)
		}
		if _, err := stmt.ExecContext(ctx, r.ID.String(), r.TenantID.String(), r.UserID.String(),
			r.ApplicationID.String(), r.TokenHash, r.StartInstant, r.InsertInstant, r.ExpiresAt, meta); err != nil {
			return classify(err)
		}
	}
	if _, err := stmt.ExecContext(ctx); err != nil { // flushes the copy; constraint violations show here
		return classify(err)
	}
	return classify(tx.Commit())
}

func uuidArray(ids []uuid.UUID) pq.StringArray {
	out := make(pq.StringArray, len(ids))
	for i, id := range ids {
		out[i] = id.String()
	}
	return out
}
