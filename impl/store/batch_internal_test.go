package store

import (
	"context"
	"crypto/sha256"
	"testing"

	"github.com/google/uuid"

	"refreshd/internal/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m, MigrateDSN) }

// openTestStore opens a store on a fresh database, closed when the test ends,
// and returns its default tenant.
func openTestStore(t *testing.T) (*Store, Tenant) {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, dbtest.NewDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tenant, err := s.DefaultTenant(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, tenant
}

func hashOf(v string) []byte {
	sum := sha256.Sum256([]byte(v))
	return sum[:]
}

// TestRevokeBatch runs one batch whose elements must each get their own outcome,
// exactly as if each had run alone, with one event per revoked token.
func TestRevokeBatch(t *testing.T) {
	ctx := context.Background()
	s, tenant := openTestStore(t)
	now := NowMillis()
	user, other, app := uuid.New(), uuid.New(), uuid.New()
	for _, u := range []uuid.UUID{user, other} {
		email := u.String()
		if err := s.CreateUser(ctx, User{ID: u, TenantID: tenant.ID, Email: &email, Active: true, InsertInstant: now, LastUpdateInstant: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateApplication(ctx, Application{ID: app, TenantID: tenant.ID, Name: "a", Active: true, InsertInstant: now, LastUpdateInstant: now}); err != nil {
		t.Fatal(err)
	}
	var rows []RefreshToken
	for _, v := range []string{"t1", "t2", "t3"} {
		rows = append(rows, RefreshToken{ID: uuid.New(), TenantID: tenant.ID, UserID: user, ApplicationID: app,
			TokenHash: hashOf(v), StartInstant: now, InsertInstant: now, ExpiresAt: now + 60_000})
	}
	if err := s.ImportRefreshTokens(ctx, Scope{}, []uuid.UUID{user}, []uuid.UUID{app}, nil,
		func(ImportLookup) ([]RefreshToken, error) { return rows, nil }); err != nil {
		t.Fatal(err)
	}
	unknown := uuid.New()
	cases := []struct {
		req  revokeRequest
		want RevokeResult
	}{
		{revokeRequest{hash: hashOf("t1")}, RevokeResult{UserFound: true, ApplicationFound: true, Revoked: 1}},
		{revokeRequest{hash: hashOf("t2"), userID: &other}, RevokeResult{UserFound: true, ApplicationFound: true}}, // another user's
		{revokeRequest{hash: hashOf("t2"), userID: &unknown}, RevokeResult{ApplicationFound: true}},                // unknown user
		{revokeRequest{hash: hashOf("t3"), userID: &user, appID: &app, info: []byte(`{"deviceName":"x"}`)}, RevokeResult{UserFound: true, ApplicationFound: true, Revoked: 1}},
		{revokeRequest{hash: hashOf("t1")}, RevokeResult{UserFound: true, ApplicationFound: true}}, // the same token again, in the same batch
		{revokeRequest{hash: hashOf("nope")}, RevokeResult{UserFound: true, ApplicationFound: true}},
	}
	batch := make([]*revokeRequest, len(cases))
	for i := range cases {
		r := cases[i].req
		r.done = make(chan revokeOutcome, 1)
		batch[i] = &r
	}
	s.batch.run(batch)
	var t1Revoked int64
	for i, c := range cases {
		out := <-batch[i].done
		if out.err != nil {
			t.Fatalf("case %d: %v", i, out.err)
		}
		if i == 0 || i == 4 {
			// t1 twice in one batch: exactly one of the two revokes it.
			t1Revoked += out.res.Revoked
			continue
		}
		if got := out.res; got.UserFound != c.want.UserFound || got.ApplicationFound != c.want.ApplicationFound ||
			got.Revoked != c.want.Revoked || int64(len(got.IDs)) != got.Revoked {
			t.Errorf("case %d: got %+v, want %+v", i, out.res, c.want)
		}
	}
	if t1Revoked != 1 {
		t.Errorf("t1 revoked %d times, want once", t1Revoked)
	}
	var left, events int
	if err := s.db.Get(&left, `SELECT count(*) FROM refresh_tokens`); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Get(&events, `SELECT count(*) FROM events WHERE type = 'jwt.refresh-token.revoke'`); err != nil {
		t.Fatal(err)
	}
	if left != 1 || events != 2 {
		t.Fatalf("after the batch: %d tokens left (want 1: t2), %d events (want 2)", left, events)
	}
}
