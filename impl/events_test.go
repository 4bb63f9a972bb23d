package impl_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/impl"
)

// receiver is a real HTTP server standing in for a webhook receiver. It verifies
// each delivery's signature and can be told to fail.
type receiver struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu       sync.Mutex
	failNext int // answer 503 to this many more deliveries
	events   []map[string]any
	attempts int
}

func newReceiver(t *testing.T, secret string) *receiver {
	r := &receiver{t: t, secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mac := hmac.New(sha256.New, []byte(r.secret))
		mac.Write(body)
		if got, want := req.Header.Get(impl.SignatureHeader), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
			t.Errorf("signature: got %q, want %q", got, want)
		}
		if req.Header.Get("X-Custom") != "yes" {
			t.Errorf("configured header missing")
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.attempts++
		if r.failNext > 0 {
			r.failNext--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var env struct {
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			t.Errorf("delivery is not {\"event\": …}: %v", err)
		}
		if req.Header.Get(impl.EventIDHeader) != env.Event["id"] {
			t.Errorf("event id header %q, body id %v", req.Header.Get(impl.EventIDHeader), env.Event["id"])
		}
		r.events = append(r.events, env.Event)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) received() []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]any(nil), r.events...)
}

// waitFor waits until n events arrived (or fails after a while).
func (r *receiver) waitFor(n int) []map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := r.received(); len(got) >= n {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("received %d events, want %d", len(r.received()), n)
	return nil
}

func (s *testServer) registerWebhook(url, secret string, events ...string) string {
	s.t.Helper()
	enabled := map[string]bool{}
	for _, e := range events {
		enabled[e] = true
	}
	resp := s.expect(req{method: "POST", path: "/api/webhook", body: map[string]any{"webhook": map[string]any{
		"url": url, "global": true, "eventsEnabled": enabled, "signingSecret": secret,
		"headers": map[string]string{"X-Custom": "yes"}}}}, 200)
	var out struct {
		Webhook struct{ ID, SigningSecret string } `json:"webhook"`
	}
	_ = json.Unmarshal(resp.Body, &out)
	if out.Webhook.SigningSecret != secret {
		s.t.Fatalf("signing secret not returned on create: %s", resp.Body)
	}
	return out.Webhook.ID
}

func startDispatcher(t *testing.T, s *testServer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		impl.RunDispatcher(ctx, s.Store, impl.DispatcherConfig{PollInterval: 10 * time.Millisecond,
			BaseBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// TestRevokeEvents: each revoke form produces exactly the documented event.
func TestRevokeEvents(t *testing.T) {
	s := newServer(t)
	rcv := newReceiver(t, "a-signing-secret-of-some-length")
	s.registerWebhook(rcv.srv.URL, rcv.secret, "jwt.refresh-token.revoke")
	startDispatcher(t, s)
	w := s.seed(2, 2, 1)
	ttlApp := s.appWith(map[string]any{"timeToLiveInSeconds": 120})
	s.importToken(w.users[1], ttlApp, "ttl-token", nowMillis()-60_000)
	u0, u1, a0, a1 := w.users[0].String(), w.users[1].String(), w.apps[0].String(), w.apps[1].String()
	tok := w.tokens[pair{w.users[0], w.apps[0]}][0]

	steps := []struct {
		name   string
		r      req
		status int
		check  func(e map[string]any) // nil: no event expected
	}{
		{"single token with eventInfo", req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{"token": tok,
			"eventInfo": map[string]any{"deviceName": "laptop", "ipAddress": "198.51.100.9"}}}, 200,
			func(e map[string]any) {
				expectFields(t, e, map[string]any{"applicationId": a0, "userId": u0})
				ttls(t, e, map[string]float64{a0: 3600})
				rt, _ := e["refreshToken"].(map[string]any)
				if rt == nil || rt["userId"] != u0 || rt["id"] == nil || rt["token"] != nil {
					t.Errorf("refreshToken: %v", e["refreshToken"])
				}
				info := e["info"].(map[string]any)
				if info["deviceName"] != "laptop" || info["ipAddress"] != "198.51.100.9" {
					t.Errorf("info: %v", info)
				}
			}},
		{"unknown token: no event", req{method: "DELETE", path: "/api/jwt/refresh?token=nothing"}, 404, nil},
		{"user and application, nothing to delete, still an event", req{method: "DELETE",
			path: "/api/jwt/refresh?userId=" + u0 + "&applicationId=" + a0}, 200, func(e map[string]any) {
			expectFields(t, e, map[string]any{"applicationId": a0, "userId": u0})
			ttls(t, e, map[string]float64{a0: 3600})
			if e["info"].(map[string]any)["ipAddress"] != "127.0.0.1" {
				t.Errorf("ipAddress default: %v", e["info"])
			}
		}},
		{"application", req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + a1}, 200, func(e map[string]any) {
			expectFields(t, e, map[string]any{"applicationId": a1, "userId": nil})
			ttls(t, e, map[string]float64{a1: 3600})
		}},
		{"user with tokens in two applications", req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u1}, 200,
			func(e map[string]any) {
				expectFields(t, e, map[string]any{"userId": u1, "applicationId": nil})
				ttls(t, e, map[string]float64{a0: 3600, ttlApp.String(): 120})
			}},
		{"user with nothing left: no event", req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u1}, 200, nil},
		{"unknown user: no event", req{method: "DELETE", path: "/api/jwt/refresh?userId=" + uuid.NewString()}, 400, nil},
	}
	want := 0
	for _, st := range steps {
		s.t = t
		s.do(st.r)
		if st.check != nil {
			want++
		}
	}
	// A by-id revocation, last.
	s.importToken(w.users[0], w.apps[1], "by-id", nowMillis()-60_000)
	id := s.tokenIDs(w.users[0])[0]
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + id}, 200)
	want++
	events := rcv.waitFor(want)
	time.Sleep(100 * time.Millisecond) // nothing more may arrive
	if got := rcv.received(); len(got) != want {
		t.Fatalf("events: got %d, want %d", len(got), want)
	}
	i := 0
	for _, st := range steps {
		if st.check == nil {
			continue
		}
		t.Run(st.name, func(t *testing.T) {
			e := events[i]
			if e["type"] != "jwt.refresh-token.revoke" || e["tenantId"] != s.defaultTenant() || e["id"] == nil || e["createInstant"] == nil {
				t.Errorf("envelope: %v", e)
			}
			st.check(e)
		})
		i++
	}
	last := events[len(events)-1]
	if rt, _ := last["refreshToken"].(map[string]any); rt == nil || rt["id"] != id {
		t.Errorf("by-id event: %v", last)
	}
	// No event anywhere carries a token value.
	var leaks int
	if err := s.Store.DB().Get(&leaks, `SELECT count(*) FROM events WHERE body::text LIKE '%' || $1 || '%'`, tok); err != nil || leaks != 0 {
		t.Fatalf("token value in stored events: %d %v", leaks, err)
	}
}

func expectFields(t *testing.T, e map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		if e[k] != v {
			t.Errorf("%s: got %v, want %v", k, e[k], v)
		}
	}
}

func ttls(t *testing.T, e map[string]any, want map[string]float64) {
	t.Helper()
	got, _ := e["applicationTimeToLiveInSeconds"].(map[string]any)
	if len(got) != len(want) {
		t.Errorf("applicationTimeToLiveInSeconds: got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("applicationTimeToLiveInSeconds[%s]: got %v, want %v", k, got[k], v)
		}
	}
}

// TestDeliveryRetriesInOrder: a receiver that fails three times gets each event
// once, in order, after it recovers.
func TestDeliveryRetriesInOrder(t *testing.T) {
	s := newServer(t)
	rcv := newReceiver(t, "another-secret-value")
	rcv.failNext = 3
	s.registerWebhook(rcv.srv.URL, rcv.secret, "jwt.refresh-token.revoke")
	w := s.seed(3, 1, 1)
	for _, u := range w.users {
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u.String()}, 200)
	}
	startDispatcher(t, s)
	events := rcv.waitFor(3)
	time.Sleep(100 * time.Millisecond)
	if got := rcv.received(); len(got) != 3 {
		t.Fatalf("deliveries: got %d, want 3", len(got))
	}
	for i, u := range w.users {
		if events[i]["userId"] != u.String() {
			t.Errorf("event %d: user %v, want %s (order)", i, events[i]["userId"], u)
		}
	}
	if rcv.attempts != 6 {
		t.Errorf("attempts: got %d, want 6 (3 failures, 3 deliveries)", rcv.attempts)
	}
}

// TestDeliveryAfterRestart: events recorded while no dispatcher runs (the server
// was down) are delivered by the next one; two dispatchers never both deliver.
func TestDeliveryAfterRestartAndWithTwoDispatchers(t *testing.T) {
	s := newServer(t)
	rcv := newReceiver(t, "restart-secret-value")
	s.registerWebhook(rcv.srv.URL, rcv.secret, "jwt.refresh-token.revoke", "jwt.refresh")
	w := s.seed(20, 1, 1)
	stop := startDispatcher(t, s)
	stop() // the "old process" ends before anything is revoked
	for _, u := range w.users {
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u.String()}, 200)
	}
	startDispatcher(t, s)
	startDispatcher(t, s)
	events := rcv.waitFor(20)
	time.Sleep(200 * time.Millisecond)
	seen := map[any]bool{}
	for _, e := range rcv.received() {
		if seen[e["id"]] {
			t.Errorf("event %v delivered twice", e["id"])
		}
		seen[e["id"]] = true
	}
	for i, u := range w.users {
		if events[i]["userId"] != u.String() {
			t.Fatalf("event %d: user %v, want %s", i, events[i]["userId"], u)
		}
	}
}

// TestExchangeEventAndAuditListing: an exchange records jwt.refresh (without token
// values); GET /api/event filters and pages.
func TestExchangeEventAndAuditListing(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 1, 1)
	value := w.tokens[pair{w.users[0], w.apps[0]}][0]
	s.mustExchange(value)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w.users[0].String()}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w.users[1].String()}, 200)

	list := func(query string) (events []map[string]any, next string) {
		resp := s.expect(req{method: "GET", path: "/api/event?" + query}, 200)
		var out struct {
			Events     []map[string]any `json:"events"`
			NextCursor string           `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(resp.Body), value) {
			t.Fatal("an event carries a token value")
		}
		return out.Events, out.NextCursor
	}
	all, _ := list("")
	if len(all) != 3 || all[0]["type"] != "jwt.refresh" || all[0]["refreshTokenId"] == nil {
		t.Fatalf("events: %v", all)
	}
	revokes, _ := list("type=jwt.refresh-token.revoke&userId=" + w.users[1].String())
	if len(revokes) != 1 || revokes[0]["userId"] != w.users[1].String() {
		t.Fatalf("filtered: %v", revokes)
	}
	page1, next := list("limit=2")
	page2, last := list("limit=2&cursor=" + next)
	if len(page1) != 2 || len(page2) != 1 || last != "" || page2[0]["id"] != all[2]["id"] {
		t.Fatalf("paging: %d %d %q", len(page1), len(page2), last)
	}
	none, _ := list(fmt.Sprintf("start=%d", nowMillis()+60_000))
	if len(none) != 0 {
		t.Fatalf("start filter: %v", none)
	}
	s.expect(req{method: "GET", path: "/api/event?type=user.create"}, 400, "type:[couldNotConvert]type")
}

func TestWebhookAPI(t *testing.T) {
	s := newServer(t)
	s.expect(req{method: "POST", path: "/api/webhook", body: map[string]any{"webhook": map[string]any{"url": "ftp://x"}}}, 400,
		"webhook.url:[invalid]webhook.url")
	s.expect(req{method: "POST", path: "/api/webhook", body: map[string]any{"webhook": map[string]any{"url": "http://h",
		"eventsEnabled": map[string]bool{"user.create": true}}}}, 400, "webhook.eventsEnabled:[invalid]webhook.eventsEnabled")
	id := s.registerWebhook("http://127.0.0.1:1/hook", "sixteen-chars-min", "jwt.refresh")
	resp := s.expect(req{method: "GET", path: "/api/webhook/" + id}, 200)
	if strings.Contains(string(resp.Body), "sixteen-chars-min") {
		t.Fatal("GET returned the signing secret")
	}
	s.expect(req{method: "PUT", path: "/api/webhook/" + id, body: map[string]any{"webhook": map[string]any{
		"url": "https://example.com/hook", "readTimeout": 5000}}}, 200)
	resp = s.expect(req{method: "GET", path: "/api/webhook"}, 200)
	if !strings.Contains(string(resp.Body), "https://example.com/hook") {
		t.Fatalf("list after update: %s", resp.Body)
	}
	s.expect(req{method: "DELETE", path: "/api/webhook/" + id}, 200)
	s.expect(req{method: "GET", path: "/api/webhook/" + id}, 404)
}

// TestCallerAddress: an event's ipAddress is the direct peer, unless the peer is
// a configured trusted proxy, whose X-Forwarded-For then names the caller.
func TestCallerAddress(t *testing.T) {
	for _, c := range []struct {
		name    string
		trusted string
		want    string
	}{
		{"untrusted peer: header ignored", "", "127.0.0.1"},
		{"trusted proxy: header believed", "127.0.0.0/8", "203.0.113.5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newServer(t)
			cfg := impl.Config{}
			if c.trusted != "" {
				_, n, _ := net.ParseCIDR(c.trusted)
				cfg.TrustedProxies = []*net.IPNet{n}
			}
			e, err := impl.New(cfg, s.Store)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(e)
			defer srv.Close()
			s.URL = srv.URL
			w := s.seed(1, 1, 1)
			s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w.users[0].String(),
				header: map[string]string{"X-Forwarded-For": "203.0.113.5"}}, 200)
			var ip string
			if err := s.Store.DB().Get(&ip, `SELECT body->'info'->>'ipAddress' FROM events WHERE user_id = $1`, w.users[0]); err != nil {
				t.Fatal(err)
			}
			if ip != c.want {
				t.Fatalf("ipAddress: got %q, want %q", ip, c.want)
			}
		})
	}
}
