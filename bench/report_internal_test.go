package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// run is a measured run of done requests (units each) in wall, with the given
// PostgreSQL CPU time and p99.
func run(done int, units int64, wall, pg, p99 time.Duration) *measured {
	return &measured{runResult: runResult{Done: done, Units: units, Wall: wall, P50: p99 / 2, P99: p99}, pgCPU: &pg}
}

func near(t *testing.T, what string, got *float64, want float64) {
	t.Helper()
	if got == nil || math.Abs(*got-want) > 1e-9 {
		t.Errorf("%s: got %v, want %v", what, deref(got), want)
	}
}

func deref(v *float64) any {
	if v == nil {
		return nil
	}
	return *v
}

// TestRowColumns pins how the two ratios and PostgreSQL's CPU per request are
// computed from the three runs.
func TestRowColumns(t *testing.T) {
	srv := run(1000, 1000, 2*time.Second, 500*time.Millisecond, 8*time.Millisecond)
	raw := run(1000, 1000, time.Second, 400*time.Millisecond, 4*time.Millisecond)
	minimal := run(800, 800, 400*time.Millisecond, 160*time.Millisecond, 2*time.Millisecond)
	r := newRow("revoke-user/c16", kindUser, "requests/s", 16, srv, raw, minimal)
	near(t, "server/s", r.ServerPerS, 500)
	near(t, "raw/s", r.RawPerS, 1000)
	near(t, "minimal/s", r.MinimalPerS, 2000)
	near(t, "ratio", r.Ratio, 0.5)
	near(t, "ratio-min", r.RatioVsMinimal, 0.25)
	near(t, "server pg ms", r.PGCPUmsPerReq, 0.5)
	near(t, "raw pg ms", r.RawPGCPUmsPerReq, 0.4)
	near(t, "minimal pg ms", r.MinimalPGCPUmsPerReq, 0.2)
	near(t, "minimal p99", r.MinimalP99ms, 2)
	if r.MinimalN != 800 || r.MinimalIsRaw {
		t.Errorf("minimal n %d, is raw %v", r.MinimalN, r.MinimalIsRaw)
	}

	// Where the database is not ours to watch, the column stays empty.
	srv.pgCPU = nil
	if r := newRow("x", kindUser, "", 16, srv, raw, nil); r.PGCPUmsPerReq != nil || r.MinimalPerS != nil || r.RatioVsMinimal != nil {
		t.Errorf("unmeasured columns filled: %+v", r)
	}

	// Import: the raw side is the minimal; server ÷ minimal is server ÷ raw.
	imp := newRow("import/c4", kindImport, "tokens/s", 4, run(10, 10_000, time.Second, time.Second, 0),
		run(10, 10_000, time.Second/2, time.Second, 0), nil)
	imp.minimalIsRaw()
	near(t, "import ratio-min", imp.RatioVsMinimal, 0.5)
	near(t, "import pg ms per batch", imp.PGCPUmsPerReq, 100)
	if !imp.MinimalIsRaw || imp.MinimalPerS != nil {
		t.Errorf("import: %+v", imp)
	}
}

// TestTargets pins the targets of issue 15: each is judged at 16 clients (import
// at 4) and nowhere else.
func TestTargets(t *testing.T) {
	pg := func(msPerReq float64, done int) time.Duration {
		return time.Duration(msPerReq * float64(done) * float64(time.Millisecond))
	}
	rows := []Row{
		// 3,500/s, minimal 5,000/s (0.70), 0.25 ms: met.
		newRow("revoke-user/c16", kindUser, "", 16, run(3500, 3500, time.Second, pg(0.25, 3500), 0),
			run(1, 1, time.Second, 0, 0), run(5000, 5000, time.Second, 0, 0)),
		// The same with 0.35 ms of PostgreSQL CPU per request: missed.
		newRow("revoke-user/c16", kindUser, "", 16, run(3500, 3500, time.Second, pg(0.35, 3500), 0),
			run(1, 1, time.Second, 0, 0), run(5000, 5000, time.Second, 0, 0)),
		// 2,900/s: missed.
		newRow("revoke-user/c16", kindUser, "", 16, run(2900, 2900, time.Second, pg(0.2, 2900), 0),
			run(1, 1, time.Second, 0, 0), run(5000, 5000, time.Second, 0, 0)),
		// Server ÷ minimal 0.6 and p99 9 ms: met; p99 11 ms: missed; 0.4: missed.
		newRow("revoke-token/query/c16", kindToken, "", 16, run(600, 600, time.Second, 0, 9*time.Millisecond),
			run(1, 1, time.Second, 0, 0), run(1000, 1000, time.Second, 0, 0)),
		newRow("revoke-token/query/c16", kindToken, "", 16, run(600, 600, time.Second, 0, 11*time.Millisecond),
			run(1, 1, time.Second, 0, 0), run(1000, 1000, time.Second, 0, 0)),
		newRow("revoke-token/json/c16", kindToken, "", 16, run(400, 400, time.Second, 0, 9*time.Millisecond),
			run(1, 1, time.Second, 0, 0), run(1000, 1000, time.Second, 0, 0)),
		// Not at 16 clients: no target.
		newRow("revoke-token/query/c64", kindToken, "", 64, run(600, 600, time.Second, 0, 9*time.Millisecond),
			run(1, 1, time.Second, 0, 0), run(1000, 1000, time.Second, 0, 0)),
		newRow("exchange/c16", kindExchange, "", 16, run(2100, 2100, time.Second, 0, time.Millisecond),
			run(1, 1, time.Second, 0, 0), run(1, 1, time.Second, 0, 0)),
		newRow("exchange/c16", kindExchange, "", 16, run(1900, 1900, time.Second, 0, time.Millisecond),
			run(1, 1, time.Second, 0, 0), run(1, 1, time.Second, 0, 0)),
		newRow("exchange/c1", kindExchange, "", 1, run(2100, 2100, time.Second, 0, time.Millisecond),
			run(1, 1, time.Second, 0, 0), run(1, 1, time.Second, 0, 0)),
		newRow("import/c4", kindImport, "", 4, run(100, 100_000, 900*time.Millisecond, 0, time.Millisecond),
			run(1, 1, time.Second, 0, 0), nil),
		newRow("import/c4", kindImport, "", 4, run(100, 100_000, 1100*time.Millisecond, 0, time.Millisecond),
			run(1, 1, time.Second, 0, 0), nil),
		newRow("import/c1", kindImport, "", 1, run(100, 100_000, 900*time.Millisecond, 0, time.Millisecond),
			run(1, 1, time.Second, 0, 0), nil),
	}
	applyTargets(rows)
	want := []string{"MET", "MISSED", "MISSED", "MET", "MISSED", "MISSED", "-", "MET", "MISSED", "-", "MET", "MISSED", "-"}
	for i, r := range rows {
		got := "-"
		if r.TargetMet != nil {
			got = map[bool]string{true: "MET", false: "MISSED"}[*r.TargetMet]
		}
		if got != want[i] {
			t.Errorf("row %d (%s): %s, want %s; target %q, observed %q", i, r.Name, got, want[i], r.Target, r.observed)
		}
	}
	if !strings.Contains(rows[0].Target, "PostgreSQL CPU ≤ 0.3 ms") || !strings.Contains(rows[0].observed, "0.250 ms") {
		t.Errorf("revoke by user: target %q, observed %q", rows[0].Target, rows[0].observed)
	}
}

// TestTableWidth writes rows with full-scale magnitudes (a million-token bulk
// revoke, seconds of PostgreSQL CPU) and wants every line within the width.
func TestTableWidth(t *testing.T) {
	long := 1665 * time.Millisecond
	bulk := newRow("revoke-app/bulk-1M", kindBulk, "", 1, run(1, 1_000_000, long, long, long),
		run(1, 1_000_000, long, long, long), run(1, 1_000_000, long/2, long, long))
	bulk.Check = "FAIL: 3 requests failed (raw statement reported 999,999 tokens revoked, want 1,000,000); " +
		"server application: 1 tokens left, want 0"
	imp := newRow("import/c4", kindImport, "", 4, run(100, 100_000, time.Second, 2*time.Second, 0),
		run(100, 100_000, time.Second, 2*time.Second, 0), nil)
	imp.minimalIsRaw()
	rows := []Row{bulk, imp}
	applyTargets(rows)
	var out bytes.Buffer
	WriteTable(&out, rows)
	for _, line := range strings.Split(out.String(), "\n") {
		if n := utf8.RuneCountInString(line); n > tableWidth {
			t.Errorf("a line is %d columns wide, over %d: %q", n, tableWidth, line)
		}
	}
	for _, s := range []string{"1,000,000", "1665.000", "=raw", "minimal/s", "ratio-min"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("the table has no %q:\n%s", s, out.String())
		}
	}
}
