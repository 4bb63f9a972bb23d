// Package testserver starts the real server, on a real socket, over a fresh
// database of its own: what tests of the server and of the conformance suite need.
package testserver

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/dbtest"
)

// Server is a running server. Handler is the same server, for tests that wrap it.
type Server struct {
	URL     string
	Key     string // an unrestricted API key
	Store   *store.Store
	Handler http.Handler
}

// Start starts a server that logs to log; the test's cleanup stops it. The test
// binary's TestMain must run dbtest.Main with store.MigrateDSN.
func Start(t testing.TB, log *slog.Logger) *Server {
	t.Helper()
	return StartWith(t, impl.Config{Logger: log})
}

// StartWith starts a server with the given configuration, as Start does.
func StartWith(t testing.TB, cfg impl.Config) *Server {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbtest.NewDSN(t))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	key := impl.NewKeyValue()
	if _, err := impl.EnsureBootstrapKey(ctx, st, key); err != nil {
		t.Fatalf("bootstrap key: %v", err)
	}
	e, err := impl.New(cfg, st)
	if err != nil {
		t.Fatalf("impl.New: %v", err)
	}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &Server{URL: srv.URL, Key: key, Store: st, Handler: e}
}
