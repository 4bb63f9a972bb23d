package bench_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"os"
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
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		base = startCluster(t, ctx, logw)
	}
	scale := bench.Smoke()
	var out bytes.Buffer
	rep, err := bench.Run(ctx, bench.Config{
		Scale: scale, DatabaseURL: base, KeepDatabase: true, Out: &out, Log: logw,
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
	if !strings.Contains(out.String(), "ratio = server/s ÷ raw/s") {
		t.Errorf("the report does not explain the ratio")
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
	for _, r := range rep.Rows {
		t.Run(r.Name, func(t *testing.T) {
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
				strings.HasPrefix(r.Name, "validate/")) && (r.N != r.RawN || r.N == 0) {
				t.Errorf("timed requests: server %d, raw %d; want equal and non-zero", r.N, r.RawN)
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

	// The raw statements must record what the server records: every revoke
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
		for _, key := range []string{"name", "server_per_s", "raw_per_s", "ratio", "p50_ms", "p99_ms", "rss_growth_mb"} {
			if _, ok := row[key]; !ok {
				t.Errorf("row %v: no %q", row["name"], key)
			}
		}
	}
}

func startCluster(t *testing.T, ctx context.Context, logw testWriter) string {
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
	return cluster.DSN("postgres")
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
