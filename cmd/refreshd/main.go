// Command refreshd serves the FusionAuth-compatible refresh-token API.
//
// Configuration comes from flags, each falling back to an environment variable:
//
//	-addr      REFRESHD_ADDR      listen address (default 127.0.0.1:9011)
//	-database  DATABASE_URL      an external PostgreSQL; when empty, a private
//	                             cluster is started in the data dir
//	-data-dir  REFRESHD_DATA_DIR  where the private cluster lives (default ./.data)
//	-api-key   REFRESHD_API_KEY   the bootstrap API key
//	-issuer    REFRESHD_ISSUER    the iss claim of access tokens (default refreshd)
//	-trusted-proxies REFRESHD_TRUSTED_PROXIES  comma-separated CIDRs whose
//	                             X-Forwarded-For names the caller in events
//	-event-retention REFRESHD_EVENT_RETENTION  how long delivered events are kept (default 720h)
//	-log-level REFRESHD_LOG_LEVEL debug, info, warn or error (default info)
//
// Limits on each client, so that slow or abusive ones cannot hold the server:
//
//	-header-timeout   REFRESHD_HEADER_TIMEOUT    to receive a request's headers (default 10s)
//	-body-timeout     REFRESHD_BODY_TIMEOUT      to receive its body, after the headers (default 20s)
//	-write-timeout    REFRESHD_WRITE_TIMEOUT     from the headers to the end of the answer (default 60s)
//	-idle-timeout     REFRESHD_IDLE_TIMEOUT      an idle keep-alive connection stays open (default 2m)
//	-max-header-bytes REFRESHD_MAX_HEADER_BYTES  request line and headers (default 65536)
//	-max-body-bytes   REFRESHD_MAX_BODY_BYTES    request body (default 8388608)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/pgcluster"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "refreshd:", err)
		os.Exit(1)
	}
}

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

func durationEnv(name string, fallback time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return d
	}
	return fallback
}

func intEnv(name string, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return fallback
}

func parseCIDRs(list string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, item := range strings.Split(list, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		_, n, err := net.ParseCIDR(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxies: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}

func run() error {
	addr := flag.String("addr", env("REFRESHD_ADDR", "127.0.0.1:9011"), "listen address")
	dsn := flag.String("database", env("DATABASE_URL", ""), "PostgreSQL URL; empty starts a private cluster in -data-dir")
	dataDir := flag.String("data-dir", env("REFRESHD_DATA_DIR", "./.data"), "directory of the private PostgreSQL cluster")
	apiKey := flag.String("api-key", env("REFRESHD_API_KEY", ""), "bootstrap API key")
	issuer := flag.String("issuer", env("REFRESHD_ISSUER", "refreshd"), "iss claim of access tokens")
	proxies := flag.String("trusted-proxies", env("REFRESHD_TRUSTED_PROXIES", ""), "CIDRs of trusted reverse proxies")
	retention := flag.Duration("event-retention", durationEnv("REFRESHD_EVENT_RETENTION", 30*24*time.Hour), "how long delivered events are kept")
	level := flag.String("log-level", env("REFRESHD_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	headerTimeout := flag.Duration("header-timeout", durationEnv("REFRESHD_HEADER_TIMEOUT", 10*time.Second), "time to receive a request's headers")
	bodyTimeout := flag.Duration("body-timeout", durationEnv("REFRESHD_BODY_TIMEOUT", impl.DefaultBodyTimeout), "time to receive a request's body, after its headers")
	writeTimeout := flag.Duration("write-timeout", durationEnv("REFRESHD_WRITE_TIMEOUT", 60*time.Second), "time from a request's headers to the end of its answer")
	idleTimeout := flag.Duration("idle-timeout", durationEnv("REFRESHD_IDLE_TIMEOUT", 2*time.Minute), "how long an idle keep-alive connection stays open")
	maxHeaderBytes := flag.Int("max-header-bytes", intEnv("REFRESHD_MAX_HEADER_BYTES", 64<<10), "largest request line and headers, in bytes")
	maxBodyBytes := flag.Int64("max-body-bytes", int64(intEnv("REFRESHD_MAX_BODY_BYTES", impl.DefaultBodyLimit)), "largest request body, in bytes")
	flag.Parse()

	trusted, err := parseCIDRs(*proxies)
	if err != nil {
		return err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("log level %q: %w", *level, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *dsn == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: *dataDir, Logger: log})
		if err != nil {
			return err
		}
		defer func() {
			if err := cluster.Stop(); err != nil {
				log.Error("stop postgresql", "error", err)
			}
		}()
		*dsn = cluster.DSN("postgres")
		log.Info("private postgresql started", "dir", cluster.Dir())
	}

	st, err := store.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()

	created, err := impl.EnsureBootstrapKey(ctx, st, *apiKey)
	if err != nil {
		return fmt.Errorf("bootstrap API key: %w", err)
	}
	if created != "" {
		// Shown once: only its hash is stored.
		fmt.Fprintf(os.Stdout, "No API key was configured, so one was made. Keep it; it is not shown again:\n  %s\n", created)
	}

	if err := impl.EnsureSigningKeys(ctx, st); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	// Background work stops before the store closes, whichever way run returns.
	bg, stopBackground := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go impl.RunReaper(bg, st, log, time.Minute)
	go func() {
		defer close(dispatched)
		impl.RunDispatcher(bg, st, impl.DispatcherConfig{Logger: log, Retention: *retention})
	}()
	defer func() { stopBackground(); <-dispatched }()

	e, err := impl.New(impl.Config{Logger: log, Issuer: *issuer, TrustedProxies: trusted,
		BodyLimit: *maxBodyBytes, BodyTimeout: *bodyTimeout}, st)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: e, ReadHeaderTimeout: *headerTimeout, WriteTimeout: *writeTimeout,
		IdleTimeout: *idleTimeout, MaxHeaderBytes: *maxHeaderBytes}
	log.Info("listening", "url", "http://"+ln.Addr().String())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
