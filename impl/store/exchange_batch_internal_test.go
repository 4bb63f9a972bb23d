package store

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/uuid"
)

// TestExchangeBatchIsSequential: a batch of exchanges leaves exactly the answers
// and the database that the same exchanges leave run one at a time, in the
// batch's order — including the same token twice in one batch (a rotation and
// then the rotated-away value), refusals, an unknown value and a lifetime out of
// range. Two stores get the same data; one runs the batch, the other its
// requests one by one.
func TestExchangeBatchIsSequential(t *testing.T) {
	ctx := context.Background()
	batched, alone, tenant := twinStores(t)
	now := NowMillis()
	active, inactive := uuid.New(), uuid.New()
	reusable, oneTime, graceful, off := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	var tokens []RefreshToken
	token := func(user, app uuid.UUID, value string) {
		tokens = append(tokens, RefreshToken{ID: uuid.New(), TenantID: tenant.ID, UserID: user, ApplicationID: app,
			TokenHash: hashOf(value), StartInstant: now - 1000, InsertInstant: now - 1000, ExpiresAt: now + 3_600_000})
	}
	for i := 0; i < 6; i++ {
		token(active, reusable, fmt.Sprint("r", i))
		token(active, oneTime, fmt.Sprint("o", i))
		token(active, graceful, fmt.Sprint("g", i))
	}
	token(inactive, reusable, "inactive-user")
	token(active, off, "inactive-app")
	for _, s := range []*Store{batched, alone} {
		for _, u := range []struct {
			id     uuid.UUID
			active bool
		}{{active, true}, {inactive, false}} {
			email := u.id.String()
			if err := s.CreateUser(ctx, User{ID: u.id, TenantID: tenant.ID, Email: &email, Active: u.active,
				InsertInstant: now, LastUpdateInstant: now}); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range []struct {
			id     uuid.UUID
			active bool
			jwt    JWTConfig
		}{
			{reusable, true, JWTConfig{}},
			{oneTime, true, JWTConfig{Enabled: true, RefreshTokenUsagePolicy: "OneTimeUse", TimeToLiveInSeconds: 600}},
			{graceful, true, JWTConfig{Enabled: true, RefreshTokenUsagePolicy: "OneTimeUse", GracePeriodInSeconds: 60,
				RefreshTokenExpirationPolicy: "SlidingWindow", RefreshTokenTimeToLiveInMinutes: 90}},
			{off, false, JWTConfig{}},
		} {
			if err := s.CreateApplication(ctx, Application{ID: a.id, TenantID: tenant.ID, Name: a.id.String(),
				Active: a.active, JWT: a.jwt, ClientID: a.id.String(), InsertInstant: now, LastUpdateInstant: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ImportRefreshTokens(ctx, Scope{}, nil, []uuid.UUID{reusable, oneTime, graceful, off}, nil,
			func(ImportLookup) ([]RefreshToken, error) { return tokens, nil }); err != nil {
			t.Fatal(err)
		}
	}

	next := func(v string) []byte { return hashOf(v + "'") } // any derivation will do here
	var xs []Exchange
	ask := func(value string, ttl int32, info string) {
		x := Exchange{Hash: hashOf(value), NextHash: next(value), Now: now, Address: "192.0.2.1", TTLSeconds: ttl}
		if info != "" {
			x.Info = []byte(info)
		}
		xs = append(xs, x)
	}
	for i := 0; i < 6; i++ {
		ask(fmt.Sprint("r", i), 0, "")
		ask(fmt.Sprint("o", i), 0, `{"deviceName":"phone"}`)
		ask(fmt.Sprint("g", i), 0, "")
	}
	ask("o0", 0, "")                        // the same one-time token again: reused without grace
	ask("g0", 0, "")                        // within the grace period: answered with the current value
	ask(fmt.Sprint("g0", "'"), 0, "")       // the value it rotated to (as far as the hash goes)
	ask("r1", 3601, "")                     // lifetime above the tenant default
	ask("o1", 600, "")                      // and exactly the application's (after its rotation in this batch)
	ask("unknown", 0, "")                   // no such token
	ask("inactive-user", 0, "")             // refused
	ask("inactive-app", 0, "")              // refused
	ask("r2", 0, `{"ipAddress":"x\u0000"}`) // a NUL in the event information

	mk := func() []*exchangeRequest {
		batch := make([]*exchangeRequest, len(xs))
		for i, x := range xs {
			batch[i] = &exchangeRequest{x: x, done: make(chan exchangeOutcome, 1)}
		}
		return batch
	}
	inBatch := mk()
	batched.batch.runExchanges(inBatch)
	// The batch ran in the order of the values' hashes (ties in the batch's order); run
	// them alone in that order.
	oneByOne := mk()
	order := append([]*exchangeRequest(nil), oneByOne...)
	sortByHash(order)
	for _, r := range order {
		alone.batch.runExchanges([]*exchangeRequest{r})
	}
	outcomes := map[string]int{}
	for i := range xs {
		got, want := <-inBatch[i].done, <-oneByOne[i].done
		if got.err != nil || want.err != nil {
			t.Fatalf("request %d: batched error %v, alone error %v", i, got.err, want.err)
		}
		if !reflect.DeepEqual(got.res, want.res) {
			t.Errorf("request %d:\nbatched %+v\nalone   %+v", i, got.res, want.res)
		}
		outcomes[got.res.Outcome]++
	}
	for _, o := range []string{ExchangeOK, ExchangeNotFound, ExchangeRefused, ExchangeBadTTL} {
		if outcomes[o] == 0 {
			t.Errorf("no request had the outcome %s: %v", o, outcomes)
		}
	}
	for _, q := range []string{
		`SELECT id, token_hash, start_instant, expires_at, generation, meta_data #>> '{device,lastAccessedAddress}' FROM refresh_tokens ORDER BY id`,
		`SELECT token_hash, token_id, generation, grace_until FROM refresh_token_history ORDER BY token_hash`,
		`SELECT type, user_id, application_id, body -> 'refreshTokenId', body -> 'info' FROM events ORDER BY body ->> 'refreshTokenId', type, (body - 'id')::text`,
	} {
		a, b := dump(t, batched, q), dump(t, alone, q)
		if len(a) == 0 {
			t.Errorf("%s: no rows", q)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\nbatched %v\nalone   %v", q, a, b)
		}
	}
}

// twinStores opens two stores on fresh databases whose default tenants have the
// same id, so that the same data can go into both.
func twinStores(t *testing.T) (a, b *Store, tenant Tenant) {
	t.Helper()
	a, tenant = openTestStore(t)
	b, other := openTestStore(t)
	if _, err := b.db.Exec(`UPDATE tenants SET id = $1 WHERE id = $2`, tenant.ID, other.ID); err != nil {
		t.Fatal(err)
	}
	return a, b, tenant
}

func sortByHash(batch []*exchangeRequest) {
	for i := 1; i < len(batch); i++ {
		for j := i; j > 0 && string(batch[j].x.Hash) < string(batch[j-1].x.Hash); j-- {
			batch[j], batch[j-1] = batch[j-1], batch[j]
		}
	}
}

func dump(t *testing.T, s *Store, query string) []string {
	t.Helper()
	rows, err := s.db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s", vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRevokeUsersBatchIsSequential: a batch of revocations of users' tokens
// answers and leaves the database exactly as the same revocations run one at a
// time in the batch's order (by user id): receipts, a spared token, a user twice,
// an unknown user and application, another tenant's scope.
func TestRevokeUsersBatchIsSequential(t *testing.T) {
	ctx := context.Background()
	batched, alone, tenant := twinStores(t)
	now := NowMillis()
	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	apps := []uuid.UUID{uuid.New(), uuid.New()}
	var tokens []RefreshToken
	for _, u := range users {
		for _, a := range apps {
			for k := 0; k < 3; k++ {
				tokens = append(tokens, RefreshToken{ID: uuid.New(), TenantID: tenant.ID, UserID: u, ApplicationID: a,
					TokenHash: hashOf(fmt.Sprint(u, a, k)), StartInstant: now, InsertInstant: now, ExpiresAt: now + 60_000})
			}
		}
	}
	for _, s := range []*Store{batched, alone} {
		for _, u := range users {
			email := u.String()
			if err := s.CreateUser(ctx, User{ID: u, TenantID: tenant.ID, Email: &email, Active: true,
				InsertInstant: now, LastUpdateInstant: now}); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range apps {
			if err := s.CreateApplication(ctx, Application{ID: a, TenantID: tenant.ID, Name: a.String(), Active: true,
				ClientID: a.String(), InsertInstant: now, LastUpdateInstant: now}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ImportRefreshTokens(ctx, Scope{}, nil, apps, nil,
			func(ImportLookup) ([]RefreshToken, error) { return tokens, nil }); err != nil {
			t.Fatal(err)
		}
	}
	unknown, elsewhere := uuid.New(), uuid.New()
	spared := tokens[6].ID // users[1]'s first token
	reqs := []bulkRequest{
		{b: Bulk{UserID: &users[0], Receipt: true}},
		{b: Bulk{UserID: &users[1], Except: &spared}, info: []byte(`{"deviceName":"d"}`)},
		{b: Bulk{UserID: &users[2], ApplicationID: &apps[0], Receipt: true}},
		{b: Bulk{UserID: &users[0]}}, // again: nothing left
		{b: Bulk{UserID: &unknown}},
		{b: Bulk{UserID: &users[3], ApplicationID: &unknown}},
		{sc: Scope{TenantID: &elsewhere}, b: Bulk{UserID: &users[3]}},
	}
	mk := func() []*bulkRequest {
		out := make([]*bulkRequest, len(reqs))
		for i := range reqs {
			r := reqs[i]
			r.done = make(chan revokeOutcome, 1)
			out[i] = &r
		}
		return out
	}
	inBatch, oneByOne := mk(), mk()
	batched.batch.runUsers(inBatch)
	order := append([]*bulkRequest(nil), oneByOne...)
	for i := 1; i < len(order); i++ {
		for j := i; j > 0 && string(order[j].b.UserID[:]) < string(order[j-1].b.UserID[:]); j-- {
			order[j], order[j-1] = order[j-1], order[j]
		}
	}
	for _, r := range order {
		alone.batch.runUsers([]*bulkRequest{r})
	}
	var revoked int64
	for i := range reqs {
		got, want := <-inBatch[i].done, <-oneByOne[i].done
		if got.err != nil || want.err != nil {
			t.Fatalf("request %d: batched error %v, alone error %v", i, got.err, want.err)
		}
		sortIDs(got.res.IDs)
		sortIDs(want.res.IDs)
		if !reflect.DeepEqual(got.res, want.res) {
			t.Errorf("request %d:\nbatched %+v\nalone   %+v", i, got.res, want.res)
		}
		revoked += got.res.Revoked
	}
	if revoked != 6+5+3 {
		t.Errorf("revoked %d tokens in all, want 14", revoked)
	}
	for _, q := range []string{
		`SELECT id FROM refresh_tokens ORDER BY id`,
		`SELECT type, user_id, application_id, body -> 'info', body -> 'applicationTimeToLiveInSeconds' FROM events ORDER BY user_id, application_id, (body - 'id')::text`,
	} {
		a, b := dump(t, batched, q), dump(t, alone, q)
		if len(a) == 0 {
			t.Errorf("%s: no rows", q)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s:\nbatched %v\nalone   %v", q, a, b)
		}
	}
}

func sortIDs(ids []uuid.UUID) {
	for i := 1; i < len(ids); i++ {
		for j := i; j > 0 && string(ids[j][:]) < string(ids[j-1][:]); j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}
