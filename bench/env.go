package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/lib/pq"

	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/pgcluster"
)

// env is what a run stands on: a database, the store, and our server listening
// on a real socket in this process.
type env struct {
	dsn        string
	postmaster int  // pid, 0 when the server's CPU is not ours to count (DATABASE_URL)
	private    bool // a cluster of our own, started for the run
	undo       []func() error

	st       *store.Store
	baseURL  string
	apiKey   string
	tenantID uuid.UUID // the default tenant
}

func (e *env) close() error {
	var errs []error
	for i := len(e.undo) - 1; i >= 0; i-- {
		errs = append(errs, e.undo[i]())
	}
	return errors.Join(errs...)
}

// setupEnv prepares the database and starts the server. On error it has undone
// what it did.
func setupEnv(ctx context.Context, cfg Config, log *slog.Logger) (e *env, err error) {
	e = &env{}
	defer func() {
		if err != nil {
			_ = e.close()
		}
	}()
	if err := e.database(ctx, cfg, log); err != nil {
		return nil, err
	}
	if e.st, err = store.Open(ctx, e.dsn); err != nil {
		return nil, err
	}
	e.undo = append(e.undo, e.st.Close)
	e.apiKey = impl.NewKeyValue()
	if _, err := impl.EnsureBootstrapKey(ctx, e.st, e.apiKey); err != nil {
		return nil, fmt.Errorf("bootstrap API key: %w", err)
	}
	if err := e.st.DB().GetContext(ctx, &e.tenantID, `SELECT id FROM tenants WHERE is_default`); err != nil {
		return nil, fmt.Errorf("default tenant: %w", err)
	}
	handler, err := impl.New(impl.Config{Logger: log}, e.st)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// As cmd/refreshd serves it.
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { _ = srv.Serve(ln) }()
	e.undo = append(e.undo, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return srv.Shutdown(ctx)
	})
	e.baseURL = "http://" + ln.Addr().String()
	return e, nil
}

func (e *env) database(ctx context.Context, cfg Config, log *slog.Logger) error {
	if cfg.DatabaseURL != "" {
		e.postmaster = cfg.PostmasterPID
		return e.freshDatabase(ctx, cfg)
	}
	dir, err := os.MkdirTemp("", "refreshd-bench-")
	if err != nil {
		return err
	}
	e.undo = append(e.undo, func() error { return os.RemoveAll(dir) })
	// As root the cluster runs as the postgres user, which must traverse dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, Fast: cfg.FastPostgres, Logger: log})
	if err != nil {
		return fmt.Errorf("%w (or set DATABASE_URL to use an existing server)", err)
	}
	e.undo = append(e.undo, c.Stop)
	e.dsn = c.DSN("postgres")
	e.postmaster, e.private = postmasterPID(c.Dir()), true
	return nil
}

// freshDatabase creates a database of its own on the DATABASE_URL server: the
// latency check needs a table that starts empty, and a few million rows should
// not land in someone's working database.
func (e *env) freshDatabase(ctx context.Context, cfg Config) error {
	admin, err := sql.Open("postgres", cfg.DatabaseURL)
	if err != nil {
		return err
	}
	e.undo = append(e.undo, admin.Close)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "refreshd_bench_" + hex.EncodeToString(b)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return fmt.Errorf("creating database %s on DATABASE_URL: %w", name, err)
	}
	if !cfg.KeepDatabase {
		e.undo = append(e.undo, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			_, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+pq.QuoteIdentifier(name)+" WITH (FORCE)")
			return err
		})
	}
	e.dsn = withDatabase(cfg.DatabaseURL, name)
	return nil
}

func postmasterPID(clusterDir string) int {
	b, err := os.ReadFile(filepath.Join(clusterDir, "data", "postmaster.pid"))
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(first))
	return pid
}

// withDatabase returns dsn (a URL or key=value string) naming dbname instead.
func withDatabase(dsn, dbname string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		if u, err := url.Parse(dsn); err == nil {
			u.Path, u.RawPath = "/"+dbname, ""
			return u.String()
		}
	}
	// In a key=value string a later keyword overrides an earlier one.
	return strings.TrimSpace(dsn) + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(dbname) + "'"
}

// Machine describes where the numbers came from.
type Machine struct {
	CPU        string  `json:"cpu"`
	Cores      int     `json:"cores"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	MemoryGiB  float64 `json:"memory_gib"`
	LoadAvg    string  `json:"load_average"`
	Go         string  `json:"go"`
	PostgreSQL string  `json:"postgresql"`
	PGSettings string  `json:"pg_settings"`
	PGPrivate  bool    `json:"pg_private"`
}

func describeMachine(ctx context.Context, e *env) Machine {
	m := Machine{
		CPU: "unknown", Cores: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH, PGPrivate: e.private,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					kb, _ := strconv.ParseFloat(f[0], 64)
					m.MemoryGiB = kb / (1 << 20)
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	db := e.st.DB()
	_ = db.GetContext(ctx, &m.PostgreSQL, `SHOW server_version`)
	var settings []struct {
		Name    string         `db:"name"`
		Setting string         `db:"setting"`
		Unit    sql.NullString `db:"unit"`
	}
	_ = db.SelectContext(ctx, &settings, `SELECT name, setting, unit FROM pg_settings
		WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections') ORDER BY name`)
	var parts []string
	for _, s := range settings {
		v := s.Setting
		if s.Name == "shared_buffers" {
			if n, err := strconv.Atoi(v); err == nil && s.Unit.String == "8kB" {
				v = strconv.Itoa(n*8/1024) + "MB"
			}
		}
		parts = append(parts, s.Name+"="+v)
	}
	m.PGSettings = strings.Join(parts, " ")
	return m
}
