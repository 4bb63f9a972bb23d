package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Row is one line of the results: a scenario through the server and as its raw
// statement. The first seven fields are the agreed result format; the rest add
// what is needed to read them. Fields that do not apply are null.
//
// Units: server_per_s and raw_per_s are requests/s, except for import and the
// bulk revoke, where they are tokens/s (see unit). p50_ms and p99_ms are the
// server's latencies; for the bulk revoke, a single request, both are its wall
// time (server_ms and raw_ms give both times). rss_growth_mb is the peak of the
// server process's VmRSS during the timed part over its value at the start, in
// MiB (2^20 bytes), sampled every 10 ms (2 ms during the bulk revoke);
// heap_growth_mb is the same for the Go heap's objects.
type Row struct {
	Name        string   `json:"name"`
	ServerPerS  *float64 `json:"server_per_s"`
	RawPerS     *float64 `json:"raw_per_s"`
	Ratio       *float64 `json:"ratio"` // server_per_s ÷ raw_per_s
	P50ms       *float64 `json:"p50_ms"`
	P99ms       *float64 `json:"p99_ms"`
	RSSGrowthMB *float64 `json:"rss_growth_mb"`

	Unit         string    `json:"unit"`
	Concurrency  int       `json:"concurrency"`
	N            int       `json:"n"`     // timed server requests
	RawN         int       `json:"raw_n"` // timed raw statements
	StoredTokens *int64    `json:"stored_tokens"`
	RawP50ms     *float64  `json:"raw_p50_ms"`
	RawP99ms     *float64  `json:"raw_p99_ms"`
	ServerMs     *float64  `json:"server_ms,omitempty"`
	RawMs        *float64  `json:"raw_ms,omitempty"`
	HeapGrowthMB *float64  `json:"heap_growth_mb"`
	CPU          *cpuShare `json:"cpu"`     // cores used during the server run
	RawCPU       *cpuShare `json:"raw_cpu"` // cores used during the raw run
	// P50VsSmall is, for the latency check on the big table, p50 here ÷ p50 on
	// the small table at the same concurrency.
	P50VsSmall *float64 `json:"p50_vs_small,omitempty"`
	Errors     int      `json:"errors"`
	FirstError string   `json:"first_error,omitempty"`
	Check      string   `json:"check"` // "ok", or what was left that should not have been
	Target     string   `json:"target,omitempty"`
	TargetMet  *bool    `json:"target_met,omitempty"`

	// For revoke-token/webhooks: deliveries the server run's revocations made
	// (warm-up included), how many distinct events the receiver had got when
	// the timed part ended and after waiting up to webhook_wait_ms more.
	WebhookEvents    *int64   `json:"webhook_events,omitempty"`
	WebhookAtEnd     *int64   `json:"webhook_delivered_at_end,omitempty"`
	WebhookDelivered *int64   `json:"webhook_delivered,omitempty"`
	WebhookWaitMs    *float64 `json:"webhook_wait_ms,omitempty"`

	// Checks are the row counts taken after the runs.
	Checks []Check `json:"-"`

	kind     string
	observed string // what the target was compared with, for the table
}

// Check is one count taken after a run: what was left of a pool's tokens.
type Check struct {
	What      string
	App       uuid.UUID
	Want, Got int64
}

// OK reports whether every check held and no request failed.
func (r Row) OK() bool {
	if r.Errors > 0 {
		return false
	}
	for _, c := range r.Checks {
		if c.Want != c.Got {
			return false
		}
	}
	return true
}

const (
	kindToken      = "token"
	kindUser       = "user"
	kindUserApp    = "user-app"
	kindBulk       = "bulk"
	kindImport     = "import"
	kindLatSmall   = "latency-small"
	kindLatBig     = "latency-big"
	kindExchange   = "exchange"
	kindWebhook    = "webhook"
	kindValidate   = "validate"
	mib            = 1 << 20
	targetRatio    = 0.5
	targetP99ms    = 10.0
	targetBulkX    = 1.5
	targetBulkRSS  = 50.0
	targetImport   = 50_000.0
	targetLatencyX = 1.3
)

func ptr[T any](v T) *T { return &v }

func ms(d time.Duration) *float64 { return ptr(float64(d) / float64(time.Millisecond)) }

// newRow builds a row from the server and raw runs (either may be nil).
func newRow(name, kind, unit string, concurrency int, srv, raw *measured) Row {
	r := Row{Name: name, kind: kind, Unit: unit, Concurrency: concurrency}
	if srv != nil {
		if srv.Wall > 0 {
			r.ServerPerS = ptr(float64(srv.Units) / srv.Wall.Seconds())
		}
		r.P50ms, r.P99ms = ms(srv.P50), ms(srv.P99)
		r.RSSGrowthMB = ptr(float64(srv.rssGrowth) / mib)
		r.HeapGrowthMB = ptr(float64(srv.heapGrowth) / mib)
		r.N = srv.Done
		r.CPU = &srv.cpu
		if srv.stored > 0 {
			r.StoredTokens = ptr(srv.stored)
		}
		r.Errors += srv.Errors
		r.FirstError = srv.FirstError
	}
	if raw != nil {
		if raw.Wall > 0 {
			r.RawPerS = ptr(float64(raw.Units) / raw.Wall.Seconds())
		}
		r.RawP50ms, r.RawP99ms = ms(raw.P50), ms(raw.P99)
		r.RawN = raw.Done
		r.RawCPU = &raw.cpu
		r.Errors += raw.Errors
		if r.FirstError == "" {
			r.FirstError = raw.FirstError
		}
	}
	if r.ServerPerS != nil && r.RawPerS != nil && *r.RawPerS > 0 {
		r.Ratio = ptr(*r.ServerPerS / *r.RawPerS)
	}
	return r
}

// applyTargets marks the rows the project sets performance targets for. Targets are printed
// beside the results and never asserted: the numbers depend on the machine.
func applyTargets(rows []Row) {
	small := map[int]*Row{}
	for i := range rows {
		if rows[i].kind == kindLatSmall {
			small[rows[i].Concurrency] = &rows[i]
		}
	}
	for i := range rows {
		r := &rows[i]
		var met bool
		switch {
		case r.kind == kindToken && r.Concurrency == 16 && r.Ratio != nil && r.P99ms != nil:
			r.Target = fmt.Sprintf("server÷raw ≥ %.1f, p99 ≤ %.0f ms", targetRatio, targetP99ms)
			r.observed = fmt.Sprintf("ratio %.2f, p99 %.2f ms", *r.Ratio, *r.P99ms)
			met = *r.Ratio >= targetRatio && *r.P99ms <= targetP99ms
		case (r.kind == kindUser || r.kind == kindUserApp) && r.Concurrency == 16 && r.Ratio != nil:
			r.Target = fmt.Sprintf("server÷raw ≥ %.1f", targetRatio)
			r.observed = fmt.Sprintf("ratio %.2f", *r.Ratio)
			met = *r.Ratio >= targetRatio
		case r.kind == kindBulk && r.ServerMs != nil && r.RawMs != nil && r.RSSGrowthMB != nil:
			r.Target = fmt.Sprintf("time ≤ %.1f× raw, RSS growth ≤ %.0f MiB", targetBulkX, targetBulkRSS)
			r.observed = fmt.Sprintf("%.2f× raw, RSS +%.1f MiB", *r.ServerMs / *r.RawMs, *r.RSSGrowthMB)
			met = *r.ServerMs <= targetBulkX**r.RawMs && *r.RSSGrowthMB <= targetBulkRSS
		case r.kind == kindImport && r.ServerPerS != nil:
			r.Target = fmt.Sprintf("≥ %s tokens/s", thousands(targetImport))
			r.observed = thousands(*r.ServerPerS) + " tokens/s"
			met = *r.ServerPerS >= targetImport
		case r.kind == kindLatBig && small[r.Concurrency] != nil && small[r.Concurrency].P50ms != nil && r.P50ms != nil:
			s := small[r.Concurrency]
			r.P50VsSmall = ptr(*r.P50ms / *s.P50ms)
			r.Target = fmt.Sprintf("p50 ≤ %.1f× p50 of %s", targetLatencyX, s.Name)
			r.observed = fmt.Sprintf("%.2f× (%.2f vs %.2f ms)", *r.P50VsSmall, *r.P50ms, *s.P50ms)
			met = *r.P50VsSmall <= targetLatencyX
		case (r.kind == kindExchange || r.kind == kindWebhook || r.kind == kindValidate) && r.Ratio != nil && r.P99ms != nil:
			// No target: listed with the targets for comparison only.
			r.observed = fmt.Sprintf("ratio %.2f, p99 %.2f ms", *r.Ratio, *r.P99ms)
			continue
		default:
			continue
		}
		r.TargetMet = ptr(met)
	}
}

// WriteJSON writes the rows as a JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// tableWidth bounds every line WriteTable prints, so the report reads in a
// terminal and in a commit message without wrapping.
const tableWidth = 120

// WriteTable writes the rows as the human-readable tables — throughput and
// latency, then where the CPU went and the checks — and then the targets.
func WriteTable(w io.Writer, rows []Row) {
	fmt.Fprintf(w, "\n%-30s %10s %10s %6s %8s %8s %8s %8s %8s\n",
		"scenario", "server/s", "raw/s", "ratio", "p50 ms", "p99 ms", "raw p50", "raw p99", "RSS+MiB")
	for _, r := range rows {
		fmt.Fprintf(w, "%-30s %10s %10s %6s %8s %8s %8s %8s %8s\n",
			r.Name, num(r.ServerPerS, thousands), num(r.RawPerS, thousands), num(r.Ratio, fixed(2)),
			num(r.P50ms, fixed(2)), num(r.P99ms, fixed(2)), num(r.RawP50ms, fixed(2)), num(r.RawP99ms, fixed(2)),
			num(r.RSSGrowthMB, fixed(1)))
	}
	const checkCol = 30 + 1 + 23 + 1 + 15 + 2
	fmt.Fprintf(w, "\n%-30s %-23s %-15s  %s\n", "scenario", "cores srv/cli/pg/oth", "raw cli/pg/oth", "check")
	for _, r := range rows {
		lines := wrapWords(r.Check, tableWidth-checkCol)
		fmt.Fprintf(w, "%-30s %-23s %-15s  %s\n", r.Name, cores(r.CPU, true), cores(r.RawCPU, false), lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "%*s%s\n", checkCol, "", l)
		}
	}
	fmt.Fprintln(w, "\nratio = server/s ÷ raw/s: the share of the raw PostgreSQL ceiling (the same SQL run directly, from the")
	fmt.Fprintln(w, "same kind of client at the same concurrency) that the server reaches. 1.00 means the HTTP layer costs")
	fmt.Fprintln(w, "nothing; 0.80 means it costs a fifth; above 1 the server does better than one statement per request")
	fmt.Fprintln(w, "(it commits concurrent single-token revocations together).")
	fmt.Fprintln(w, "units: server/s and raw/s are requests/s; import and revoke-app rows are tokens/s. p50/p99 are the")
	fmt.Fprintln(w, "server's (raw p50/p99 the statement's); revoke-app is one request, so its p50 = p99 = its wall time.")
	fmt.Fprintln(w, "RSS+MiB: peak VmRSS growth of the server process (this process; the load generator is another) during")
	fmt.Fprintln(w, "the timed part, sampled every 10 ms (2 ms for revoke-app). cores: CPU used during the timed part, 1.0 = one")
	fmt.Fprintln(w, "core busy; srv = server process, cli = load-generator process, pg = PostgreSQL processes, oth = the rest")
	fmt.Fprintln(w, "of the machine (other users' work: when it is high, the row is noisy).")
	fmt.Fprintln(w, "exchange: POST /api/jwt/refresh of reusable tokens (no API key) against the store's exchange transaction")
	fmt.Fprintln(w, "run from the load generator. revoke-token/webhooks: one global webhook for the revoke event and the")
	fmt.Fprintln(w, "dispatcher running in the server during the server run only (stopped before the raw run, whose statement")
	fmt.Fprintln(w, "fans out the same deliveries); its check says how many of the server run's events reached the receiver.")

	fmt.Fprintln(w, "\ntargets (printed for reading, never asserted):")
	for _, r := range rows {
		target, verdict := r.Target, "MET"
		switch {
		case r.TargetMet == nil && r.observed == "":
			continue
		case r.TargetMet == nil:
			target, verdict = "(no target)", "-"
		case !*r.TargetMet:
			verdict = "MISSED"
		}
		// Two lines a target: a target's wording and what was observed vary too
		// much in length to share columns within the width.
		fmt.Fprintf(w, "  %-30s %s\n", r.Name, verdict)
		for _, l := range wrapWords(target+"; observed "+r.observed, tableWidth-6) {
			fmt.Fprintf(w, "      %s\n", l)
		}
	}
}

// wrapWords breaks text at spaces into lines of at most width bytes; a longer
// word stays whole. It always returns at least one line.
func wrapWords(text string, width int) []string {
	words := strings.Fields(text)
	if len(words) == 0 {
		return []string{""}
	}
	lines := []string{words[0]}
	for _, word := range words[1:] {
		last := &lines[len(lines)-1]
		if len(*last)+1+len(word) > width {
			lines = append(lines, word)
			continue
		}
		*last += " " + word
	}
	return lines
}

func num(v *float64, f func(float64) string) string {
	if v == nil || math.IsNaN(*v) || math.IsInf(*v, 0) {
		return "-"
	}
	return f(*v)
}

func fixed(prec int) func(float64) string {
	return func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
}

func cores(c *cpuShare, withServer bool) string {
	if c == nil {
		return "-"
	}
	var parts []string
	if withServer {
		parts = append(parts, num(c.Server, fixed(2)))
	}
	parts = append(parts, num(c.Client, fixed(2)), num(c.Postgres, fixed(2)), num(c.Other, fixed(2)))
	return strings.Join(parts, "/")
}

// thousands formats a non-negative number with no decimals and comma separators.
func thousands(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// human gives a count the short name used in scenario names: 10k, 100k, 1M.
func human(n int) string {
	switch {
	case n >= 1_000_000 && n%100_000 == 0:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + "M"
	case n >= 1_000 && n%100 == 0:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + "k"
	}
	return strconv.Itoa(n)
}
