// Package dbtest gives each test its own PostgreSQL database, cloned from a
// template prepared once per test binary, so tests can run in parallel
// without seeing each other's rows and without re-running migrations.
//
// The server is DATABASE_URL when set (CI, a developer's own server) and
// otherwise a private throw-away cluster started with pgcluster.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"refreshd/internal/pgcluster"
)

// templateName is the template database on a private cluster. On a shared
// server (DATABASE_URL) a random suffix is added, since test binaries of
// several packages run at the same time and each prepares its own template.
const templateName = "refreshd_template"

// env is the server state set up by Main and used by NewDSN.
var env struct {
	admin    *sql.DB // maintenance connection for CREATE/DROP DATABASE
	template string
	dsnFor   func(dbname string) string
	// createMu serialises CREATE DATABASE ... TEMPLATE: PostgreSQL rejects
	// concurrent clones of one template with SQLSTATE 55006.
	createMu sync.Mutex
}

// Main runs the tests of a package that uses NewDSN or New; call it from
// TestMain. It connects to DATABASE_URL if set, or else starts a private
// fast (non-durable) cluster in a temporary directory; creates the template
// database and calls prepare once with its DSN (to run migrations, say;
// prepare must close its connections before returning); runs the tests;
// tears everything down and exits with the tests' exit code.
func Main(m *testing.M, prepare func(dsn string) error) {
	os.Exit(run(m, prepare))
}

func run(m *testing.M, prepare func(dsn string) error) int {
	teardown, err := setup(prepare)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: %v\n", err)
		return 1
	}
	code := m.Run()
	if err := teardown(); err != nil {
		fmt.Fprintf(os.Stderr, "dbtest: teardown: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// setup makes env usable and returns the function that undoes it. On error
// it has already undone whatever it did.
func setup(prepare func(dsn string) error) (teardown func() error, err error) {
	var undo []func() error
	teardown = func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = teardown()
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var adminDSN string
	if base := os.Getenv("DATABASE_URL"); base != "" {
		adminDSN = base
		env.dsnFor = func(dbname string) string { return withDatabase(base, dbname) }
		env.template = templateName + "_" + randomHex()
	} else {
		dir, err := os.MkdirTemp("", "refreshd-dbtest-")
		if err != nil {
			return nil, err
		}
		undo = append(undo, func() error { return os.RemoveAll(dir) })
		// The server may run as the postgres user, which must traverse dir.
		if err := os.Chmod(dir, 0o755); err != nil {
			return nil, err
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, Fast: true, Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("%w (or set DATABASE_URL to use an existing server)", err)
		}
		undo = append(undo, c.Stop)
		adminDSN = c.DSN("postgres")
		env.dsnFor = c.DSN
		env.template = templateName
	}

	admin, err := sql.Open("postgres", adminDSN)
	if err != nil {
		return nil, err
	}
	undo = append(undo, admin.Close)
	env.admin = admin

	tmpl := pq.QuoteIdentifier(env.template)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+tmpl); err != nil {
		return nil, fmt.Errorf("creating template database: %w", err)
	}
	undo = append(undo, dropTemplate)
	if prepare != nil {
		if err := prepare(env.dsnFor(env.template)); err != nil {
			return nil, fmt.Errorf("preparing template database: %w", err)
		}
	}
	// Lock the template against new connections and end any that prepare
	// left open: either would make every clone fail with 55006.
	if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+tmpl+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return nil, fmt.Errorf("locking template database: %w", err)
	}
	if _, err := admin.ExecContext(ctx,
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
		env.template); err != nil {
		return nil, fmt.Errorf("closing template connections: %w", err)
	}
	return teardown, nil
}

// dropTemplate removes the template; it matters on a shared server, where
// it would otherwise accumulate.
func dropTemplate() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tmpl := pq.QuoteIdentifier(env.template)
	// A template database cannot be dropped until it stops being one.
	if _, err := env.admin.ExecContext(ctx, "ALTER DATABASE "+tmpl+" WITH IS_TEMPLATE false"); err != nil {
		return err
	}
	_, err := env.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+tmpl+" WITH (FORCE)")
	return err
}

// NewDSN creates a fresh database cloned from the template prepared by Main,
// drops it when the test ends, and returns a lib/pq DSN for it.
func NewDSN(t testing.TB) string {
	t.Helper()
	if env.admin == nil {
		t.Fatal("dbtest: NewDSN needs dbtest.Main to be called from TestMain")
	}
	name := "t_" + randomHex()
	if err := createFromTemplate(name); err != nil {
		t.Fatalf("dbtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := env.admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: dropping database %s: %v", name, err)
		}
	})
	return env.dsnFor(name)
}

// createFromTemplate clones the template into a new database, retrying
// while the template is briefly in use (by a clone from another package's
// test binary on a shared server, or a connection still closing).
func createFromTemplate(name string) error {
	env.createMu.Lock()
	defer env.createMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	query := "CREATE DATABASE " + pq.QuoteIdentifier(name) + " TEMPLATE " + pq.QuoteIdentifier(env.template)
	for {
		_, err := env.admin.ExecContext(ctx, query)
		if pq.As(err, pqerror.ObjectInUse) == nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// New returns a connection pool on a fresh database from NewDSN, closed when
// the test ends (before the database is dropped).
func New(t testing.TB) *sqlx.DB {
	t.Helper()
	db, err := sqlx.Connect("postgres", NewDSN(t))
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// withDatabase returns dsn (a postgres:// URL or a key=value string) with
// its database replaced by dbname.
func withDatabase(dsn, dbname string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path, u.RawPath = "/"+dbname, ""
			return u.String()
		}
	}
	// In a key=value string a repeated keyword overrides earlier ones.
	return strings.TrimSpace(dsn) + " dbname=" + quoteValue(dbname)
}

// quoteValue quotes v for a key=value connection string when needed.
func quoteValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// randomHex returns 16 random hex digits, for unique database names.
func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
