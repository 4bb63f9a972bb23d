package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"
)

// Report is what a run produced.
type Report struct {
	Machine Machine
	Rows    []Row
	// DSN is the database the run used (kept only with Config.KeepDatabase).
	DSN     string
	Elapsed time.Duration
}

// Failed lists the rows whose requests failed or whose row counts afterwards
// were not what the requests claimed.
func (r *Report) Failed() []string {
	var out []string
	for _, row := range r.Rows {
		if !row.OK() {
			out = append(out, row.Name+": "+row.Check)
		}
	}
	return out
}

// Run sets up the environment, runs every scenario, prints the table to cfg.Out
// and returns the report. On an error the report holds the rows measured so far.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	start := time.Now()
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Log == nil {
		cfg.Log = os.Stderr
	}
	if cfg.Scale.Name == "" {
		return nil, errors.New("bench: Config.Scale is not set")
	}
	if human(cfg.Scale.SmallTable) == human(cfg.Scale.BigApp) {
		return nil, errors.New("bench: the small and the big table of the latency check must differ in size")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	// Warnings and errors only: the server logs requests at debug level anyway,
	// and failures are what should show up beside the table.
	log := slog.New(slog.NewTextHandler(cfg.Log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, err := setupEnv(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	rep := &Report{DSN: e.dsn}
	defer func() {
		if err := e.close(); err != nil {
			log.Warn("bench: teardown", "error", err)
		}
	}()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	h := &harness{
		cfg: cfg, sc: cfg.Scale, env: e, seed: hex.EncodeToString(b), exe: exe,
		out: cfg.Out, log: cfg.Log,
		client:     &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}, Timeout: time.Minute},
		profileRun: cfg.ProfileRun,
	}
	if h.profileRun == "" {
		h.profileRun = fmt.Sprintf("revoke-token/query/c%d", cfg.Scale.ProfileConcurrency)
	}
	rep.Machine = describeMachine(ctx, e)
	h.header(rep.Machine)

	rows, err := h.scenarios(ctx)
	for i := range rows {
		rows[i].Check = checkText(rows[i])
	}
	applyTargets(rows)
	rep.Rows = rows
	rep.Elapsed = time.Since(start)
	WriteTable(cfg.Out, rows)
	if cfg.CPUProfile != "" && !h.profiled {
		fmt.Fprintf(cfg.Out, "\nno run named %q: no CPU profile written\n", h.profileRun)
	} else if cfg.CPUProfile != "" {
		fmt.Fprintf(cfg.Out, "\nCPU profile of the server during %s: %s (go tool pprof -top %s)\n",
			h.profileRun, cfg.CPUProfile, cfg.CPUProfile)
	}
	fmt.Fprintf(cfg.Out, "\n%d scenarios in %s\n", len(rows), rep.Elapsed.Round(time.Second))
	return rep, err
}

func (h *harness) header(m Machine) {
	w := h.out
	fmt.Fprintf(w, "refreshd benchmark, %s scale\n", h.sc.Name)
	if h.cfg.Command != "" {
		fmt.Fprintf(w, "command:    %s\n", h.cfg.Command)
	}
	fmt.Fprintf(w, "machine:    %s, %d cores (GOMAXPROCS %d), %.1f GiB, load average %s at start\n",
		m.CPU, m.Cores, m.GOMAXPROCS, m.MemoryGiB, m.LoadAvg)
	where := "DATABASE_URL (a fresh database on it)"
	if m.PGPrivate {
		where = "private cluster"
		if h.cfg.FastPostgres {
			where += ", fast (non-durable)"
		}
	}
	fmt.Fprintf(w, "postgresql: %s, %s\n            %s\n", m.PostgreSQL, where, m.PGSettings)
	fmt.Fprintf(w, "go:         %s; server in this process on %s, load generator in a child process\n", m.Go, h.env.baseURL)
	fmt.Fprintf(w, "statements: store.RevokeByTokenStatement, RevokeBulkStatement, InsertTokens (taken per request);\n")
	fmt.Fprintf(w, "            exchange: (*store.Store).ExchangeRefreshToken, the server's transaction\n\n")
}

func checkText(r Row) string {
	var bad []string
	if r.Errors > 0 {
		bad = append(bad, fmt.Sprintf("%d requests failed (%s)", r.Errors, r.FirstError))
	}
	for _, c := range r.Checks {
		if c.Want != c.Got {
			bad = append(bad, fmt.Sprintf("%s: %d tokens left, want %d", c.What, c.Got, c.Want))
		}
	}
	text := "ok"
	if len(bad) > 0 {
		text = "FAIL: " + strings.Join(bad, "; ")
	}
	if r.WebhookEvents != nil && r.WebhookDelivered != nil {
		text += fmt.Sprintf("; webhook: %s of %s server events delivered", thousands(float64(*r.WebhookDelivered)),
			thousands(float64(*r.WebhookEvents)))
		if r.WebhookAtEnd != nil && r.WebhookWaitMs != nil {
			text += fmt.Sprintf(" (%s by the end of the run, then %.1f s)", thousands(float64(*r.WebhookAtEnd)), *r.WebhookWaitMs/1000)
		}
	}
	return text
}

// scenarios lays out the data, seeds it in phases and runs every scenario. The
// order matters: the latency check wants the small table first, and the second
// bulk application is only seeded at the end so that the big table of the latency
// check holds about BigApp tokens.
func (h *harness) scenarios(ctx context.Context) ([]Row, error) {
	sc := h.sc
	var rows []Row
	add := func(r Row) { rows = append(rows, r) }
	newPool := func(name, group string, users, size int) pool {
		return pool{Name: name, App: appID(h.seed, name), Group: group, Users: users, Size: size}
	}
	modes := []string{"server", "raw"}

	// Token pools for the latency check, on the small and on the big table.
	latency := map[string]map[int]map[string]pool{}
	var smallPools, bigLatPools []pool
	smallTotal := 0
	for _, size := range []string{"small", "big"} {
		latency[size] = map[int]map[string]pool{}
		for _, c := range sc.LatencyConcurrencies {
			latency[size][c] = map[string]pool{}
			for _, mode := range modes {
				p := newPool(fmt.Sprintf("latency-%s/c%d/%s", size, c, mode), "pool", sc.PoolUsers,
					sc.warmup(c)+sc.LatencyCount[c])
				latency[size][c][mode] = p
				if size == "small" {
					smallPools = append(smallPools, p)
					smallTotal += p.Size
				} else {
					bigLatPools = append(bigLatPools, p)
				}
			}
		}
	}
	filler := newPool("filler", "pool", sc.PoolUsers, max(0, sc.SmallTable-smallTotal))
	bulkA := newPool("bulk-a", "big", sc.BigAppUsers, sc.BigApp)
	bulkB := newPool("bulk-b", "big", sc.BigAppUsers, sc.BigApp)
	primer := newPool("bulk-primer", "big", sc.BigAppUsers, 0)

	forms := []struct{ name, op string }{{"query", opRevokeTokenQuery}, {"json", opRevokeTokenJSON}}
	tokenPools := map[string]pool{}
	var mainPools []pool
	for _, f := range forms {
		for _, c := range sc.TokenConcurrencies {
			for _, mode := range modes {
				key := fmt.Sprintf("token/%s/c%d/%s", f.name, c, mode)
				p := newPool(key, "pool", sc.PoolUsers, sc.warmup(c)+sc.TokenCount[c])
				tokenPools[key] = p
				mainPools = append(mainPools, p)
			}
		}
	}
	// Revoke by token with a webhook: pools of their own, seeded with the others.
	hookPools := map[string]pool{}
	for _, mode := range modes {
		p := newPool(fmt.Sprintf("token/webhooks/c%d/%s", sc.WebhookConcurrency, mode), "pool", sc.PoolUsers,
			sc.warmup(sc.WebhookConcurrency)+sc.WebhookCount)
		hookPools[mode] = p
		mainPools = append(mainPools, p)
	}
	// Exchange: reusable tokens, exchanged over and over; a pool per side.
	exchangePools := map[string]pool{}
	for _, mode := range modes {
		p := newPool("exchange/"+mode, "pool", sc.PoolUsers, sc.ExchangePool)
		exchangePools[mode] = p
		mainPools = append(mainPools, p)
	}
	// Users of the bulk-by-user runs hold TokensPerUser tokens each, in one
	// application; those of the user + application runs as many again in a
	// second application, which must survive.
	users := sc.warmup(sc.UserConcurrency) + sc.UserCount
	byUser, userAppP, userAppQ := map[string]pool{}, map[string]pool{}, map[string]pool{}
	groups := map[string]int{"pool": sc.PoolUsers, "big": sc.BigAppUsers}
	for _, mode := range modes {
		g := "by-user/" + mode
		groups[g] = users
		byUser[mode] = newPool(g, g, users, users*sc.TokensPerUser)
		g = "user-app/" + mode
		groups[g] = users
		userAppP[mode] = newPool(g+"/revoked", g, users, users*sc.TokensPerUser)
		userAppQ[mode] = newPool(g+"/kept", g, users, users*sc.TokensPerUser)
		mainPools = append(mainPools, byUser[mode], userAppP[mode], userAppQ[mode])
	}
	importPools := map[string]pool{}
	for _, c := range sc.ImportConcurrencies {
		for _, mode := range modes {
			key := fmt.Sprintf("import/c%d/%s", c, mode)
			importPools[key] = newPool(key, "pool", sc.PoolUsers, (c+batchesOf(sc.ImportTokens, sc.BatchSize))*sc.BatchSize)
		}
	}

	// Applications and users, through the API.
	var apps []string
	for _, list := range [][]pool{smallPools, bigLatPools, mainPools, {filler, bulkA, bulkB, primer}} {
		for _, p := range list {
			apps = append(apps, p.Name)
		}
	}
	for _, p := range importPools {
		apps = append(apps, p.Name)
	}
	t0 := time.Now()
	if err := h.createApplications(ctx, apps); err != nil {
		return rows, fmt.Errorf("creating applications: %w", err)
	}
	nUsers := 0
	for g, n := range groups {
		if err := h.createUsers(ctx, g, n); err != nil {
			return rows, fmt.Errorf("creating users: %w", err)
		}
		nUsers += n
	}
	fmt.Fprintf(h.out, "setup: %d applications and %s users created through the API in %.1f s\n",
		len(apps), thousands(float64(nUsers)), time.Since(t0).Seconds())

	// Phase 1: the small table.
	if err := h.seedPools(ctx, "small table", append([]pool{filler}, smallPools...)...); err != nil {
		return rows, err
	}
	for _, c := range sc.LatencyConcurrencies {
		r, err := h.revokeTokens(ctx, fmt.Sprintf("revoke-token/latency-%s/c%d", human(sc.SmallTable), c),
			kindLatSmall, opRevokeTokenQuery, c, sc.LatencyCount[c], latency["small"][c])
		add(r)
		if err != nil {
			return rows, err
		}
	}

	// Phase 2: the big table, made by the first bulk application.
	if err := h.seedPools(ctx, "bulk-a", bulkA); err != nil {
		return rows, err
	}
	if err := h.seedPools(ctx, "latency pools", bigLatPools...); err != nil {
		return rows, err
	}
	for _, c := range sc.LatencyConcurrencies {
		r, err := h.revokeTokens(ctx, fmt.Sprintf("revoke-token/latency-%s/c%d", human(sc.BigApp), c),
			kindLatBig, opRevokeTokenQuery, c, sc.LatencyCount[c], latency["big"][c])
		add(r)
		if err != nil {
			return rows, err
		}
	}

	// Phase 3: revoke by token value, by user, by user + application.
	if err := h.seedPools(ctx, "revoke pools", mainPools...); err != nil {
		return rows, err
	}
	for _, f := range forms {
		for _, c := range sc.TokenConcurrencies {
			pools := map[string]pool{}
			for _, mode := range modes {
				pools[mode] = tokenPools[fmt.Sprintf("token/%s/c%d/%s", f.name, c, mode)]
			}
			r, err := h.revokeTokens(ctx, fmt.Sprintf("revoke-token/%s/c%d", f.name, c), kindToken, f.op, c, sc.TokenCount[c], pools)
			add(r)
			if err != nil {
				return rows, err
			}
		}
	}
	r, err := h.revokeTokensWebhook(ctx, hookPools)
	add(r)
	if err != nil {
		return rows, err
	}
	r, err = h.revokeUsers(ctx, byUser, nil)
	add(r)
	if err != nil {
		return rows, err
	}
	r, err = h.revokeUsers(ctx, userAppP, userAppQ)
	add(r)
	if err != nil {
		return rows, err
	}

	// Phase 4: exchange of a refresh token for a JWT.
	for _, c := range sc.ExchangeConcurrencies {
		r, err := h.exchange(ctx, c, sc.ExchangeCount[c], exchangePools)
		add(r)
		if err != nil {
			return rows, err
		}
	}

	// Phase 4b: validation of access tokens, on the hot path of resource servers.
	for _, c := range sc.ExchangeConcurrencies {
		r, err := h.validate(ctx, c, sc.ExchangeCount[c], exchangePools)
		add(r)
		if err != nil {
			return rows, err
		}
	}

	// Phase 5: import.
	for _, c := range sc.ImportConcurrencies {
		r, err := h.importRun(ctx, c, importPools[fmt.Sprintf("import/c%d/server", c)], importPools[fmt.Sprintf("import/c%d/raw", c)])
		add(r)
		if err != nil {
			return rows, err
		}
	}

	// Phase 6: bulk revoke of one application, against the raw statement on an
	// identically seeded second one.
	if err := h.seedPools(ctx, "bulk-b", bulkB); err != nil {
		return rows, err
	}
	r, err = h.revokeApp(ctx, bulkA, bulkB, primer)
	add(r)
	return rows, err
}

// revokeTokens revokes, one token per request, the server pool through the API
// and the raw pool with the store's statement.
func (h *harness) revokeTokens(ctx context.Context, name, kind, op string, c, count int, pools map[string]pool) (Row, error) {
	w := h.sc.warmup(c)
	srvSpec := h.serverSpec(op, c, w, count)
	srvSpec.Pool = pools["server"]
	srv, err := h.load(ctx, srvSpec, loadOpts{name: name, measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	rawSpec := h.rawSpec(op, c, w, count)
	rawSpec.Pool = pools["raw"]
	raw, err := h.load(ctx, rawSpec, loadOpts{name: name + " (raw)", measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	row := newRow(name, kind, "requests/s, one token each", c, &srv, &raw)
	for mode, m := range map[string]measured{"server": srv, "raw": raw} {
		p := pools[mode]
		if err := h.expect(ctx, &row, mode+" pool", p.App, int64(p.Size-m.WarmupDone-m.Done)); err != nil {
			return row, err
		}
	}
	return row, nil
}

// revokeUsers revokes all tokens of each user (kept == nil) or each user's
// tokens of one application (the other, kept, must keep theirs).
func (h *harness) revokeUsers(ctx context.Context, revoked, kept map[string]pool) (Row, error) {
	c, n, w := h.sc.UserConcurrency, h.sc.UserCount, h.sc.warmup(h.sc.UserConcurrency)
	op, name, kind := opRevokeUser, fmt.Sprintf("revoke-user/c%d", c), kindUser
	if kept != nil {
		op, name, kind = opRevokeUserApp, fmt.Sprintf("revoke-user-app/c%d", c), kindUserApp
	}
	srvSpec := h.serverSpec(op, c, w, n)
	srvSpec.Pool, srvSpec.AppID = revoked["server"], revoked["server"].App
	srv, err := h.load(ctx, srvSpec, loadOpts{name: name, measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	rawSpec := h.rawSpec(op, c, w, n)
	rawSpec.Pool, rawSpec.AppID = revoked["raw"], revoked["raw"].App
	raw, err := h.load(ctx, rawSpec, loadOpts{name: name + " (raw)", measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	per := int64(h.sc.TokensPerUser)
	row := newRow(name, kind, fmt.Sprintf("requests/s, %d tokens each", per), c, &srv, &raw)
	if raw.Revoked != int64(raw.Done)*per {
		row.Errors++
		row.FirstError = fmt.Sprintf("raw statements reported %d tokens revoked, want %d", raw.Revoked, int64(raw.Done)*per)
	}
	for mode, m := range map[string]measured{"server": srv, "raw": raw} {
		p := revoked[mode]
		left := int64(p.Users-m.WarmupDone-m.Done) * per
		if err := h.expect(ctx, &row, mode+" revoked application", p.App, left); err != nil {
			return row, err
		}
		if kept != nil {
			if err := h.expect(ctx, &row, mode+" other application", kept[mode].App, int64(kept[mode].Size)); err != nil {
				return row, err
			}
		}
	}
	return row, nil
}

// importRun imports ImportTokens in batches through the API, then the same number
// with the store's INSERT … SELECT FROM unnest, at the same concurrency.
func (h *harness) importRun(ctx context.Context, c int, srvPool, rawPool pool) (Row, error) {
	name := fmt.Sprintf("import/c%d", c)
	batches := batchesOf(h.sc.ImportTokens, h.sc.BatchSize)
	// One batch per client before the clock starts opens every connection.
	srvSpec := h.serverSpec(opImport, c, c, batches)
	srvSpec.Import = h.importSpec([]pool{srvPool})
	srv, err := h.load(ctx, srvSpec, loadOpts{name: name, measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	rawSpec := h.rawSpec(opImport, c, c, batches)
	rawSpec.Import = h.importSpec([]pool{rawPool})
	raw, err := h.load(ctx, rawSpec, loadOpts{name: name + " (raw)", measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	row := newRow(name, kindImport, fmt.Sprintf("tokens/s, batches of %d", h.sc.BatchSize), c, &srv, &raw)
	for mode, m := range map[string]measured{"server": srv, "raw": raw} {
		p := map[string]pool{"server": srvPool, "raw": rawPool}[mode]
		if err := h.expect(ctx, &row, mode+" imported", p.App, int64(m.WarmupDone*h.sc.BatchSize)+m.Units); err != nil {
			return row, err
		}
	}
	return row, nil
}

// revokeApp revokes every token of a through one API request, and of b with the
// store's statement. Each starts after VACUUM and CHECKPOINT, so neither pays
// for the other's dead rows or dirty pages, and after one un-timed revoke of the
// empty application primer, so neither pays for opening a connection.
func (h *harness) revokeApp(ctx context.Context, a, b, primer pool) (Row, error) {
	name := "revoke-app/bulk-" + human(a.Size)
	if err := h.maintain(ctx, true); err != nil {
		return Row{Name: name}, err
	}
	srvSpec := h.serverSpec(opRevokeApp, 1, 1, 1)
	srvSpec.MaxDuration, srvSpec.AppID, srvSpec.WarmupAppID = 0, a.App, primer.App
	srv, err := h.load(ctx, srvSpec, loadOpts{name: name, measured: true, sampleEvery: 2 * time.Millisecond})
	if err != nil {
		return Row{Name: name}, err
	}
	if err := h.maintain(ctx, true); err != nil {
		return Row{Name: name}, err
	}
	rawSpec := h.rawSpec(opRevokeApp, 1, 1, 1)
	rawSpec.MaxDuration, rawSpec.AppID, rawSpec.WarmupAppID = 0, b.App, primer.App
	raw, err := h.load(ctx, rawSpec, loadOpts{name: name + " (raw)", measured: true})
	if err != nil {
		return Row{Name: name}, err
	}
	srv.Units, raw.Units = int64(a.Size), int64(b.Size)
	row := newRow(name, kindBulk, "tokens/s (one request)", 1, &srv, &raw)
	row.ServerMs, row.RawMs = ms(srv.Wall), ms(raw.Wall)
	if raw.Revoked != int64(b.Size) {
		row.Errors++
		row.FirstError = fmt.Sprintf("raw statement reported %d tokens revoked, want %d", raw.Revoked, b.Size)
	}
	if err := h.expect(ctx, &row, "server application", a.App, 0); err != nil {
		return row, err
	}
	return row, h.expect(ctx, &row, "raw application", b.App, 0)
}
