// Package typescript_test runs the TypeScript client's own test (node's test
// runner, after tsc checks it against the generated types) against the real
// server on a real socket, over a fresh database.
package typescript_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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

func TestClientAgainstServer(t *testing.T) {
	if _, err := os.Stat(filepath.Join("node_modules", ".bin", "tsc")); err != nil {
		t.Fatalf("the client's npm packages are not installed: run `make node-deps` (make test does): %v", err)
	}
	srv := testserver.Start(t, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	// The compiled test stays inside the package (build/, git-ignored), so that it
	// imports the client by the package's own name, as a user would.
	build := "build"
	if err := os.RemoveAll(build); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "REFRESHD_URL="+srv.URL, "REFRESHD_API_KEY="+srv.Key, "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		t.Logf("%s %v:\n%s", name, args, out)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	run(filepath.Join("node_modules", ".bin", "tsc"), "-p", ".", "--outDir", build)
	run("node", "--test", "--test-reporter=spec", filepath.Join(build, "test"))
}
