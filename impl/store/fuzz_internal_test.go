package store

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"

	"refreshd/internal/dbtest"
)

// storeErrorOK reports whether err is one of the store's classified outcomes for
// a write of client data: success, a value the database cannot hold, or a
// constraint. Anything else would be a 500.
func storeErrorOK(err error) bool {
	var de *DataError
	var ce *ConstraintError
	return err == nil || errors.As(err, &de) || errors.As(err, &ce)
}

// asStoredText is what a Go string reads back as from jsonb: each byte of
// invalid UTF-8 (which json.Marshal writes as U+FFFD, as a conversion to runes
// does) and U+0000 become U+FFFD.
func asStoredText(s string) string {
	return strings.ReplaceAll(string([]rune(s)), "\x00", "\uFFFD")
}

// sameNumber compares two JSON number literals by value.
func sameNumber(a, b string) bool {
	x, okX := new(big.Rat).SetString(a)
	y, okY := new(big.Rat).SetString(b)
	return okX && okY && x.Cmp(y) == 0
}

// FuzzStoreWrites writes what the fuzzer makes of a text, a number and a JSON
// object through the store's write paths against the real PostgreSQL: every
// write succeeds or fails classified (never a bare driver error); text with
// U+0000 is a *DataError; free-form JSON is always stored and reads back with
// U+0000 as U+FFFD and its numbers equal; and a revocation — single in a batch,
// or bulk — never fails because of its event info.
//
// go test ./impl/store -run '^$' -fuzz '^FuzzStoreWrites$' -fuzztime 1m
func FuzzStoreWrites(f *testing.F) {
	ctx := context.Background()
	s, err := Open(ctx, dbtest.NewDSN(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	tenant, err := s.DefaultTenant(ctx)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("plain", "1", []byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, text, number string, object []byte) {
		now := NowMillis()
		user, app := uuid.New(), uuid.New()
		defer func() {
			_, _ = s.db.Exec(`DELETE FROM users WHERE id = $1`, user)
			_, _ = s.db.Exec(`DELETE FROM applications WHERE id = $1`, app)
			_, _ = s.db.Exec(`DELETE FROM webhooks; DELETE FROM events`)
		}()

		// Text columns: stored, or refused as a *DataError when PostgreSQL
		// cannot hold the text.
		email := text
		err := s.CreateUser(ctx, User{ID: uuid.New(), TenantID: tenant.ID, Email: &email, FirstName: &text,
			Active: true, InsertInstant: now, LastUpdateInstant: now})
		var de *DataError
		switch {
		case !storeErrorOK(err):
			t.Fatalf("user with %q: unclassified error %v", text, err)
		case strings.ContainsRune(text, 0) && !errors.As(err, &de):
			t.Fatalf("user with %q: %v, want a *DataError", text, err)
		case !strings.ContainsRune(text, 0) && utf8.ValidString(text) && errors.As(err, &de):
			t.Fatalf("user with %q: %v, want it stored", text, err)
		}
		_, _ = s.db.Exec(`DELETE FROM users WHERE email = $1`, asStoredText(text))
		if err := s.CreateWebhook(ctx, Webhook{ID: uuid.New(), URL: text, Description: text, EventsEnabled: []string{"jwt.refresh"},
			Global: true, TenantIDs: UUIDArray{}, Headers: Headers{text: text}, ConnectTimeoutMs: 1, ReadTimeoutMs: 1,
			SigningSecret: []byte(text), InsertInstant: now, LastUpdateInstant: now}); !storeErrorOK(err) {
			t.Fatalf("webhook with %q: unclassified error %v", text, err)
		}

		// Free-form JSON: always stored; read back as written.
		data := JSONObject{"k" + text: text}
		if _, err := json.Marshal(json.Number(number)); err == nil && plainNumber(number) {
			data["n"] = json.Number(number)
		}
		var extra map[string]any
		if decodeJSON(object, &extra) == nil && extra != nil {
			data["o"] = extra
		}
		email = user.String() + "@example.com"
		err = s.CreateUser(ctx, User{ID: user, TenantID: tenant.ID, Email: &email, Data: data, Active: true,
			InsertInstant: now, LastUpdateInstant: now})
		if errors.As(err, &de) && data["o"] != nil { // the object may hold what PostgreSQL refuses (1e1000000)
			delete(data, "o")
			err = s.CreateUser(ctx, User{ID: user, TenantID: tenant.ID, Email: &email, Data: data, Active: true,
				InsertInstant: now, LastUpdateInstant: now})
		}
		if err != nil {
			t.Fatalf("user data %v: %v", data, err)
		}
		back, err := s.User(ctx, Scope{}, user)
		if err != nil {
			t.Fatal(err)
		}
		if got := back.Data["k"+asStoredText(text)]; got != asStoredText(text) {
			t.Errorf("data read back: %q, want %q", got, asStoredText(text))
		}
		if n, ok := data["n"].(json.Number); ok {
			if got, _ := back.Data["n"].(json.Number); !sameNumber(string(got), string(n)) {
				t.Errorf("number read back: %s, want %s", got, n)
			}
		}

		// Revocations with that text in their event info: never an error.
		if err := s.CreateApplication(ctx, Application{ID: app, TenantID: tenant.ID, Name: "a", Active: true,
			InsertInstant: now, LastUpdateInstant: now}); err != nil {
			t.Fatal(err)
		}
		info, err := json.Marshal(map[string]any{"deviceName": text, "data": data})
		if err != nil {
			t.Fatal(err)
		}
		var rows []RefreshToken
		for _, v := range []string{"a", "b"} {
			rows = append(rows, RefreshToken{ID: uuid.New(), TenantID: tenant.ID, UserID: user, ApplicationID: app,
				TokenHash: hashOf(user.String() + v), StartInstant: now, InsertInstant: now, ExpiresAt: now + 60_000,
				MetaData: data})
		}
		if err := InsertTokens(ctx, s.db.DB, rows); err != nil {
			t.Fatalf("tokens with metadata %v: %v", data, err)
		}
		batch := []*revokeRequest{{hash: hashOf(user.String() + "a"), info: info, done: make(chan revokeOutcome, 1)},
			{hash: hashOf("absent"), info: info, done: make(chan revokeOutcome, 1)}}
		s.batch.run(batch)
		if out := <-batch[0].done; out.err != nil || out.res.Revoked != 1 {
			t.Fatalf("batched revocation with info %s: %+v, %v", info, out.res, out.err)
		}
		if out := <-batch[1].done; out.err != nil {
			t.Fatalf("batched revocation with info %s: %v", info, out.err)
		}
		if res, err := s.RevokeBulk(ctx, Scope{}, Bulk{UserID: &user}, info); err != nil || res.Revoked != 1 {
			t.Fatalf("bulk revocation with info %s: %+v, %v", info, res, err)
		}
	})
}

// plainNumber reports a JSON number literal without an exponent, of at most 400
// characters: always within what PostgreSQL's numeric holds. (The server's own,
// looser bound on free-form numbers is checked against PostgreSQL by
// FuzzNumberBound in impl.)
func plainNumber(lit string) bool {
	_, ok := new(big.Rat).SetString(lit)
	return ok && len(lit) <= 400 && !strings.ContainsAny(lit, "eE")
}
