package impl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/dbtest"
	"refreshd/internal/testserver"
)

func TestMain(m *testing.M) {
	dbtest.Main(m, store.MigrateDSN)
}

// testServer is our server on a real socket over its own fresh database.
type testServer struct {
	t     *testing.T
	URL   string
	Key   string
	Store *store.Store
}

func newServer(t *testing.T) *testServer {
	t.Helper()
	srv := testserver.Start(t, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	return &testServer{t: t, URL: srv.URL, Key: srv.Key, Store: srv.Store}
}

// response is what came back, with the body read.
type response struct {
	Status int
	Body   []byte
	Header http.Header
}

// errorsBody is FusionAuth's error body, decoded loosely enough to see anything.
type errorsBody struct {
	FieldErrors   map[string][]struct{ Code, Message string } `json:"fieldErrors"`
	GeneralErrors []struct{ Code, Message string }            `json:"generalErrors"`
}

// codes lists the error codes of a 400 body as "field:code" and ":code" strings, sorted.
func (r response) codes(t *testing.T) []string {
	t.Helper()
	var b errorsBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("400 body is not the error format: %v: %s", err, r.Body)
	}
	var out []string
	for field, list := range b.FieldErrors {
		for _, e := range list {
			if e.Message == "" {
				t.Errorf("error %s on %s has no message", e.Code, field)
			}
			out = append(out, field+":"+e.Code)
		}
	}
	for _, e := range b.GeneralErrors {
		out = append(out, ":"+e.Code)
	}
	sortStrings(out)
	return out
}

type req struct {
	method, path string
	body         any // string sent as is, otherwise JSON-encoded
	header       map[string]string
	noKey        bool
}

func (s *testServer) do(r req) response {
	s.t.Helper()
	var body io.Reader
	switch b := r.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("encode body: %v", err)
		}
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequest(r.method, s.URL+r.path, body)
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if !r.noKey {
		hr.Header.Set("Authorization", s.Key)
	}
	for k, v := range r.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		s.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("read body: %v", err)
	}
	return response{Status: resp.StatusCode, Body: raw, Header: resp.Header}
}

// expect checks the status and, for a 400, the exact set of error codes; other
// statuses of 200/401/404 must come with the body the contract gives them.
func (s *testServer) expect(r req, status int, codes ...string) response {
	s.t.Helper()
	resp := s.do(r)
	if resp.Status != status {
		s.t.Fatalf("%s %s: status %d, want %d; body %s", r.method, r.path, resp.Status, status, resp.Body)
	}
	if status == http.StatusBadRequest {
		got := resp.codes(s.t)
		sortStrings(codes)
		if strings.Join(got, " ") != strings.Join(codes, " ") {
			s.t.Fatalf("%s %s: codes %v, want %v", r.method, r.path, got, codes)
		}
	}
	if (status == 401 || status == 404 || status == 500) && len(resp.Body) != 0 {
		s.t.Fatalf("%s %s: status %d with body %q, want empty", r.method, r.path, status, resp.Body)
	}
	return resp
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// world is a seeded set of users × applications, each pair holding tokens with
// known values, so a test can say exactly what must remain.
type world struct {
	users, apps []uuid.UUID
	tokens      map[pair][]string // values by (user, app)
}

type pair struct{ user, app uuid.UUID }

func (s *testServer) createApp(id uuid.UUID) {
	s.t.Helper()
	s.expect(req{method: "POST", path: "/api/application/" + id.String(),
		body: map[string]any{"application": map[string]any{"name": "app " + id.String()}}}, 200)
}

func (s *testServer) createUser(id uuid.UUID) {
	s.t.Helper()
	s.expect(req{method: "POST", path: "/api/user/" + id.String(),
		body: map[string]any{"user": map[string]any{"email": id.String() + "@example.com", "password": "secret-password"}}}, 200)
}

// seed makes nUsers × nApps with perPair tokens each, through the public API.
func (s *testServer) seed(nUsers, nApps, perPair int) *world {
	s.t.Helper()
	w := &world{tokens: map[pair][]string{}}
	for i := 0; i < nUsers; i++ {
		id := uuid.New()
		s.createUser(id)
		w.users = append(w.users, id)
	}
	for i := 0; i < nApps; i++ {
		id := uuid.New()
		s.createApp(id)
		w.apps = append(w.apps, id)
	}
	var batch []map[string]any
	start := time.Now().Add(-time.Minute).UnixMilli()
	for _, u := range w.users {
		for _, a := range w.apps {
			for k := 0; k < perPair; k++ {
				v := fmt.Sprintf("tok-%s-%s-%d-%s", u, a, k, uuid.NewString())
				w.tokens[pair{u, a}] = append(w.tokens[pair{u, a}], v)
				batch = append(batch, map[string]any{"token": v, "userId": u, "applicationId": a,
					"startInstant": start, "metaData": map[string]any{"device": map[string]any{"name": "phone"}}})
			}
		}
	}
	if len(batch) > 0 {
		s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": batch}}, 200)
	}
	return w
}

// remaining counts stored live tokens per (user, app), by SQL.
func (s *testServer) remaining() map[pair]int {
	s.t.Helper()
	rows, err := s.Store.DB().Query(`SELECT user_id, application_id, count(*) FROM refresh_tokens
		WHERE expires_at > $1 GROUP BY 1, 2`, store.NowMillis())
	if err != nil {
		s.t.Fatalf("count tokens: %v", err)
	}
	defer rows.Close()
	out := map[pair]int{}
	for rows.Next() {
		var p pair
		var n int
		if err := rows.Scan(&p.user, &p.app, &n); err != nil {
			s.t.Fatalf("scan: %v", err)
		}
		out[p] = n
	}
	return out
}

// expectRemaining checks, by SQL and through GET by user, that each pair lost
// exactly removed(pair) tokens and kept all others.
func (s *testServer) expectRemaining(w *world, removed func(pair) int) {
	s.t.Helper()
	have := s.remaining()
	for p, values := range w.tokens {
		want := len(values) - removed(p)
		if have[p] != want {
			s.t.Errorf("tokens of user %s app %s: got %d, want %d (SQL)", p.user, p.app, have[p], want)
		}
	}
	for _, u := range w.users {
		resp := s.expect(req{method: "GET", path: "/api/jwt/refresh?userId=" + u.String()}, 200)
		var list struct {
			RefreshTokens []struct {
				ApplicationID uuid.UUID `json:"applicationId"`
				Token         *string   `json:"token"`
			} `json:"refreshTokens"`
		}
		if err := json.Unmarshal(resp.Body, &list); err != nil {
			s.t.Fatalf("decode list: %v", err)
		}
		perApp := map[uuid.UUID]int{}
		for _, t := range list.RefreshTokens {
			if t.Token != nil {
				s.t.Errorf("GET returned a token value")
			}
			perApp[t.ApplicationID]++
		}
		for _, a := range w.apps {
			want := len(w.tokens[pair{u, a}]) - removed(pair{u, a})
			if perApp[a] != want {
				s.t.Errorf("GET tokens of user %s app %s: got %d, want %d", u, a, perApp[a], want)
			}
		}
	}
}

func none(pair) int { return 0 }

// tokenIDs lists the ids of a user's live tokens through GET, newest first.
func (s *testServer) tokenIDs(user uuid.UUID) []string {
	s.t.Helper()
	resp := s.expect(req{method: "GET", path: "/api/jwt/refresh?userId=" + user.String()}, 200)
	var list struct {
		RefreshTokens []struct {
			ID string `json:"id"`
		} `json:"refreshTokens"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		s.t.Fatalf("decode list: %v", err)
	}
	var ids []string
	for _, t := range list.RefreshTokens {
		ids = append(ids, t.ID)
	}
	return ids
}

func nowMillis() int64 { return time.Now().UnixMilli() }

func reapOnce(s *testServer) (int64, error) { return impl.ReapOnce(context.Background(), s.Store) }
