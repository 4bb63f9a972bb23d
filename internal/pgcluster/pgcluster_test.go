package pgcluster_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"refreshd/internal/pgcluster"
)

// sharedDir returns a fresh directory the postgres user can traverse even
// when the test runs as root (t.TempDir is root-only, which would trigger the
// fallback directory on purpose tested separately).
func sharedDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func start(t *testing.T, dataDir string) *pgcluster.Cluster {
	t.Helper()
	if _, err := pgcluster.FindBinaries(); errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dataDir, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

func open(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	connector, err := pq.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(connector)
	t.Cleanup(func() { db.Close() })
	return db
}

func stop(t *testing.T, c *pgcluster.Cluster) {
	t.Helper()
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
}

func TestFindBinaries(t *testing.T) {
	dir, err := pgcluster.FindBinaries()
	if errors.Is(err, pgcluster.ErrNoBinaries) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"initdb", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinaries() = %q, but: %v", dir, err)
		}
	}
}

func TestStartStopRestart(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(sharedDir(t), "nested", "data")
	c := start(t, dataDir)
	if want := filepath.Join(dataDir, "pg"); c.Dir() != want {
		t.Errorf("Dir() = %q, want %q", c.Dir(), want)
	}

	db := open(t, c.DSN("postgres"))
	var one int
	if err := db.QueryRow("select 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("select 1 = %d, %v", one, err)
	}
	if _, err := db.Exec("create table kept (v text); insert into kept values ('persisted')"); err != nil {
		t.Fatal(err)
	}
	db.Close()

	stop(t, c)
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), "postgres.log")); err != nil {
		t.Errorf("server log: %v", err)
	}

	c2 := start(t, dataDir)
	var v string
	if err := open(t, c2.DSN("postgres")).QueryRow("select v from kept").Scan(&v); err != nil || v != "persisted" {
		t.Fatalf("after restart: v = %q, %v", v, err)
	}

	t.Run("AlreadyRunning", func(t *testing.T) {
		_, err := pgcluster.Start(context.Background(), pgcluster.Options{DataDir: dataDir, Fast: true})
		if err == nil || !strings.Contains(err.Error(), "already running") {
			t.Fatalf("second Start on a running cluster: err = %v, want 'already running'", err)
		}
		// The running cluster must be unharmed.
		if err := open(t, c2.DSN("postgres")).Ping(); err != nil {
			t.Fatalf("first cluster after refused Start: %v", err)
		}
	})

	stop(t, c2)
}

// TestRestartAfterKill simulates a crash: the postmaster is SIGKILLed, so its
// postmaster.pid stays behind, and a new Start must still succeed.
func TestRestartAfterKill(t *testing.T) {
	t.Parallel()
	dataDir := sharedDir(t)
	c := start(t, dataDir)
	pid := postmasterPID(t, c)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.Done()
	if err := c.Stop(); err == nil {
		t.Error("Stop after the server was killed: want an error")
	}

	c2 := start(t, dataDir)
	if err := open(t, c2.DSN("postgres")).Ping(); err != nil {
		t.Fatal(err)
	}
	stop(t, c2)
}

// TestStalePidReused covers a postmaster.pid whose pid now belongs to an
// unrelated live process, which PostgreSQL alone would refuse to start on.
func TestStalePidReused(t *testing.T) {
	t.Parallel()
	dataDir := sharedDir(t)
	c := start(t, dataDir)
	stop(t, c)

	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	pidFile := filepath.Join(c.Dir(), "data", "postmaster.pid")
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(sleeper.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	c2 := start(t, dataDir)
	if err := open(t, c2.DSN("postgres")).Ping(); err != nil {
		t.Fatal(err)
	}
	stop(t, c2)
}

// TestLongSocketPath checks that a cluster directory too deep for a Unix
// socket path gets its socket in a short directory that Stop removes.
func TestLongSocketPath(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(sharedDir(t), strings.Repeat("d", 60), strings.Repeat("e", 60))
	c := start(t, dataDir)
	if err := open(t, c.DSN("postgres")).Ping(); err != nil {
		t.Fatal(err)
	}
	cfg, err := pq.NewConfig(c.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(cfg.Host, c.Dir()) || len(cfg.Host) > 60 {
		t.Errorf("socket dir %q not shortened", cfg.Host)
	}
	stop(t, c)
	if _, err := os.Stat(cfg.Host); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary socket dir %s not removed: %v", cfg.Host, err)
	}
}

// TestFallbackDir checks that, as root, a DataDir the postgres user cannot
// reach is replaced by a stable directory under os.TempDir().
func TestFallbackDir(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("fallback applies only when running as root")
	}
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(private, "data")
	sum := sha256.Sum256([]byte(dataDir))
	fallback := filepath.Join(os.TempDir(), "refreshd-pg-"+hex.EncodeToString(sum[:])[:12])
	t.Cleanup(func() { os.RemoveAll(fallback) })

	c := start(t, dataDir)
	if want := filepath.Join(fallback, "pg"); c.Dir() != want {
		t.Errorf("Dir() = %q, want %q", c.Dir(), want)
	}
	if err := open(t, c.DSN("postgres")).Ping(); err != nil {
		t.Fatal(err)
	}
	stop(t, c)
}

func postmasterPID(t *testing.T, c *pgcluster.Cluster) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.Dir(), "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(first)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}
