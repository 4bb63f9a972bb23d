package bench_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/lib/pq"

	"refreshd/bench"
	"refreshd/internal/pgcluster"
)

// TestMain lets the test binary serve as the harness's load generator, which is
// this same executable started again.
func TestMain(m *testing.M) {
	if bench.IsLoadgen() {
		os.Exit(bench.LoadgenMain(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// TestSmoke runs every scenario on a few hundred tokens and checks that the
// harness did what it reports: every request succeeded, every pool holds exactly
// the tokens its run should have left (counted again here), and the JSON parses.
// No timing is asserted.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	logw := testWriter{t}
	// Like internal/dbtest: DATABASE_URL when set, else a private cluster. The
	// harness makes a database of its own on it, kept so that it can be counted
	// here, and dropped at the end.
	// A cluster of our own serves this test alone, so its processes' CPU can be
	// counted: then every PostgreSQL CPU column must be filled.
	base, postmaster := os.Getenv("DATABASE_URL"), 0
	if base == "" {
		base, postmaster = startCluster(t, ctx, logw)
	}
	scale := bench.Smoke()
	var out bytes.Buffer
	rep, err := bench.Run(ctx, bench.Config{
		Scale: scale, DatabaseURL: base, KeepDatabase: true, PostmasterPID: postmaster, Out: &out, Log: logw,
	})
	t.Log("\n" + out.String())
	if rep != nil && rep.DSN != "" {
		t.Cleanup(func() { dropDatabase(t, base, rep.DSN) })
	}
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if n := utf8.RuneCountInString(line); n > 120 {
			t.Errorf("a report line is %d columns wide, over 120: %q", n, line)
		}
	}
	for _, text := range []string{"ratio = server/s ÷ raw/s", "ratio-min = server/s ÷ minimal/s",
		"PostgreSQL CPU ms per request: the PostgreSQL processes' CPU time"} {
		if !strings.Contains(out.String(), text) {
			t.Errorf("the report does not explain %q", text)
		}
	}

	var want []string
	for _, size := range []string{"200", "300"} {
		for _, c := range scale.LatencyConcurrencies {
			want = append(want, "revoke-token/latency-"+size+"/c"+strconv.Itoa(c))
		}
	}
	for _, form := range []string{"query", "json"} {
		for _, c := range scale.TokenConcurrencies {
			want = append(want, "revoke-token/"+form+"/c"+strconv.Itoa(c))
		}
	}
	want = append(want, "revoke-token/webhooks/c"+strconv.Itoa(scale.WebhookConcurrency), "revoke-user/c4", "revoke-user-app/c4")
	for _, c := range scale.ExchangeConcurrencies {
		want = append(want, "exchange/c"+strconv.Itoa(c))
	}
	for _, c := range scale.ExchangeConcurrencies {
		want = append(want, "validate/c"+strconv.Itoa(c))
	}
	for _, c := range scale.ImportConcurrencies {
		want = append(want, "import/c"+strconv.Itoa(c))
	}
	want = append(want, "revoke-app/bulk-300")
	var got []string
	for _, r := range rep.Rows {
		got = append(got, r.Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("scenarios: got %v, want %v", got, want)
	}

	db, err := sql.Open("postgres", rep.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	events := func(t *testing.T, typ, app string) int64 {
		t.Helper()
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE type = $1 AND application_id = $2`, typ, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const revokeEvent, refreshEvent = "jwt.refresh-token.revoke", "jwt.refresh"
	// The exchange pools serve every exchange row: their events add up.
	exchangeEvents := map[string]int64{}
	var byUserEvents int64
	for _, r := range rep.Rows {
		warm := max(2*r.Concurrency, scale.MinWarmup)
		timed := map[string]int{"server": r.N, "raw": r.RawN, "minimal": r.MinimalN}
		t.Run(r.Name, func(t *testing.T) {
			// Every side records one event per revocation (per exchange): the
			// minimal SQL as well as the server and our SQL. Counted per side's
			// application, from the database.
			for _, c := range r.Checks {
				mode := strings.Fields(c.What)[0]
				n, ok := timed[mode]
				if !ok {
					t.Fatalf("check %q names no side", c.What)
				}
				switch {
				case strings.HasPrefix(r.Name, "revoke-token/"),
					strings.HasPrefix(r.Name, "revoke-user-app/") && strings.Contains(c.What, "revoked application"):
					if got, want := events(t, revokeEvent, c.App.String()), int64(warm+n); got != want {
						t.Errorf("%s: %d revoke events, want %d", c.What, got, want)
					}
				case strings.HasPrefix(r.Name, "revoke-user-app/"):
					if got := events(t, revokeEvent, c.App.String()); got != 0 {
						t.Errorf("%s: %d revoke events, want none", c.What, got)
					}
				case strings.HasPrefix(r.Name, "revoke-app/"):
					if got := events(t, revokeEvent, c.App.String()); got != 1 {
						t.Errorf("%s: %d revoke events, want 1", c.What, got)
					}
				case strings.HasPrefix(r.Name, "exchange/") && mode != "server":
					// (The server's pool also gives the validation rows their access tokens.)
					exchangeEvents[c.App.String()] += int64(warm + n)
				}
			}
			if strings.HasPrefix(r.Name, "revoke-user/") {
				byUserEvents += int64(3*warm + r.N + r.RawN + r.MinimalN)
			}

			isRaw := strings.HasPrefix(r.Name, "import/") || strings.HasPrefix(r.Name, "validate/")
			if r.MinimalIsRaw != isRaw {
				t.Errorf("minimal_is_raw %v, want %v", r.MinimalIsRaw, isRaw)
			}
			if r.RatioVsMinimal == nil || (!isRaw && (r.MinimalPerS == nil || r.MinimalN == 0)) {
				t.Errorf("missing minimal measurements: %+v", r)
			}
			if isRaw && (r.MinimalPerS != nil || r.MinimalN != 0 || r.RatioVsMinimal != r.Ratio) {
				t.Errorf("a minimal run where the raw side is the minimal: %+v", r)
			}
			if postmaster != 0 {
				sides := map[string]*float64{"server": r.PGCPUmsPerReq, "raw": r.RawPGCPUmsPerReq}
				if !isRaw {
					sides["minimal"] = r.MinimalPGCPUmsPerReq
				}
				for side, v := range sides {
					if v == nil || *v <= 0 {
						t.Errorf("PostgreSQL CPU per request of the %s run: %v, want a positive number", side, v)
					}
				}
			}
			if r.Errors > 0 {
				t.Errorf("%d requests failed: %s", r.Errors, r.FirstError)
			}
			if r.WebhookEvents == nil && r.Check != "ok" {
				t.Errorf("check: got %q, want ok", r.Check)
			}
			if r.WebhookEvents != nil && !strings.HasPrefix(r.Check, "ok; webhook: ") {
				t.Errorf("check: got %q, want ok and the webhook's deliveries", r.Check)
			}
			if r.ServerPerS == nil || r.RawPerS == nil || r.Ratio == nil || r.P50ms == nil || r.P99ms == nil {
				t.Errorf("missing measurements: %+v", r)
			}
			if len(r.Checks) == 0 {
				t.Fatal("no row counts were checked")
			}
			for _, c := range r.Checks {
				var n int64
				if err := db.QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens WHERE application_id = $1`, c.App).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != c.Want || c.Got != c.Want {
					t.Errorf("%s: %d tokens (harness counted %d), want %d", c.What, n, c.Got, c.Want)
				}
			}
			// Fixed-count runs revoke whole pools; only the user + application
			// run's second application, the imports and the exchanges (of
			// reusable tokens) keep tokens.
			for _, c := range r.Checks {
				keeps := strings.Contains(c.What, "other application") || strings.HasPrefix(r.Name, "import/") ||
					strings.HasPrefix(r.Name, "exchange/") || strings.HasPrefix(r.Name, "validate/")
				if !keeps && c.Want != 0 {
					t.Errorf("%s: want every token revoked, %d expected to be left", c.What, c.Want)
				}
				if keeps && c.Want == 0 {
					t.Errorf("%s: want tokens kept, none expected", c.What)
				}
			}
			if (strings.HasPrefix(r.Name, "revoke-token/") || strings.HasPrefix(r.Name, "exchange/") ||
				strings.HasPrefix(r.Name, "validate/")) && (r.N != r.RawN || r.N == 0 || (!isRaw && r.MinimalN != r.N)) {
				t.Errorf("timed requests: server %d, raw %d, minimal %d; want equal and non-zero", r.N, r.RawN, r.MinimalN)
			}
			if strings.HasPrefix(r.Name, "revoke-token/webhooks/") {
				// One delivery per revocation of the server run, warm-up
				// included; a few hundred are delivered well within the wait.
				if r.WebhookEvents == nil || r.WebhookDelivered == nil {
					t.Fatal("no webhook counts")
				}
				if want := int64(r.N + max(2*r.Concurrency, scale.MinWarmup)); *r.WebhookEvents != want {
					t.Errorf("webhook events: %d, want %d", *r.WebhookEvents, want)
				}
				if *r.WebhookDelivered != *r.WebhookEvents {
					t.Errorf("webhook: %d of %d events delivered", *r.WebhookDelivered, *r.WebhookEvents)
				}
			}
		})
	}

	for app, want := range exchangeEvents {
		if got := events(t, refreshEvent, app); got != want {
			t.Errorf("exchange pool %s: %d refresh events, want %d", app, got, want)
		}
	}
	if len(exchangeEvents) != 2 {
		t.Errorf("the raw and minimal exchanges used %d pools, want 2", len(exchangeEvents))
	}
	// Revocations by user are the only ones whose events name no application.
	var appless int64
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM events WHERE type = $1 AND application_id IS NULL`,
		revokeEvent).Scan(&appless); err != nil {
		t.Fatal(err)
	}
	if appless != byUserEvents {
		t.Errorf("revoke events without an application: %d, want %d (one per revocation by user)", appless, byUserEvents)
	}

	// The raw and minimal statements must record what the server records: every revoke
	// event, by either, carries the same info object.
	var hasEvents bool
	if err := db.QueryRowContext(ctx, `SELECT to_regclass('events') IS NOT NULL`).Scan(&hasEvents); err != nil {
		t.Fatal(err)
	}
	if hasEvents {
		var infos []string
		rows, err := db.QueryContext(ctx, `SELECT DISTINCT (body -> 'info')::text FROM events WHERE type LIKE '%revoke%' OR type = 'jwt.refresh'`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			infos = append(infos, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 {
			t.Errorf("revoke and refresh events carry %d different info objects %v, want one", len(infos), infos)
		}
	}

	// The webhook is gone: later scenarios made no deliveries.
	var hooks, deliveries int64
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM webhooks), (SELECT count(*) FROM deliveries)`).Scan(&hooks, &deliveries); err != nil {
		t.Fatal(err)
	}
	if hooks != 0 || deliveries != 0 {
		t.Errorf("after the run: %d webhooks, %d deliveries; want none", hooks, deliveries)
	}

	var buf bytes.Buffer
	if err := bench.WriteJSON(&buf, rep.Rows); err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &decoded); err != nil {
		t.Fatalf("results JSON does not parse: %v\n%s", err, buf.String())
	}
	if len(decoded) != len(rep.Rows) {
		t.Fatalf("JSON rows: got %d, want %d", len(decoded), len(rep.Rows))
	}
	for _, row := range decoded {
		for _, key := range []string{"name", "server_per_s", "raw_per_s", "ratio", "p50_ms", "p99_ms", "rss_growth_mb",
			"minimal_per_s", "ratio_vs_minimal", "minimal_is_raw", "pg_cpu_ms_per_request", "raw_pg_cpu_ms_per_request",
			"minimal_pg_cpu_ms_per_request"} {
			if _, ok := row[key]; !ok {
				t.Errorf("row %v: no %q", row["name"], key)
			}
		}
	}
}

// startCluster starts a private cluster for the test and returns its DSN and its
// postmaster's process id.
func startCluster(t *testing.T, ctx context.Context, logw testWriter) (string, int) {
	t.Helper()
	dir, err := os.MkdirTemp("", "refreshd-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the postgres user must reach it when we are root
		t.Fatal(err)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: dir, Fast: true,
		Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatalf("starting PostgreSQL (or set DATABASE_URL): %v", err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	b, err := os.ReadFile(filepath.Join(cluster.Dir(), "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	return cluster.DSN("postgres"), pid
}

// dropDatabase drops the database dsn names, on the server of base.
func dropDatabase(t *testing.T, base, dsn string) {
	t.Helper()
	cfg, err := pq.NewConfig(dsn)
	if err != nil {
		t.Errorf("parsing %q: %v", dsn, err)
		return
	}
	admin, err := sql.Open("postgres", base)
	if err != nil {
		t.Error(err)
		return
	}
	defer admin.Close()
	if _, err := admin.Exec("DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(cfg.Database) + " WITH (FORCE)"); err != nil {
		t.Errorf("dropping %s: %v", cfg.Database, err)
	}
}

// testWriter sends the harness's log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
