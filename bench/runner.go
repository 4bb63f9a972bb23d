package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// harness runs the scenarios of one benchmark against one env.
type harness struct {
	cfg  Config
	sc   Scale
	env  *env
	seed string
	exe  string
	out  io.Writer
	log  io.Writer

	client     *http.Client // the harness's own requests: users, applications
	profileRun string
	profiled   bool
}

// measured is a load-generator result plus what the harness saw meanwhile.
type measured struct {
	runResult
	cpu        cpuShare
	rssGrowth  int64 // server runs only
	heapGrowth int64
	stored     int64 // rows in refresh_tokens when the run started
	// pgCPU is the CPU time of the PostgreSQL processes over the timed part
	// (nil when they are not ours to watch).
	pgCPU *time.Duration
}

type loadOpts struct {
	name string // for the profile and error messages
	// measured runs count the stored tokens first and start after a pause in
	// which the previous run's connections finish closing.
	measured bool
	// sampleEvery is how often the server's RSS is sampled (default 10 ms): the
	// sampler runs in the server's process, so it is only made fine-grained
	// where a short peak matters.
	sampleEvery time.Duration
}

// settle is the pause before a measured run.
const settle = 250 * time.Millisecond

// load runs spec in a fresh load-generator process and measures around its timed
// part: CPU of every party, and for server runs this process's RSS and heap
// (sampled from /proc/self/status and runtime/metrics) and, for the chosen run, a
// CPU profile.
func (h *harness) load(ctx context.Context, sp runSpec, o loadOpts) (measured, error) {
	var m measured
	if o.measured {
		if err := h.env.st.DB().GetContext(ctx, &m.stored, `SELECT count(*) FROM refresh_tokens`); err != nil {
			return m, err
		}
		time.Sleep(settle)
	}
	cmd := exec.CommandContext(ctx, h.exe)
	cmd.Env = append(os.Environ(), loadgenEnv+"=1")
	cmd.Stderr = h.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return m, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return m, err
	}
	if err := cmd.Start(); err != nil {
		return m, fmt.Errorf("starting the load generator: %w", err)
	}
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	dec := json.NewDecoder(bufio.NewReader(stdout))
	next := func(want string) (event, error) {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			return ev, fmt.Errorf("%s: load generator: %w", o.name, err)
		}
		if ev.Event == "error" {
			return ev, fmt.Errorf("%s: load generator: %s", o.name, ev.Error)
		}
		if ev.Event != want {
			return ev, fmt.Errorf("%s: load generator said %q, want %q", o.name, ev.Event, want)
		}
		return ev, nil
	}
	b, _ := json.Marshal(sp)
	if _, err := stdin.Write(append(b, '\n')); err != nil {
		return m, err
	}
	if _, err := next("ready"); err != nil {
		return m, err
	}

	var sampler *memSampler
	profiling := false
	if sp.HTTP {
		runtime.GC() // a settled heap to measure growth from
		every := o.sampleEvery
		if every == 0 {
			every = 10 * time.Millisecond
		}
		sampler = startMemSampler(every)
		if h.cfg.CPUProfile != "" && !h.profiled && o.name == h.profileRun {
			f, err := os.Create(h.cfg.CPUProfile)
			if err != nil {
				return m, err
			}
			defer f.Close()
			if err := pprof.StartCPUProfile(f); err != nil {
				return m, err
			}
			profiling, h.profiled = true, true
		}
	}
	before := takeCPUSnapshot(h.env.postmaster)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return m, err
	}
	_, err = next("done")
	after := takeCPUSnapshot(h.env.postmaster)
	if profiling {
		pprof.StopCPUProfile()
	}
	if sampler != nil {
		m.rssGrowth, m.heapGrowth = sampler.Stop()
	}
	if err != nil {
		return m, err
	}
	ev, err := next("result")
	if err != nil {
		return m, err
	}
	m.runResult = *ev.Result
	m.cpu = share(before, after, m.ClientCPU, sp.HTTP)
	if before.pgKnown && after.pgKnown {
		m.pgCPU = ptr(after.pg - before.pg)
	}
	return m, nil
}

// serverSpec, rawSpec and minimalSpec fill in where a run goes.
func (h *harness) serverSpec(op string, concurrency, warmup, count int) runSpec {
	return runSpec{HTTP: true, Op: op, Concurrency: concurrency, Warmup: warmup, Count: count,
		MaxDuration: h.cfg.MaxRunDuration, BaseURL: h.env.baseURL, APIKey: h.env.apiKey, Seed: h.seed}
}

func (h *harness) rawSpec(op string, concurrency, warmup, count int) runSpec {
	return runSpec{Op: op, Concurrency: concurrency, Warmup: warmup, Count: count,
		MaxDuration: h.cfg.MaxRunDuration, DSN: h.env.dsn, Seed: h.seed, EventInfo: serverEventInfo()}
}

func (h *harness) minimalSpec(op string, concurrency, warmup, count int) runSpec {
	sp := h.rawSpec(op, concurrency, warmup, count)
	sp.Minimal, sp.TenantID = true, h.env.tenantID
	return sp
}

// serverEventInfo is the event info the server records for our requests, which
// carry none: impl's eventInfo fills in the caller's address, 127.0.0.1 here.
func serverEventInfo() json.RawMessage {
	ip := "127.0.0.1"
	b, _ := json.Marshal(gen.EventInfo{IpAddress: &ip})
	return b
}

// importSpec describes pools to import as the server would store them.
func (h *harness) importSpec(pools []pool) *importSpec {
	start := time.Now().Add(-time.Minute).UnixMilli()
	return &importSpec{Pools: pools, BatchSize: h.sc.BatchSize, TenantID: h.env.tenantID,
		StartInstant: start, ExpiresAt: start + defaultRefreshTTL.Milliseconds()}
}

// defaultRefreshTTL is the server's refresh-token lifetime when neither tenant
// nor application configures one (impl's defaultRefreshTokenTTLMinutes).
const defaultRefreshTTL = 43200 * time.Minute

func batchesOf(n, size int) int { return (n + size - 1) / size }

// seed imports pools through the HTTP import API, as a client would, and says
// how fast that went.
func (h *harness) seedPools(ctx context.Context, label string, pools ...pool) error {
	total := 0
	for _, p := range pools {
		total += p.Size
	}
	if total == 0 {
		return nil
	}
	sp := h.serverSpec(opImport, h.sc.SeedConcurrency, 0, batchesOf(total, h.sc.BatchSize))
	sp.MaxDuration = 0
	sp.Import = h.importSpec(pools)
	m, err := h.load(ctx, sp, loadOpts{name: "seed " + label})
	if err != nil {
		return err
	}
	if m.Errors > 0 {
		return fmt.Errorf("seed %s: %d of %d batches failed, first: %s", label, m.Errors, m.Done, m.FirstError)
	}
	fmt.Fprintf(h.out, "seed %-14s %10s tokens in %6.1f s = %8s tokens/s (HTTP import, batches of %d, %d in flight)\n",
		label, thousands(float64(total)), m.Wall.Seconds(), thousands(float64(m.Units)/m.Wall.Seconds()),
		h.sc.BatchSize, h.sc.SeedConcurrency)
	return h.maintain(ctx, false)
}

// maintain runs VACUUM ANALYZE so that each phase starts with fresh statistics and
// no autovacuum due; checkpoint also flushes dirty pages so that a bulk run does
// not pay for the writes of the one before.
func (h *harness) maintain(ctx context.Context, checkpoint bool) error {
	db := h.env.st.DB()
	if _, err := db.ExecContext(ctx, `VACUUM ANALYZE refresh_tokens`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if checkpoint {
		// Needs superuser (or pg_checkpoint); without it the run goes on.
		if _, err := db.ExecContext(ctx, `CHECKPOINT`); err != nil {
			fmt.Fprintf(h.log, "bench: CHECKPOINT: %v (continuing)\n", err)
		}
	}
	return nil
}

func (h *harness) countApp(ctx context.Context, app uuid.UUID) (int64, error) {
	var n int64
	err := h.env.st.DB().GetContext(ctx, &n, `SELECT count(*) FROM refresh_tokens WHERE application_id = $1`, app)
	return n, err
}

// expect counts the tokens left in an application and records the check on row.
func (h *harness) expect(ctx context.Context, row *Row, what string, app uuid.UUID, want int64) error {
	got, err := h.countApp(ctx, app)
	if err != nil {
		return err
	}
	row.Checks = append(row.Checks, Check{What: what, App: app, Want: want, Got: got})
	return nil
}

// post sends one administrative request of the harness and wants 200.
func (h *harness) post(ctx context.Context, path string, body any) error {
	return h.request(ctx, http.MethodPost, path, body, nil)
}

// request sends one administrative request of the harness with the API key,
// wants 200 and decodes the answer into out when out is not nil.
func (h *harness) request(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.env.baseURL+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", h.env.apiKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: status %d %s", method, path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	if out != nil {
		if err := json.Unmarshal(msg, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// parallel runs fn(0..n-1) on a few workers, stopping at the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return firstErr
}

// createApplications creates applications through POST /api/application/{id}.
func (h *harness) createApplications(ctx context.Context, names []string) error {
	return parallel(ctx, len(names), 8, func(ctx context.Context, i int) error {
		return h.post(ctx, "/api/application/"+appID(h.seed, names[i]).String(),
			map[string]any{"application": map[string]any{"name": names[i]}})
	})
}

// createUsers creates the n users of a group through POST /api/user/{id}.
func (h *harness) createUsers(ctx context.Context, group string, n int) error {
	return parallel(ctx, n, 8, func(ctx context.Context, i int) error {
		return h.post(ctx, "/api/user/"+userID(h.seed, group, i).String(),
			map[string]any{"user": map[string]any{"username": fmt.Sprintf("%s-%d", group, i)}})
	})
}
