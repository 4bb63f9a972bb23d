// Command refreshd serves the FusionAuth-compatible refresh-token API.
//
// Every setting is a flag that falls back to an environment variable and then
// to a default; `refreshd -h` lists them (the table in config.go). refreshd
// takes no positional arguments, and a flag or variable whose value does not
// parse stops it before it starts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/pgcluster"
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run parses the configuration and serves until SIGINT or SIGTERM. It returns
// the exit status: 0 after a clean shutdown (or -h, -version), 1 when serving
// failed, 2 when the configuration is wrong.
func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := parseConfig(args, lookupEnv, stdout, stderr)
	switch {
	case errors.Is(err, errDone):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "refreshd: %v\nrun 'refreshd -h' for the flags and environment variables\n", err)
		return 2
	}
	log := cfg.logger(stderr)
	started := time.Now()
	if err := serve(cfg, log, stdout); err != nil {
		log.Error("stopped", "error", err, "uptime", time.Since(started).Round(time.Millisecond).String())
		return 1
	}
	log.Info("stopped", "uptime", time.Since(started).Round(time.Millisecond).String())
	return 0
}

func serve(cfg *config, log *slog.Logger, stdout io.Writer) error {
	log.Info("starting", "version", versionString())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dsn := cfg.Database
	if dsn == "" {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: cfg.DataDir, Logger: log})
		if err != nil {
			return err
		}
		defer func() {
			if err := cluster.Stop(); err != nil {
				log.Error("stop postgresql", "error", err)
			}
		}()
		dsn = cluster.DSN("postgres")
		log.Info("private postgresql started", "dir", cluster.Dir())
	}

	st, err := store.OpenWith(ctx, dsn, store.Options{BatchWorkers: cfg.BatchWorkers})
	if err != nil {
		return err
	}
	defer st.Close()

	created, err := impl.EnsureBootstrapKey(ctx, st, cfg.APIKey)
	if err != nil {
		return fmt.Errorf("bootstrap API key: %w", err)
	}
	if created != "" {
		// Shown once: only its hash is stored.
		fmt.Fprintf(stdout, "No API key was configured, so one was made. Keep it; it is not shown again:\n  %s\n", created)
	}

	if err := impl.EnsureSigningKeys(ctx, st); err != nil {
		return fmt.Errorf("signing keys: %w", err)
	}
	metrics := impl.NewMetrics(st, log)
	// Background work stops before the store closes, whichever way serve returns.
	bg, stopBackground := context.WithCancel(ctx)
	dispatched := make(chan struct{})
	go impl.RunReaper(bg, st, log, metrics, time.Minute)
	go func() {
		defer close(dispatched)
		impl.RunDispatcher(bg, st, impl.DispatcherConfig{Logger: log, Retention: cfg.EventRetention, Metrics: metrics,
			Issuer: cfg.Issuer})
	}()
	defer func() { stopBackground(); <-dispatched }()

	e, err := impl.New(impl.Config{Logger: log, Issuer: cfg.Issuer, TrustedProxies: cfg.TrustedProxies,
		RequestLogLevel: cfg.RequestLogLevel, Metrics: metrics, MetricsElsewhere: cfg.MetricsAddr != "",
		BodyLimit: int64(cfg.MaxBodyBytes), BodyTimeout: cfg.BodyTimeout}, st)
	if err != nil {
		return err
	}
	servers := []*http.Server{{Handler: e, ReadHeaderTimeout: cfg.HeaderTimeout, WriteTimeout: cfg.WriteTimeout,
		IdleTimeout: cfg.IdleTimeout, MaxHeaderBytes: cfg.MaxHeaderBytes}}
	addrs := []string{cfg.Addr}
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		servers = append(servers, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second})
		addrs = append(addrs, cfg.MetricsAddr)
	}
	served := make(chan error, len(servers))
	for i, srv := range servers {
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			for _, started := range servers[:i] {
				_ = started.Close()
			}
			return err
		}
		if i == 0 {
			log.Info("listening", "url", "http://"+ln.Addr().String())
		} else {
			log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
		}
		go func() { served <- srv.Serve(ln) }()
	}
	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
		log.Info("shutting down: draining requests")
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) && serveErr == nil {
			serveErr = err
		}
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}
