package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"refreshd/impl/store"
)

// The load generator runs in a process of its own — this same binary, started
// with loadgenEnv set — so that the CPU it burns building requests and reading
// answers is not counted as the server's, and the server's RSS and CPU profile
// are the server's alone. The harness and the generator speak one JSON object
// per line:
//
//	harness → generator: the runSpec; later "go"
//	generator → harness: {"event":"ready"} once prepared and warmed up,
//	                     {"event":"done"} the moment the timed part ends,
//	                     {"event":"result",…} with the measurements,
//	                     or {"event":"error",…} at any point;
//	                     then it waits for the end of its stdin to close
//	                     its connections and exit.
const loadgenEnv = "REFRESHD_BENCH_LOADGEN"

// IsLoadgen reports whether this process was started by the harness as its load
// generator. A main (or TestMain) that runs the harness must check it first and
// then hand over to LoadgenMain.
func IsLoadgen() bool { return os.Getenv(loadgenEnv) == "1" }

// LoadgenMain runs one measured run as the harness's load generator, reading
// instructions from in and writing events to out; it returns the exit code.
func LoadgenMain(in io.Reader, out io.Writer) int {
	enc := json.NewEncoder(out)
	if err := loadgen(bufio.NewReader(in), enc); err != nil {
		_ = enc.Encode(event{Event: "error", Error: err.Error()})
		return 1
	}
	return 0
}

type event struct {
	Event  string     `json:"event"`
	Error  string     `json:"error,omitempty"`
	Result *runResult `json:"result,omitempty"`
}

// Operations the generator can run; each exists over HTTP and raw.
const (
	opRevokeTokenQuery = "revoke-token-query" // DELETE /api/jwt/refresh?token=
	opRevokeTokenJSON  = "revoke-token-json"  // DELETE /api/jwt/refresh {"token":…}
	opRevokeUser       = "revoke-user"        // ?userId=
	opRevokeUserApp    = "revoke-user-app"    // ?userId=&applicationId=
	opRevokeApp        = "revoke-app"         // ?applicationId=, one request
	opImport           = "import"             // POST /api/user/refresh-token/import
	opExchange         = "exchange"           // POST /api/jwt/refresh {"refreshToken":…}, no API key
	opValidate         = "validate"           // GET /api/jwt/validate, Authorization: Bearer <access token>
)

// runSpec is one measured run. Items are tokens, users, applications or import
// batches depending on Op; the first Warmup of them are run before the clock starts.
type runSpec struct {
	HTTP        bool            `json:"http"` // false: the raw statement
	Op          string          `json:"op"`
	Concurrency int             `json:"concurrency"`
	Warmup      int             `json:"warmup"`
	Count       int             `json:"count"`
	MaxDuration time.Duration   `json:"max_duration"` // 0: all Count items
	BaseURL     string          `json:"base_url,omitempty"`
	APIKey      string          `json:"api_key,omitempty"`
	DSN         string          `json:"dsn,omitempty"`
	EventInfo   json.RawMessage `json:"event_info,omitempty"` // raw: the revoke event's info, as the server builds it
	Seed        string          `json:"seed"`
	Pool        pool            `json:"pool"` // revoke-token, exchange: the tokens; revoke-user*: pool.Group's users
	AppID       uuid.UUID       `json:"app_id"`
	// WarmupAppID is the application of revoke-app's warm-up items: one without
	// tokens, so that warming up opens the connection and caches the plans
	// without revoking what is to be measured.
	WarmupAppID uuid.UUID   `json:"warmup_app_id"`
	Import      *importSpec `json:"import,omitempty"`
	// Bearers are the access tokens validate cycles through.
	Bearers []string `json:"bearers,omitempty"`
}

// importSpec: the pools' tokens, in order, cut into batches.
type importSpec struct {
	Pools     []pool `json:"pools"`
	BatchSize int    `json:"batch_size"`
	// For the raw statement: what the server would store. ExpiresAt assumes the
	// default refresh-token lifetime (no jwtConfiguration on tenant or application).
	TenantID     uuid.UUID `json:"tenant_id"`
	StartInstant int64     `json:"start_instant"`
	ExpiresAt    int64     `json:"expires_at"`
}

// runResult is what the generator measured over the timed items.
type runResult struct {
	Done       int           `json:"done"`        // timed items finished, failed or not
	WarmupDone int           `json:"warmup_done"` // warm-up items finished
	Units      int64         `json:"units"`       // tokens for import, else items
	Errors     int           `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	Wall       time.Duration `json:"wall"`
	P50        time.Duration `json:"p50"`
	P90        time.Duration `json:"p90"`
	P99        time.Duration `json:"p99"`
	Max        time.Duration `json:"max"`
	Mean       time.Duration `json:"mean"`
	ClientCPU  time.Duration `json:"client_cpu"`
	Revoked    int64         `json:"revoked"` // raw: what the statements reported
}

// doFunc runs item i and returns how many tokens it revoked, when known.
type doFunc func(ctx context.Context, i int) (int64, error)

func loadgen(in *bufio.Reader, enc *json.Encoder) error {
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the run spec: %w", err)
	}
	var sp runSpec
	if err := json.Unmarshal(line, &sp); err != nil {
		return fmt.Errorf("decoding the run spec: %w", err)
	}
	if sp.Concurrency < 1 {
		return errors.New("concurrency must be at least 1")
	}
	ctx := context.Background()
	do, units, closeFn, err := prepare(sp)
	if err != nil {
		return err
	}
	defer closeFn()

	warm := drive(ctx, sp.Concurrency, 0, sp.Warmup, time.Time{}, do)
	if warm.errors > 0 {
		return fmt.Errorf("warm-up: %d of %d failed, first: %v", warm.errors, warm.done, warm.firstErr)
	}
	if err := enc.Encode(event{Event: "ready"}); err != nil {
		return err
	}
	if cmd, err := in.ReadString('\n'); err != nil || cmd != "go\n" {
		return fmt.Errorf("waiting for go: %q, %v", cmd, err)
	}

	var deadline time.Time
	cpu0, start := selfCPU(), time.Now()
	if sp.MaxDuration > 0 {
		deadline = start.Add(sp.MaxDuration)
	}
	timed := drive(ctx, sp.Concurrency, sp.Warmup, sp.Warmup+sp.Count, deadline, do)
	wall, cpu := time.Since(start), selfCPU()-cpu0
	if err := enc.Encode(event{Event: "done"}); err != nil {
		return err
	}

	res := &runResult{
		Done: timed.done, WarmupDone: warm.done, Errors: timed.errors, Wall: wall, ClientCPU: cpu,
		Revoked: timed.revoked, Units: int64(timed.done),
	}
	if units != nil {
		res.Units = 0
		for i := sp.Warmup; i < sp.Warmup+timed.done; i++ {
			res.Units += int64(units(i))
		}
	}
	if timed.firstErr != nil {
		res.FirstError = timed.firstErr.Error()
	}
	res.P50, res.P90, res.P99, res.Max, res.Mean = summarise(timed.latencies)
	if err := enc.Encode(event{Event: "result", Result: res}); err != nil {
		return err
	}
	// Keep the connections open until the harness closes our stdin: closing them
	// at once would make the database's backends exit while the harness is still
	// taking its end-of-run CPU snapshot.
	_, _ = io.Copy(io.Discard, in)
	return nil
}

type driven struct {
	latencies []time.Duration
	done      int
	errors    int
	firstErr  error
	revoked   int64
}

// drive runs items [from, to) on n workers that each take the next item as soon
// as they finish one (a closed loop: n requests are always in flight), until the
// items or the time run out.
func drive(ctx context.Context, n, from, to int, deadline time.Time, do doFunc) driven {
	var (
		next atomic.Int64
		mu   sync.Mutex
		all  driven
		wg   sync.WaitGroup
	)
	next.Store(int64(from))
	for w := 0; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine driven
			mine.latencies = make([]time.Duration, 0, (to-from)/n+1)
			for {
				i := int(next.Add(1) - 1)
				if i >= to || (!deadline.IsZero() && time.Now().After(deadline)) {
					break
				}
				t0 := time.Now()
				revoked, err := do(ctx, i)
				mine.latencies = append(mine.latencies, time.Since(t0))
				mine.done++
				mine.revoked += revoked
				if err != nil {
					mine.errors++
					if mine.firstErr == nil {
						mine.firstErr = fmt.Errorf("item %d: %w", i, err)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			all.latencies = append(all.latencies, mine.latencies...)
			all.done += mine.done
			all.errors += mine.errors
			all.revoked += mine.revoked
			if all.firstErr == nil {
				all.firstErr = mine.firstErr
			}
		}()
	}
	wg.Wait()
	return all
}

// summarise returns p50, p90, p99 (nearest rank), max and mean.
func summarise(lat []time.Duration) (p50, p90, p99, maxLat, mean time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	rank := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(lat)))) - 1
		return lat[max(0, min(i, len(lat)-1))]
	}
	var sum time.Duration
	for _, d := range lat {
		sum += d
	}
	return rank(0.50), rank(0.90), rank(0.99), lat[len(lat)-1], sum / time.Duration(len(lat))
}

// prepare builds every request, or what each raw statement is made from, before
// the clock starts, so that the timed loop does little but send and wait (the
// raw side asks the store for its statement per request, as the server does).
// units, when not nil, says how many tokens item i carries (import batches).
func prepare(sp runSpec) (do doFunc, units func(int) int, closeFn func(), err error) {
	n := sp.Warmup + sp.Count
	if sp.HTTP {
		return prepareHTTP(sp, n)
	}
	return prepareRaw(sp, n)
}

func newHTTPClient(concurrency int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        concurrency,
			MaxIdleConnsPerHost: concurrency,
			MaxConnsPerHost:     concurrency,
			IdleConnTimeout:     2 * time.Minute,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
		// A bulk revoke of a million tokens is one long request.
		Timeout: 30 * time.Minute,
	}
}

func prepareHTTP(sp runSpec, n int) (doFunc, func(int) int, func(), error) {
	client := newHTTPClient(sp.Concurrency)
	closeFn := client.CloseIdleConnections
	endpoint := sp.BaseURL + "/api/jwt/refresh"
	urls := make([]string, n)
	var bodies [][]byte
	var units func(int) int
	method := http.MethodDelete
	switch sp.Op {
	case opRevokeTokenQuery:
		for i := range urls {
			urls[i] = endpoint + "?token=" + url.QueryEscape(tokenValue(sp.Seed, sp.Pool.Name, i))
		}
	case opRevokeTokenJSON:
		bodies = make([][]byte, n)
		for i := range urls {
			urls[i] = endpoint
			bodies[i], _ = json.Marshal(map[string]string{"token": tokenValue(sp.Seed, sp.Pool.Name, i)})
		}
	case opRevokeUser:
		for i := range urls {
			urls[i] = endpoint + "?userId=" + userID(sp.Seed, sp.Pool.Group, i).String()
		}
	case opRevokeUserApp:
		for i := range urls {
			urls[i] = endpoint + "?userId=" + userID(sp.Seed, sp.Pool.Group, i).String() + "&applicationId=" + sp.AppID.String()
		}
	case opRevokeApp:
		for i := range urls {
			urls[i] = endpoint + "?applicationId=" + sp.appFor(i).String()
		}
	case opImport:
		method = http.MethodPost
		batches, err := importBatches(sp)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(batches) < n {
			return nil, nil, nil, fmt.Errorf("import: %d batches, %d asked for", len(batches), n)
		}
		bodies = make([][]byte, n)
		for i := range urls {
			urls[i] = sp.BaseURL + "/api/user/refresh-token/import"
			bodies[i] = batches[i].httpBody(sp.Import.StartInstant)
		}
		units = func(i int) int { return len(batches[i].tokens) }
	case opExchange:
		// Reusable tokens: item i exchanges token i mod the pool's size.
		method = http.MethodPost
		bodies = make([][]byte, n)
		for i := range urls {
			urls[i] = endpoint
			bodies[i], _ = json.Marshal(map[string]string{"refreshToken": tokenValue(sp.Seed, sp.Pool.Name, i%sp.Pool.Size)})
		}
	case opValidate:
		if len(sp.Bearers) == 0 {
			return nil, nil, nil, errors.New("validate: no access tokens")
		}
		method = http.MethodGet
		for i := range urls {
			urls[i] = sp.BaseURL + "/api/jwt/validate"
		}
	default:
		return nil, nil, nil, fmt.Errorf("unknown operation %q", sp.Op)
	}
	// The exchange and the validation are a client's calls: no API key.
	withKey := sp.Op != opExchange && sp.Op != opValidate
	do := func(ctx context.Context, i int) (int64, error) {
		var body io.Reader
		if bodies != nil {
			body = bytes.NewReader(bodies[i])
		}
		req, err := http.NewRequestWithContext(ctx, method, urls[i], body)
		if err != nil {
			return 0, err
		}
		if withKey {
			req.Header.Set("Authorization", sp.APIKey)
		}
		if sp.Op == opValidate {
			req.Header.Set("Authorization", "Bearer "+sp.Bearers[i%len(sp.Bearers)])
		}
		if bodies != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		// Read to the end so that the connection goes back to the pool.
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("%s %s: status %d %s", method, urls[i], resp.StatusCode, bytes.TrimSpace(b))
		}
		if sp.Op == opExchange && !bytes.Contains(b, []byte(`"token":"`)) {
			return 0, fmt.Errorf("%s %s: 200 without an access token: %s", method, urls[i], bytes.TrimSpace(b))
		}
		return 0, nil
	}
	return do, units, closeFn, nil
}

func prepareRaw(sp runSpec, n int) (doFunc, func(int) int, func(), error) {
	switch sp.Op {
	case opExchange:
		return prepareRawExchange(sp, n)
	case opValidate:
		return prepareRawValidate(sp)
	}
	// Connected exactly as the store connects (binary parameters: one round trip
	// per statement), so that the comparison is of the statements alone.
	db, err := store.OpenDB(sp.DSN)
	if err != nil {
		return nil, nil, nil, err
	}
	// One connection per client, as each client of a database would have.
	db.SetMaxOpenConns(sp.Concurrency)
	db.SetMaxIdleConns(sp.Concurrency)
	closeFn := func() { db.Close() }
	// The statements and arguments are the store's own, taken per request (so
	// that their now is current) for what our requests name: an unscoped key
	// (the zero Scope), and no user or application where none is given.
	var (
		sc   store.Scope
		info = []byte(sp.EventInfo)
	)
	revoke := func(ctx context.Context, query string, args []any) (int64, error) {
		var userOK, appOK bool
		var revoked int64
		var ids any // the receipt, which the benchmark does not ask for
		err := db.QueryRowContext(ctx, query, args...).Scan(&userOK, &appOK, &revoked, &ids)
		if err == nil && !(userOK && appOK) {
			err = fmt.Errorf("statement found user %v, application %v", userOK, appOK)
		}
		return revoked, err
	}
	var do doFunc
	var units func(int) int
	switch sp.Op {
	case opRevokeTokenQuery, opRevokeTokenJSON:
		hashes := make([][]byte, n)
		for i := range hashes {
			hashes[i] = tokenHash(tokenValue(sp.Seed, sp.Pool.Name, i))
		}
		do = func(ctx context.Context, i int) (int64, error) {
			query, args := store.RevokeByTokenStatement(sc, hashes[i], nil, nil, info)
			r, err := revoke(ctx, query, args)
			if err == nil && r != 1 {
				err = fmt.Errorf("revoked %d tokens, want 1", r)
			}
			return r, err
		}
	case opRevokeUser, opRevokeUserApp:
		users := make([]*uuid.UUID, n)
		for i := range users {
			id := userID(sp.Seed, sp.Pool.Group, i)
			users[i] = &id
		}
		var app *uuid.UUID
		if sp.Op == opRevokeUserApp {
			app = &sp.AppID
		}
		do = func(ctx context.Context, i int) (int64, error) {
			query, args := store.RevokeBulkStatement(sc, store.Bulk{UserID: users[i], ApplicationID: app}, info)
			return revoke(ctx, query, args)
		}
	case opRevokeApp:
		do = func(ctx context.Context, i int) (int64, error) {
			app := sp.appFor(i)
			query, args := store.RevokeBulkStatement(sc, store.Bulk{ApplicationID: &app}, info)
			return revoke(ctx, query, args)
		}
	case opImport:
		batches, err := importBatches(sp)
		if err != nil {
			closeFn()
			return nil, nil, nil, err
		}
		if len(batches) < n {
			closeFn()
			return nil, nil, nil, fmt.Errorf("import: %d batches, %d asked for", len(batches), n)
		}
		rows := make([][]store.RefreshToken, n)
		for i := range rows {
			rows[i] = batches[i].storeRows(sp.Import)
		}
		do = func(ctx context.Context, i int) (int64, error) {
			return 0, store.InsertTokens(ctx, db, rows[i])
		}
		units = func(i int) int { return len(batches[i].tokens) }
	default:
		closeFn()
		return nil, nil, nil, fmt.Errorf("unknown operation %q", sp.Op)
	}
	return do, units, closeFn, nil
}

func (sp runSpec) appFor(i int) uuid.UUID {
	if i < sp.Warmup {
		return sp.WarmupAppID
	}
	return sp.AppID
}

type importToken struct {
	value string
	user  uuid.UUID
	app   uuid.UUID
}

type importBatch struct{ tokens []importToken }

// importBatches lays the pools' tokens end to end and cuts them into batches.
func importBatches(sp runSpec) ([]importBatch, error) {
	im := sp.Import
	if im == nil || im.BatchSize < 1 {
		return nil, errors.New("import: no pools or batch size")
	}
	var out []importBatch
	var cur importBatch
	for _, p := range im.Pools {
		for i := 0; i < p.Size; i++ {
			cur.tokens = append(cur.tokens, importToken{value: tokenValue(sp.Seed, p.Name, i), user: p.owner(sp.Seed, i), app: p.App})
			if len(cur.tokens) == im.BatchSize {
				out = append(out, cur)
				cur = importBatch{}
			}
		}
	}
	if len(cur.tokens) > 0 {
		out = append(out, cur)
	}
	return out, nil
}

func (b importBatch) httpBody(start int64) []byte {
	buf := make([]byte, 0, len(b.tokens)*170)
	buf = append(buf, `{"refreshTokens":[`...)
	for i, t := range b.tokens {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"token":"`...)
		buf = append(buf, t.value...) // URL-safe base64: nothing to escape
		buf = append(buf, `","userId":"`...)
		buf = append(buf, t.user.String()...)
		buf = append(buf, `","applicationId":"`...)
		buf = append(buf, t.app.String()...)
		buf = append(buf, `","startInstant":`...)
		buf = strconv.AppendInt(buf, start, 10)
		buf = append(buf, '}')
	}
	return append(buf, "]}"...)
}

// storeRows are the rows the server's import builds for the batch (impl/import.go):
// a fresh id, the application's tenant, the value's SHA-256, insertInstant =
// startInstant (none is given), the expiry of the default lifetime, and no
// metaData.
func (b importBatch) storeRows(im *importSpec) []store.RefreshToken {
	rows := make([]store.RefreshToken, len(b.tokens))
	for i, t := range b.tokens {
		rows[i] = store.RefreshToken{
			ID:            uuid.New(),
			TenantID:      im.TenantID,
			UserID:        t.user,
			ApplicationID: t.app,
			TokenHash:     tokenHash(t.value),
			StartInstant:  im.StartInstant,
			InsertInstant: im.StartInstant,
			ExpiresAt:     im.ExpiresAt,
		}
	}
	return rows
}

// prepareRawValidate runs the statement the server's validation runs after the
// signature check: whether the access token's session is live.
func prepareRawValidate(sp runSpec) (doFunc, func(int) int, func(), error) {
	type session struct{ tenant, id uuid.UUID }
	sessions := make([]session, len(sp.Bearers))
	for i, b := range sp.Bearers {
		parts := strings.Split(b, ".")
		if len(parts) != 3 {
			return nil, nil, nil, errors.New("validate: an access token is not a JWT")
		}
		raw, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return nil, nil, nil, err
		}
		var claims struct{ Tid, Sid uuid.UUID }
		if err := json.Unmarshal(raw, &claims); err != nil {
			return nil, nil, nil, err
		}
		sessions[i] = session{claims.Tid, claims.Sid}
	}
	if len(sessions) == 0 {
		return nil, nil, nil, errors.New("validate: no access tokens")
	}
	db, err := store.OpenDB(sp.DSN)
	if err != nil {
		return nil, nil, nil, err
	}
	db.SetMaxOpenConns(sp.Concurrency)
	db.SetMaxIdleConns(sp.Concurrency)
	do := func(ctx context.Context, i int) (int64, error) {
		s := sessions[i%len(sessions)]
		query, args := store.SessionLiveStatement(s.tenant, s.id)
		var live bool
		if err := db.QueryRowContext(ctx, query, args...).Scan(&live); err != nil {
			return 0, err
		}
		if !live {
			return 0, errors.New("validate: a session is not live")
		}
		return 0, nil
	}
	return do, nil, func() { db.Close() }, nil
}

// prepareRawExchange runs the server's exchange statement for the default
// application configuration (reusable, fixed expiry): the same function call,
// without HTTP, validation, JSON or signing, connected as the store connects.
func prepareRawExchange(sp runSpec, n int) (doFunc, func(int) int, func(), error) {
	if sp.Pool.Size < 1 {
		return nil, nil, nil, errors.New("exchange: empty pool")
	}
	db, err := store.OpenDB(sp.DSN)
	if err != nil {
		return nil, nil, nil, err
	}
	// One connection per client, as for the other raw runs.
	db.SetMaxOpenConns(sp.Concurrency)
	db.SetMaxIdleConns(sp.Concurrency)
	hashes := make([][]byte, sp.Pool.Size)
	for i := range hashes {
		hashes[i] = tokenHash(tokenValue(sp.Seed, sp.Pool.Name, i))
	}
	info := []byte(sp.EventInfo)
	do := func(ctx context.Context, i int) (int64, error) {
		h := hashes[i%len(hashes)]
		// The next value's hash is never used for a reusable token; any will do.
		query, args := store.ExchangeStatement(store.Exchange{Hash: h, NextHash: h, Now: store.NowMillis(),
			Address: "127.0.0.1", Info: info})
		var outcome string
		if err := db.QueryRowContext(ctx, "SELECT outcome FROM ("+query+") x", args...).Scan(&outcome); err != nil {
			return 0, err
		}
		if outcome != store.ExchangeOK {
			return 0, fmt.Errorf("exchange: %s", outcome)
		}
		return 0, nil
	}
	return do, nil, func() { db.Close() }, nil
}
