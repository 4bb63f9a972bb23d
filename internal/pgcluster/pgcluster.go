//go:build unix

// Package pgcluster runs a private PostgreSQL cluster from the server
// binaries installed on the machine, so that refreshd and its tests need
// neither a shared database server nor Docker.
//
// The cluster listens on no TCP port, only on a Unix socket, and trusts every
// connection on it; the socket directory is private to the server user, so
// only that user (and root) can connect.
package pgcluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lib/pq"
)

const (
	// port only names the socket file (.s.PGSQL.<port>); nothing listens on
	// TCP, so a fixed port never collides between clusters.
	port = 5432

	// maxSocketPath keeps the socket path safely below the 107-byte limit
	// of sun_path, which PostgreSQL enforces at startup.
	maxSocketPath = 100

	readyTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	quitTimeout  = 5 * time.Second
)

// Options configures Start.
type Options struct {
	// DataDir is where the cluster lives (in DataDir/pg); missing parents
	// are created. Reusing a DataDir reuses its data.
	DataDir string
	// Fast trades durability for speed (fsync, synchronous_commit and
	// full_page_writes off): right for throw-away test clusters, wrong for
	// data that must survive a machine crash.
	Fast bool
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
}

// Cluster is a running PostgreSQL server started by Start. It is owned by
// the process that started it: Stop shuts it down, and on Linux it is also
// killed if that process dies.
type Cluster struct {
	dir        string // cluster directory: data/, sock/, postgres.log
	dataDir    string
	sockDir    string
	tmpSockDir bool // sockDir was made under /tmp and is removed by Stop
	logPath    string
	logger     *slog.Logger

	cmd      *exec.Cmd
	exited   chan struct{} // closed once cmd.Wait returns
	waitErr  error         // valid after exited is closed
	stopping chan struct{} // closed when Stop begins
	ready    atomic.Bool   // set once Start has succeeded

	stopOnce sync.Once
	stopErr  error
}

// startAttempts bounds how often Start launches a postgres that exits at once.
const startAttempts = 20

// Start initialises the cluster directory if needed and starts PostgreSQL on
// it, returning once the server accepts connections. ctx bounds only the
// startup; the server keeps running until Stop.
//
// When running as root, the server runs as the postgres system user. If that
// user cannot reach opts.DataDir (e.g. it sits under a root-only home), a
// stable directory under os.TempDir() derived from DataDir is used instead,
// so data still persists across runs; Dir reports where the cluster lives.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.DataDir == "" {
		return nil, errors.New("pgcluster: Options.DataDir is empty")
	}
	binDir, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	su, err := lookupServerUser()
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	base, err := chooseBaseDir(opts.DataDir, su, logger)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}

	c := &Cluster{
		dir:      filepath.Join(base, "pg"),
		logger:   logger,
		exited:   make(chan struct{}),
		stopping: make(chan struct{}),
	}
	c.dataDir = filepath.Join(c.dir, "data")
	c.logPath = filepath.Join(c.dir, "postgres.log")
	if err := c.prepareDir(su); err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}

	logFile, err := os.OpenFile(c.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	defer logFile.Close() // the children keep their own descriptors
	if err := su.chown(c.logPath); err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	logStart, _ := logFile.Seek(0, io.SeekEnd)

	if err := c.initdb(ctx, binDir, su, logFile, opts.Fast, logStart); err != nil {
		return nil, err
	}
	if err := c.checkStaleLock(); err != nil {
		return nil, err
	}
	if err := c.prepareSocketDir(su); err != nil {
		c.removeTmpSockDir()
		return nil, fmt.Errorf("pgcluster: %w", err)
	}

	args := []string{
		"-D", c.dataDir,
		"-k", c.sockDir,
		"-p", strconv.Itoa(port),
		"-c", "listen_addresses=",
		"-c", "max_connections=200",
	}
	if opts.Fast {
		args = append(args,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		)
	}
	for attempt := 1; ; attempt++ {
		c.exited = make(chan struct{})
		c.cmd = c.command(binDir, "postgres", su, logFile, args...)
		if err := c.cmd.Start(); err != nil {
			c.removeTmpSockDir()
			return nil, fmt.Errorf("pgcluster: starting postgres: %w", err)
		}
		go c.watch()
		err := c.waitReady(ctx)
		if err == nil {
			break
		}
		// After a crash (our process SIGKILLed, say), the old server's backends
		// can hold its shared memory for a moment after their postmaster died,
		// and postgres refuses to start until they are gone. So a server that
		// exits at once is started again, for a few seconds, before giving up.
		exitedAtOnce := false
		select {
		case <-c.exited:
			exitedAtOnce = true
		default:
		}
		if exitedAtOnce && attempt < startAttempts && ctx.Err() == nil {
			logger.Info("pgcluster: postgres exited during startup; retrying", "attempt", attempt)
			time.Sleep(250 * time.Millisecond)
			continue
		}
		_ = c.Stop()
		return nil, fmt.Errorf("pgcluster: %w\n%s", err, c.logTail(logStart))
	}
	c.ready.Store(true)
	logger.Info("pgcluster: PostgreSQL started", "dir", c.dir, "pid", c.cmd.Process.Pid, "socket", c.sockDir)
	return c, nil
}

// chooseBaseDir returns the absolute directory the cluster directory goes
// in: dataDir itself, or a stable fallback under os.TempDir() when the
// server user could not reach dataDir.
func chooseBaseDir(dataDir string, su *serverUser, logger *slog.Logger) (string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return "", err
	}
	if su.canTraverse(abs) {
		return abs, mkdirTraversable(abs)
	}
	sum := sha256.Sum256([]byte(abs))
	fallback := filepath.Join(os.TempDir(), "refreshd-pg-"+hex.EncodeToString(sum[:])[:12])
	if !su.canTraverse(fallback) {
		return "", fmt.Errorf("the %s user can reach neither %s nor the fallback %s", su.name, abs, fallback)
	}
	// The fallback name is predictable and lives in a shared directory, so
	// refuse anything that we did not create ourselves.
	if fi, err := os.Lstat(fallback); err == nil {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !fi.IsDir() || !ok || int(st.Uid) != os.Geteuid() {
			return "", fmt.Errorf("fallback directory %s exists but is not a directory owned by us", fallback)
		}
	}
	logger.Info("pgcluster: data directory not reachable by the server user; using fallback directory",
		"requested", abs, "user", su.name, "dir", fallback)
	return fallback, mkdirTraversable(fallback)
}

// prepareDir creates the cluster directory, private to the server user.
func (c *Cluster) prepareDir(su *serverUser) error {
	if err := os.Mkdir(c.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return su.chown(c.dir)
}

// initdb creates the database cluster unless PG_VERSION shows one exists.
func (c *Cluster) initdb(ctx context.Context, binDir string, su *serverUser, logFile *os.File, fast bool, logStart int64) error {
	if _, err := os.Stat(filepath.Join(c.dataDir, "PG_VERSION")); err == nil {
		return nil
	}
	// A data directory without PG_VERSION is the remains of an interrupted
	// initdb (it lives inside our own cluster directory); initdb refuses a
	// non-empty directory, so clear it.
	if _, err := os.Stat(c.dataDir); err == nil {
		c.logger.Warn("pgcluster: removing incomplete data directory", "dir", c.dataDir)
		if err := os.RemoveAll(c.dataDir); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	c.logger.Info("pgcluster: initialising new cluster", "dir", c.dataDir)
	args := []string{"-D", c.dataDir, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"}
	if fast {
		args = append(args, "--no-sync")
	}
	cmd := c.command(binDir, "initdb", su, logFile, args...)
	if err := runWithContext(ctx, cmd); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w\n%s", err, c.logTail(logStart))
	}
	return nil
}

// runWithContext runs cmd, killing it if ctx is done first. (The commands
// are built without exec.CommandContext because the server, unlike initdb,
// must outlive the startup context.)
func runWithContext(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

// checkStaleLock looks at postmaster.pid left by an earlier run. PostgreSQL
// itself ignores the file when its pid is dead, but refuses to start when
// the pid has been reused by any live process, which is common in
// containers. So: a live PostgreSQL process there means a server still runs
// on this directory, which is reported; any other live process means the
// file is stale and it is removed.
func (c *Cluster) checkStaleLock() error {
	pidFile := filepath.Join(c.dataDir, "postmaster.pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return nil // unreadable: let postgres judge it
	}
	alive, isPostgres := isPostgresProcess(pid)
	switch {
	case !alive:
		return nil
	case isPostgres:
		return fmt.Errorf("pgcluster: a PostgreSQL server (pid %d) is already running on %s; stop it (or the program that started it) first", pid, c.dataDir)
	}
	c.logger.Warn("pgcluster: removing stale postmaster.pid whose pid now belongs to another process", "pid", pid, "file", pidFile)
	if err := os.Remove(pidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

// prepareSocketDir makes a fresh, private socket directory: <dir>/sock, or a
// short one under /tmp when that path would be too long for a Unix socket.
// It runs only after checkStaleLock, so no live server uses the old one.
func (c *Cluster) prepareSocketDir(su *serverUser) error {
	c.sockDir = filepath.Join(c.dir, "sock")
	if len(c.sockDir)+len("/.s.PGSQL.")+len(strconv.Itoa(port)) > maxSocketPath {
		dir, err := os.MkdirTemp("/tmp", "rpg-")
		if err != nil {
			return err
		}
		c.sockDir, c.tmpSockDir = dir, true
	} else {
		if err := os.RemoveAll(c.sockDir); err != nil {
			return err
		}
		if err := os.Mkdir(c.sockDir, 0o700); err != nil {
			return err
		}
	}
	if err := os.Chmod(c.sockDir, 0o700); err != nil {
		return err
	}
	return su.chown(c.sockDir)
}

// command builds a child process running as su, in the cluster directory
// (which su can always enter, unlike our own working directory), with a
// minimal environment: PG* variables from our environment must not leak
// into the server, and a C locale keeps initdb from failing on a locale
// that is not installed.
func (c *Cluster) command(binDir, name string, su *serverUser, logFile *os.File, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Dir = c.dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr(su)
	cmd.Env = []string{"HOME=" + c.dir, "LC_ALL=C", "LANG=C", "PATH=" + os.Getenv("PATH")}
	for _, key := range []string{"TZ", "TMPDIR"} {
		if v, ok := os.LookupEnv(key); ok {
			cmd.Env = append(cmd.Env, key+"="+v)
		}
	}
	return cmd
}

// watch reaps the server and records how it ended, so that Start and Stop
// can notice an exit without polling, and an unexpected exit after a
// successful Start (a failed Start reports its own error) is logged.
func (c *Cluster) watch() {
	c.waitErr = c.cmd.Wait()
	close(c.exited)
	select {
	case <-c.stopping:
	default:
		if !c.ready.Load() {
			return
		}
		c.logger.Error("pgcluster: PostgreSQL exited unexpectedly", "err", c.waitErr, "log", c.logPath)
	}
}

// waitReady pings the server until it accepts connections, it exits, ctx is
// done, or readyTimeout passes.
func (c *Cluster) waitReady(ctx context.Context) error {
	connector, err := pq.NewConnector(c.DSN("postgres"))
	if err != nil {
		return err
	}
	db := sql.OpenDB(connector)
	defer db.Close()

	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		pingCtx, cancel := context.WithTimeout(ctx, time.Second)
		err := db.PingContext(pingCtx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited during startup: %v", c.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("postgres not ready after %s: %v", readyTimeout, err)
		case <-tick.C:
		}
	}
}

// logTail returns the last lines written to postgres.log since offset
// from, for error messages: PostgreSQL explains its failures there.
func (c *Cluster) logTail(from int64) string {
	const maxBytes = 4 << 10
	f, err := os.Open(c.logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-from > maxBytes {
		from = fi.Size() - maxBytes
	}
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(io.LimitReader(f, maxBytes))
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "(" + c.logPath + " is empty)"
	}
	return "last lines of " + c.logPath + ":\n" + string(b)
}

// DSN returns a lib/pq key=value connection string for database dbname on
// this cluster, connecting as the postgres superuser over the Unix socket.
func (c *Cluster) DSN(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres dbname=%s sslmode=disable",
		quoteDSNValue(c.sockDir), port, quoteDSNValue(dbname))
}

// quoteDSNValue quotes v for a key=value connection string when needed.
func quoteDSNValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

// Dir returns the cluster directory (holding data/, sock/ and postgres.log).
// It can differ from Options.DataDir/pg when the fallback directory was used,
// which is where to look for the server log.
func (c *Cluster) Dir() string { return c.dir }

// Done is closed when the server process has exited, whether through Stop
// or unexpectedly, so a long-running owner can react to losing its database.
func (c *Cluster) Done() <-chan struct{} { return c.exited }

// Stop shuts the server down and waits for it to exit. It asks for a fast
// shutdown (SIGINT: roll back sessions, checkpoint), escalating to an
// immediate shutdown (SIGQUIT) and finally SIGKILL if the server does not
// exit in time. Stop is safe to call more than once and concurrently; later
// calls return the first call's result. It reports an error if the server
// had already died or had to be forced down.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.stopErr = c.stop()
		c.removeTmpSockDir()
	})
	return c.stopErr
}

func (c *Cluster) stop() error {
	select {
	case <-c.exited:
		if c.waitErr != nil {
			return fmt.Errorf("pgcluster: postgres had already exited: %w", c.waitErr)
		}
		return nil
	default:
	}
	signals := []struct {
		sig     syscall.Signal
		timeout time.Duration
	}{
		{syscall.SIGINT, stopTimeout},
		{syscall.SIGQUIT, quitTimeout},
	}
	for i, s := range signals {
		if err := c.cmd.Process.Signal(s.sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("pgcluster: signalling postgres: %w", err)
		}
		select {
		case <-c.exited:
			if i == 0 {
				if c.waitErr != nil {
					return fmt.Errorf("pgcluster: postgres shutdown: %w", c.waitErr)
				}
				return nil
			}
			return fmt.Errorf("pgcluster: postgres did not shut down within %s and was stopped with %s", stopTimeout, s.sig)
		case <-time.After(s.timeout):
			c.logger.Warn("pgcluster: PostgreSQL slow to shut down; escalating", "signal", s.sig.String())
		}
	}
	_ = c.cmd.Process.Kill()
	<-c.exited
	return errors.New("pgcluster: postgres ignored SIGINT and SIGQUIT and was killed")
}

func (c *Cluster) removeTmpSockDir() {
	if c.tmpSockDir {
		_ = os.RemoveAll(c.sockDir)
	}
}
