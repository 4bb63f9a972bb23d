package conformance_test

import (
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"refreshd/conformance"
	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/dbtest"
	"refreshd/internal/testserver"
)

func TestMain(m *testing.M) {
	dbtest.Main(m, func(dsn string) error {
		db, err := sql.Open("postgres", dsn)
		if err != nil {
			return err
		}
		defer db.Close()
		return store.Migrate(context.Background(), db)
	})
}

// server is our real server over its own fresh database. URL is a real socket;
// Handler is the same server for wrapping in a broken variant.
type server struct {
	URL     string
	Key     string
	Store   *store.Store
	Handler http.Handler
}

func newServer(t *testing.T) *server {
	t.Helper()
	return newServerLogging(t, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
}

func newServerLogging(t *testing.T, log *slog.Logger) *server {
	t.Helper()
	srv := testserver.Start(t, log)
	return &server{URL: srv.URL, Key: srv.Key, Store: srv.Store, Handler: srv.Handler}
}

// startDispatcher delivers the server's events to its webhooks, as the server's
// main does, polling often so that webhook mode is quick, until the test ends.
func startDispatcher(t *testing.T, srv *server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		impl.RunDispatcher(ctx, srv.Store, impl.DispatcherConfig{PollInterval: 10 * time.Millisecond, Workers: 1,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// runSuite runs the cases of profile against url, cleans up, and returns the
// report; a setup error or a failed cleanup fails the test.
func runSuite(t *testing.T, cfg conformance.Config, profile conformance.Profile) *conformance.Report {
	t.Helper()
	return runSuiteOnly(t, cfg, profile, nil)
}

// runSuiteOnly is runSuite for the cases whose id starts with one of prefixes
// (all of them when there is none).
func runSuiteOnly(t *testing.T, cfg conformance.Config, profile conformance.Profile, prefixes []string) *conformance.Report {
	t.Helper()
	s, err := conformance.NewSession(cfg)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rep, err := s.Run(ctx, profile, conformance.Select(conformance.Cases(), profile, prefixes), nil)
	if cerr := s.Cleanup(context.Background()); cerr != nil {
		t.Errorf("Cleanup: %v", cerr)
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

// text renders a report for a test log.
func text(t *testing.T, rep *conformance.Report) string {
	t.Helper()
	var b strings.Builder
	if err := conformance.WriteText(&b, rep); err != nil {
		t.Fatalf("WriteText: %v", err)
	}
	return b.String()
}

// expectNoFixtures checks, in the server's database, that no user, application,
// refresh token, webhook or key is left: the tests themselves make none through
// any other path.
func expectNoFixtures(t *testing.T, srv *server) {
	t.Helper()
	for _, table := range []string{"users", "applications", "refresh_tokens", "webhooks", "keys"} {
		var n int
		if err := srv.Store.DB().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		if n != 0 {
			t.Errorf("%s left behind: got %d rows, want 0", table, n)
		}
	}
	var tenants int
	if err := srv.Store.DB().QueryRow("SELECT count(*) FROM tenants WHERE NOT is_default").Scan(&tenants); err != nil || tenants != 0 {
		t.Errorf("tenants left behind: %d (%v), want 0", tenants, err)
	}
}
