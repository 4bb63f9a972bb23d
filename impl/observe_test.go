package impl_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/impl"
	"refreshd/internal/testserver"
)

// lockedBuffer collects log output written from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("a log line is not JSON: %v: %s", err, sc.Bytes())
		}
		out = append(out, m)
	}
	return out
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A request's id is the caller's when usable, else a new one; the answer echoes
// it, and every line logged for the request, its one request line included,
// names it. Lines name the route template, never the query that carried a token.
func TestRequestIDInEveryLine(t *testing.T) {
	var logs lockedBuffer
	log := slog.New(impl.WithRequestID(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	srv := testserver.Start(t, log)
	s := &testServer{t: t, URL: srv.URL, Key: srv.Key, Store: srv.Store}

	const secret = "a-token-value-that-must-not-be-logged"
	given := "trace-" + uuid.NewString()
	resp := s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + secret, header: map[string]string{impl.RequestIDHeader: given}}, 404)
	if got := resp.Header.Get(impl.RequestIDHeader); got != given {
		t.Errorf("X-Request-Id answered %q, want the one sent, %q", got, given)
	}
	made := s.expect(req{method: "GET", path: "/api/jwt/refresh?userId=not-a-uuid"}, 400, "userId:[couldNotConvert]userId").Header.Get(impl.RequestIDHeader)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(made) {
		t.Errorf("a request without an id was given %q", made)
	}
	forged := s.do(req{method: "GET", path: "/api/status", header: map[string]string{impl.RequestIDHeader: "x\" level=ERROR msg=forged"}})
	if got := forged.Header.Get(impl.RequestIDHeader); strings.Contains(got, " ") || got == "" {
		t.Errorf("an unusable id was kept: %q", got)
	}

	if strings.Contains(logs.String(), secret) {
		t.Fatalf("a token value was logged:\n%s", logs.String())
	}
	byID := map[string][]map[string]any{}
	for _, line := range logs.lines(t) {
		id, _ := line["request_id"].(string)
		byID[id] = append(byID[id], line)
	}
	for _, id := range []string{given, made} {
		var requestLines int
		for _, line := range byID[id] {
			if line["msg"] == "request" {
				requestLines++
				if line["level"] != "INFO" || line["route"] == "" || line["status"] == nil {
					t.Errorf("request line %v lacks its level, route or status", line)
				}
			}
		}
		if requestLines != 1 {
			t.Errorf("request %s: %d request lines, want 1; its lines: %v", id, requestLines, byID[id])
		}
	}
	if line := byID[given]; len(line) > 0 && line[len(line)-1]["route"] != "/api/jwt/refresh" {
		t.Errorf("the revoke's request line names route %v, want the template /api/jwt/refresh", line[len(line)-1]["route"])
	}
}

// scrape reads /metrics and returns each sample line's value by its series.
func scrape(t *testing.T, s *testServer) map[string]float64 {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, body)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// /metrics counts requests by route template, revocations by form and the tokens
// they revoked, exchanges by outcome and the webhook backlog, and never shows a
// token or key value.
func TestMetrics(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 2)
	u1, u2, a1 := w.users[0], w.users[1], w.apps[0]
	one := w.tokens[pair{u1, a1}][0]

	s.expect(req{method: "POST", path: "/api/jwt/refresh", body: map[string]any{"refreshToken": one}, noKey: true}, 200)
	s.expect(req{method: "POST", path: "/api/jwt/refresh", body: map[string]any{"refreshToken": "never-issued"}, noKey: true}, 400, "refreshToken:[invalid]refreshToken")
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + one}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + one}, 404)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u2.String()}, 200)
	s.expect(req{method: "POST", path: "/api/webhook", body: map[string]any{"webhook": map[string]any{
		"url": "http://127.0.0.1:9/unreachable", "global": true, "eventsEnabled": map[string]bool{"jwt.refresh-token.revoke": true}}}}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u1.String()}, 200)

	m := scrape(t, s)
	for series, want := range map[string]float64{
		`refreshd_revocations_total{form="token",outcome="revoked"}`:                                          1,
		`refreshd_revocations_total{form="token",outcome="not_found"}`:                                        1,
		`refreshd_revocations_total{form="user",outcome="revoked"}`:                                           2,
		`refreshd_revoked_tokens_total{form="token"}`:                                                         1,
		`refreshd_revoked_tokens_total{form="user"}`:                                                          7, // u2's 4, then u1's remaining 3
		`refreshd_exchanges_total{outcome="issued"}`:                                                          1,
		`refreshd_exchanges_total{outcome="invalid_token"}`:                                                   1,
		`refreshd_http_requests_total{method="DELETE",route="/api/jwt/refresh",status="404"}`:                 1,
		`refreshd_http_request_duration_seconds_count{method="DELETE",route="/api/jwt/refresh",status="200"}`: 3,
	} {
		if got, ok := m[series]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	var backlog bool
	for series, v := range m {
		if strings.HasPrefix(series, "refreshd_webhook_backlog_events{") && v == 1 {
			backlog = true
		}
		if strings.Contains(series, one) || strings.Contains(series, s.Key) {
			t.Errorf("a token or key value in a metric: %s", series)
		}
	}
	if !backlog {
		t.Errorf("no webhook shows the one undelivered event as its backlog")
	}
	if _, ok := m[`go_sql_open_connections{db_name="refreshd"}`]; !ok {
		t.Errorf("the database pool's statistics are missing")
	}
}

// The reaper counts what it deleted.
func TestMetricsCountReaped(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": []map[string]any{{
		"token": "expired-" + uuid.NewString(), "userId": w.users[0], "applicationId": w.apps[0],
		"startInstant": time.Now().Add(-90 * 24 * time.Hour).UnixMilli()}}}}, 200)
	m := impl.NewMetrics(s.Store, nil)
	ctx, cancel := contextWithTimeout(t)
	defer cancel()
	go impl.RunReaper(ctx, s.Store, slog.Default(), m, time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := counterValue(t, m, "refreshd_reaper_deleted_tokens_total"); got == 1 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("refreshd_reaper_deleted_tokens_total never reached 1")
}

func contextWithTimeout(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// counterValue reads one unlabelled series from the metrics' own handler.
func counterValue(t *testing.T, m *impl.Metrics, name string) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return -1
}
