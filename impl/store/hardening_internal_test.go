package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestPGJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"a":"b"}`, `{"a":"b"}`},
		{`{"a\u0000":"\u0000b"}`, `{"a\ufffd":"\ufffdb"}`},
		{`"\\u0000"`, `"\\u0000"`},             // an escaped backslash, then text
		{`"\\\u0000"`, `"\\\ufffd"`},           // an escaped backslash, then U+0000
		{`"\u00001\u0001"`, `"\ufffd1\u0001"`}, // only U+0000
		{`["\"\u0000"]`, `["\"\ufffd"]`},
	}
	for _, c := range cases {
		if got := string(pgJSON([]byte(c.in))); got != c.want {
			t.Errorf("pgJSON(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestUnstorableValues: what PostgreSQL refuses comes back as a *DataError, never
// as an unclassified error; free-form JSON is always stored, U+0000 as U+FFFD and
// numbers exactly; a batch of revocations whose event info holds U+0000 revokes
// every token.
func TestUnstorableValues(t *testing.T) {
	ctx := context.Background()
	s, tenant := openTestStore(t)
	now := NowMillis()

	nul := "a\x00b"
	err := s.CreateUser(ctx, User{ID: uuid.New(), TenantID: tenant.ID, Email: &nul, Active: true, InsertInstant: now, LastUpdateInstant: now})
	var de *DataError
	if !errors.As(err, &de) || de.SQLState[:2] != "22" {
		t.Fatalf("NUL in an email: got %v, want a *DataError of class 22", err)
	}

	user, app := uuid.New(), uuid.New()
	data := JSONObject{"k\x00": "v\x00", "big": json.Number("123456789012345678901234567890"), "max": json.Number("9223372036854775807")}
	email := "u@example.com"
	if err := s.CreateUser(ctx, User{ID: user, TenantID: tenant.ID, Email: &email, Data: data, Active: true, InsertInstant: now, LastUpdateInstant: now}); err != nil {
		t.Fatalf("free-form data with NUL: %v", err)
	}
	back, err := s.User(ctx, Scope{}, user)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(back.Data)
	if want := `{"big":123456789012345678901234567890,"k` + "\ufffd" + `":"v` + "\ufffd" + `","max":9223372036854775807}`; string(raw) != want {
		t.Errorf("data read back: %s, want %s", raw, want)
	}

	if err := s.CreateApplication(ctx, Application{ID: app, TenantID: tenant.ID, Name: "a", Active: true, InsertInstant: now, LastUpdateInstant: now}); err != nil {
		t.Fatal(err)
	}
	var rows []RefreshToken
	for _, v := range []string{"n1", "n2", "n3"} {
		rows = append(rows, RefreshToken{ID: uuid.New(), TenantID: tenant.ID, UserID: user, ApplicationID: app,
			TokenHash: hashOf(v), StartInstant: now, InsertInstant: now, ExpiresAt: now + 60_000, MetaData: data})
	}
	if err := s.ImportRefreshTokens(ctx, Scope{}, []uuid.UUID{user}, []uuid.UUID{app}, nil,
		func(ImportLookup) ([]RefreshToken, error) { return rows, nil }); err != nil {
		t.Fatalf("import with NUL in metadata: %v", err)
	}
	info := []byte(`{"deviceName":"a\u0000","data":{"\u0000":1e300}}`)
	batch := []*revokeRequest{{hash: hashOf("n1"), info: info}, {hash: hashOf("n2"), info: info}, {hash: hashOf("n3")}}
	for _, r := range batch {
		r.done = make(chan revokeOutcome, 1)
	}
	s.batch.run(batch)
	for i, r := range batch {
		if out := <-r.done; out.err != nil || out.res.Revoked != 1 {
			t.Errorf("batch element %d: %+v, %v; want revoked", i, out.res, out.err)
		}
	}
	var infos []string
	if err := s.db.Select(&infos, `SELECT (body->'info')::text FROM events ORDER BY seq`); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 3 || !strings.Contains(infos[0], "\"a\ufffd\"") || !strings.Contains(infos[0], "1"+strings.Repeat("0", 300)) {
		t.Errorf("event infos: %.200q", infos)
	}
}
