package impl_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/pgcluster"
)

// logBuffer collects log lines from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// count says how many lines contain s.
func (b *logBuffer) count(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// eventually polls cond until it holds; the bound only keeps a broken server
// from hanging the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("still not so after a minute: %s", what)
}

// TestDatabaseOutage stops the real PostgreSQL under a running server, its
// dispatcher and its reaper, and starts it again. While it is down every
// request is answered 503 with Retry-After (never 500), /api/status says
// unavailable, and the dispatcher and the reaper each log the outage once; once
// it is back, requests succeed and each logs the recovery once.
func TestDatabaseOutage(t *testing.T) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "refreshd-outage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the server may run as the postgres user
		t.Fatal(err)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	dsn := cluster.DSN("postgres")
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key := impl.NewKeyValue()
	if _, err := impl.EnsureBootstrapKey(ctx, st, key); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	e, err := impl.New(impl.Config{Logger: log}, st)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); impl.RunReaper(bg, st, log, nil, 10*time.Millisecond) }()
	go func() {
		defer wg.Done()
		impl.RunDispatcher(bg, st, impl.DispatcherConfig{Logger: log, PollInterval: 10 * time.Millisecond})
	}()
	t.Cleanup(func() { stop(); wg.Wait() })

	s := &testServer{t: t, URL: srv.URL, Key: key, Store: st}
	w := s.seed(1, 1, 3)
	tokens := w.tokens[pair{w.users[0], w.apps[0]}]
	ids := s.tokenIDs(w.users[0])
	s.expect(req{method: "GET", path: "/api/status", noKey: true}, 200)

	if err := cluster.Stop(); err != nil {
		t.Fatal(err)
	}
	requests := []req{
		{method: "DELETE", path: "/api/jwt/refresh?token=" + tokens[0]},
		{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{"userId": w.users[0]}},
		{method: "DELETE", path: "/api/jwt/refresh/" + ids[1]},
		{method: "GET", path: "/api/jwt/refresh?userId=" + w.users[0].String()},
		{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": tokens[1]}},
		{method: "POST", path: "/api/user", body: map[string]any{"user": map[string]any{"email": "outage@example.com"}}},
		{method: "GET", path: "/api/event"},
		{method: "GET", path: "/.well-known/jwks.json", noKey: true},
		{method: "GET", path: "/api/application/" + uuid.NewString()},
		// Keys the cache has not seen must be looked up, and cannot be.
		{method: "GET", path: "/api/event", header: map[string]string{"Authorization": impl.NewKeyValue()}},
	}
	for round := 0; round < 3; round++ {
		for _, r := range requests {
			resp := s.do(r)
			if resp.Status != http.StatusServiceUnavailable || len(resp.Body) != 0 || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s %s during the outage: status %d, Retry-After %q, body %q; want 503, a Retry-After, no body",
					r.method, r.path, resp.Status, resp.Header.Get("Retry-After"), resp.Body)
			}
		}
	}
	status := s.expect(req{method: "GET", path: "/api/status", noKey: true}, 503)
	if !strings.Contains(string(status.Body), `"unavailable"`) {
		t.Errorf("status during the outage: %s", status.Body)
	}
	eventually(t, "dispatcher and reaper logged the outage", func() bool {
		return logs.count("dispatcher: database unavailable") > 0 && logs.count("reaper: database unavailable") > 0
	})
	// Many more polls of both loops (10 ms each) fail meanwhile.
	time.Sleep(300 * time.Millisecond)

	cluster, err = pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	if cluster.DSN("postgres") != dsn {
		t.Fatalf("the restarted cluster has another address: %s, was %s", cluster.DSN("postgres"), dsn)
	}
	eventually(t, "status ok again", func() bool { return s.do(req{method: "GET", path: "/api/status", noKey: true}).Status == 200 })
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + tokens[0]}, 200)
	s.expect(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": tokens[1]}}, 200)
	eventually(t, "dispatcher and reaper logged the recovery", func() bool {
		return logs.count("dispatcher: database available again") > 0 && logs.count("reaper: database available again") > 0
	})
	time.Sleep(100 * time.Millisecond)
	for _, line := range []string{"dispatcher: database unavailable", "reaper: database unavailable",
		"dispatcher: database available again", "reaper: database available again"} {
		if n := logs.count(line); n != 1 {
			t.Errorf("%q logged %d times, want once", line, n)
		}
	}
	for _, bad := range []string{"request failed", "level=ERROR"} {
		if logs.count(bad) > 0 {
			t.Errorf("the log has %q:\n%s", bad, logs)
		}
	}
}
