package impl_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestImportValidation(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 1)
	u, a := w.users[0].String(), w.apps[0].String()
	stored := w.tokens[pair{w.users[0], w.apps[0]}][0]
	start := time.Now().Add(-time.Minute).UnixMilli()
	good := func(token string) map[string]any {
		return map[string]any{"token": token, "userId": u, "applicationId": a, "startInstant": start}
	}
	cases := []struct {
		name   string
		tokens any
		codes  []string
	}{
		{"missing list", nil, []string{"refreshTokens:[missing]refreshTokens"}},
		{"empty list", []any{}, []string{"refreshTokens:[missing]refreshTokens"}},
		{"missing fields", []any{good("ok-1"), map[string]any{"metaData": map[string]any{}}}, []string{
			"refreshTokens[1].applicationId:[missing]refreshTokens.applicationId",
			"refreshTokens[1].startInstant:[missing]refreshTokens.startInstant",
			"refreshTokens[1].token:[missing]refreshTokens.token",
			"refreshTokens[1].userId:[missing]refreshTokens.userId"}},
		{"empty token", []any{map[string]any{"token": "", "userId": u, "applicationId": a, "startInstant": start}},
			[]string{"refreshTokens[0].token:[missing]refreshTokens.token"}},
		{"malformed ids", []any{map[string]any{"token": "x", "userId": "u", "applicationId": "a", "startInstant": start}},
			[]string{"refreshTokens[0].applicationId:[couldNotConvert]refreshTokens.applicationId",
				"refreshTokens[0].userId:[couldNotConvert]refreshTokens.userId"}},
		{"start in the future", []any{map[string]any{"token": "x", "userId": u, "applicationId": a,
			"startInstant": time.Now().Add(time.Hour).UnixMilli()}},
			[]string{"refreshTokens[0].startInstant:[invalid]refreshTokens.startInstant"}},
		{"duplicate within the batch", []any{good("dup"), good("fine"), good("dup")},
			[]string{"refreshTokens[2].token:[duplicate]refreshTokens.token"}},
		{"duplicate of a stored token", []any{good("fresh"), good(stored)},
			[]string{"refreshTokens[1].token:[duplicate]refreshTokens.token"}},
		{"unknown user and application", []any{good("a1"), map[string]any{"token": "a2", "userId": uuid.NewString(),
			"applicationId": uuid.NewString(), "startInstant": start}},
			[]string{"refreshTokens[1].applicationId:[invalid]refreshTokens.applicationId",
				"refreshTokens[1].userId:[invalid]refreshTokens.userId"}},
		{"wrong JSON type", []any{map[string]any{"token": 7, "userId": u, "applicationId": a, "startInstant": start}},
			[]string{":[invalidJSON]"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			body := map[string]any{"validateDbConstraints": true}
			if c.tokens != nil {
				body["refreshTokens"] = c.tokens
			}
			s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: body}, 400, c.codes...)
			// All or nothing: the good tokens of a refused batch are not stored either.
			var n int
			if err := s.Store.DB().Get(&n, `SELECT count(*) FROM refresh_tokens`); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("tokens stored: got %d, want 1", n)
			}
		})
	}
}

// TestImportStoresOnlyHashes: the value is nowhere in the database.
func TestImportStoresOnlyHashes(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 3)
	for _, v := range w.tokens[pair{w.users[0], w.apps[0]}] {
		var n int
		err := s.Store.DB().Get(&n, `SELECT count(*) FROM refresh_tokens r WHERE position($1::bytea in r::text::bytea) > 0
			OR position($1::bytea in r.token_hash) > 0`, []byte(v))
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Fatalf("token value found in the table")
		}
	}
}

// TestImportLargeBatch imports 10,000 tokens in one request, then lists the newest.
func TestImportLargeBatch(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	var buf bytes.Buffer
	buf.WriteString(`{"refreshTokens":[`)
	start := time.Now().Add(-time.Hour).UnixMilli()
	for i := 0; i < 10000; i++ {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"token":"bulk-%d","userId":"%s","applicationId":"%s","startInstant":%d,"insertInstant":%d}`,
			i, w.users[0], w.apps[0], start, start+int64(i))
	}
	buf.WriteString(`]}`)
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: buf.Bytes()}, 200)
	resp := s.expect(req{method: "GET", path: "/api/jwt/refresh?userId=" + w.users[0].String()}, 200)
	var list struct {
		RefreshTokens []struct{ InsertInstant int64 } `json:"refreshTokens"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.RefreshTokens) != 1000 {
		t.Fatalf("listed: got %d, want 1000", len(list.RefreshTokens))
	}
	if list.RefreshTokens[0].InsertInstant != start+9999 {
		t.Fatalf("newest first: got insertInstant %d, want %d", list.RefreshTokens[0].InsertInstant, start+9999)
	}
}

// TestConcurrentRevokeAndImport: revocations and imports on the same users at once
// neither deadlock nor lose a token that should stay.
func TestConcurrentRevokeAndImport(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 3, 5)
	victim, keeper := w.users[0], w.users[1]
	start := time.Now().Add(-time.Minute).UnixMilli()
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	do := func(r req, want int) {
		defer wg.Done()
		resp := s.do(r)
		if resp.Status != want {
			errs <- fmt.Sprintf("%s %s: status %d, want %d: %s", r.method, r.path, resp.Status, want, resp.Body)
		}
	}
	imported := map[pair]int{}
	for i := 0; i < 20; i++ {
		wg.Add(4)
		go do(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + victim.String()}, 200)
		go do(req{method: "DELETE", path: fmt.Sprintf("/api/jwt/refresh?userId=%s&applicationId=%s", victim, w.apps[i%3])}, 200)
		go do(req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{"userId": victim}}, 200)
		app := w.apps[i%3]
		imported[pair{keeper, app}]++
		go do(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": []map[string]any{
			{"token": fmt.Sprintf("keep-%d-%s", i, uuid.NewString()), "userId": keeper, "applicationId": app, "startInstant": start},
			{"token": fmt.Sprintf("victim-%d-%s", i, uuid.NewString()), "userId": victim, "applicationId": app, "startInstant": start},
		}}}, 200)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + victim.String()}, 200)
	have := s.remaining()
	for _, a := range w.apps {
		if n := have[pair{victim, a}]; n != 0 {
			t.Errorf("victim tokens for app %s: %d left", a, n)
		}
		if want := len(w.tokens[pair{keeper, a}]) + imported[pair{keeper, a}]; have[pair{keeper, a}] != want {
			t.Errorf("keeper tokens for app %s: got %d, want %d", a, have[pair{keeper, a}], want)
		}
	}
}
