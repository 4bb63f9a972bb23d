package impl_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"refreshd/impl"
	"refreshd/impl/store"
	"refreshd/internal/testserver"
)

// The life of a session around its revocation: stable ids across rotation,
// grace without forks, reuse detection, logout, self-revocation with the
// access token, form bodies, events on hard delete, and the exchange's cookies
// and bookkeeping.

// oneTimeUse is an application configuration with one-time-use tokens.
func oneTimeUse(graceSeconds int) map[string]any {
	return map[string]any{"refreshTokenUsagePolicy": "OneTimeUse",
		"refreshTokenOneTimeUseConfiguration": map[string]any{"gracePeriodInSeconds": graceSeconds}}
}

// tokenView is a token as GET /api/jwt/refresh/{id} shows it.
type tokenView struct {
	ID            string `json:"id"`
	InsertInstant int64  `json:"insertInstant"`
	StartInstant  int64  `json:"startInstant"`
	MetaData      struct {
		Device struct {
			Name                string `json:"name"`
			LastAccessedAddress string `json:"lastAccessedAddress"`
			LastAccessedInstant int64  `json:"lastAccessedInstant"`
		} `json:"device"`
	} `json:"metaData"`
}

func (s *testServer) token(id string) (tokenView, int) {
	s.t.Helper()
	resp := s.do(req{method: "GET", path: "/api/jwt/refresh/" + id})
	var out struct {
		RefreshToken tokenView `json:"refreshToken"`
	}
	if resp.Status == 200 {
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			s.t.Fatalf("decode token: %v", err)
		}
	}
	return out.RefreshToken, resp.Status
}

// claimsOf decodes an access token's claims without verifying it.
func claimsOf(t *testing.T, token string) jwt.MapClaims {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
		t.Fatalf("access token: %v", err)
	}
	return claims
}

// revokeEvents lists the jwt.refresh-token.revoke events recorded for a user.
func (s *testServer) revokeEvents(user uuid.UUID) []map[string]any {
	s.t.Helper()
	resp := s.expect(req{method: "GET", path: "/api/event?type=jwt.refresh-token.revoke&userId=" + user.String()}, 200)
	var list struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(resp.Body, &list); err != nil {
		s.t.Fatalf("decode events: %v", err)
	}
	return list.Events
}

// tenantWith creates a tenant with a JWT configuration; apps and users made with
// inTenant land in it.
func (s *testServer) tenantWith(cfg map[string]any) uuid.UUID {
	s.t.Helper()
	id := uuid.New()
	s.expect(req{method: "POST", path: "/api/tenant/" + id.String(),
		body: map[string]any{"tenant": map[string]any{"name": "tenant " + id.String(), "jwtConfiguration": cfg}}}, 200)
	return id
}

func inTenant(tenant uuid.UUID) map[string]string {
	return map[string]string{"X-FusionAuth-TenantId": tenant.String()}
}

// sessionIn makes a user and an application (with cfg) in tenant, and imports
// one token with value for them.
func (s *testServer) sessionIn(tenant uuid.UUID, cfg map[string]any, value string) (user, app uuid.UUID) {
	s.t.Helper()
	user, app = uuid.New(), uuid.New()
	h := inTenant(tenant)
	cfg["enabled"] = true
	s.expect(req{method: "POST", path: "/api/application/" + app.String(), header: h,
		body: map[string]any{"application": map[string]any{"name": "app " + app.String(), "jwtConfiguration": cfg}}}, 200)
	s.expect(req{method: "POST", path: "/api/user/" + user.String(), header: h,
		body: map[string]any{"user": map[string]any{"email": user.String() + "@example.com"}}}, 200)
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", header: h, body: map[string]any{"refreshTokens": []map[string]any{
		{"token": value, "userId": user, "applicationId": app, "startInstant": nowMillis() - 60_000}}}}, 200)
	return user, app
}

func TestRotationKeepsTheSession(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 0, 0)
	app := s.appWith(oneTimeUse(0))
	s.importToken(w.users[0], app, "login-value", nowMillis()-60_000)
	ids := s.tokenIDs(w.users[0])
	loginID := ids[0]
	before, _ := s.token(loginID)

	value := "login-value"
	for i := 0; i < 3; i++ {
		out := s.mustExchange(value)
		if out.RefreshTokenID != loginID {
			t.Fatalf("rotation %d: refreshTokenId %s, want the id from login %s", i+1, out.RefreshTokenID, loginID)
		}
		if sid := claimsOf(t, out.Token)["sid"]; sid != loginID {
			t.Fatalf("rotation %d: sid %v, want %s", i+1, sid, loginID)
		}
		if out.RefreshToken == value {
			t.Fatalf("rotation %d: the value did not change", i+1)
		}
		s.mustRefuse(value)
		value = out.RefreshToken
	}
	after, status := s.token(loginID)
	if status != 200 || after.InsertInstant != before.InsertInstant {
		t.Fatalf("after rotations: status %d, insertInstant %d, want 200 and %d", status, after.InsertInstant, before.InsertInstant)
	}
	if n := len(s.tokenIDs(w.users[0])); n != 1 {
		t.Fatalf("tokens after three rotations: %d, want 1", n)
	}
	// The id learnt at login revokes the session after any number of rotations.
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + loginID}, 200)
	s.mustRefuse(value)
	// The values it rotated away are forgotten by the reaper.
	if _, err := reapOnce(s); err != nil {
		t.Fatal(err)
	}
	var history int
	if err := s.Store.DB().Get(&history, `SELECT count(*) FROM refresh_token_history`); err != nil || history != 0 {
		t.Fatalf("remembered values after the revocation and a reaping: %d (%v), want 0", history, err)
	}
}

func TestGraceAnswersTheCurrentValue(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 0, 0)
	app := s.appWith(oneTimeUse(60))
	s.importToken(w.users[0], app, "graceful", nowMillis()-60_000)
	first := s.mustExchange("graceful")

	t.Run("concurrent reuses within grace get the same current value", func(t *testing.T) {
		s.t = t
		const n = 8
		got := make([]exchanged, n)
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				resp := s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": "graceful"}})
				if resp.Status != 200 {
					t.Errorf("grace reuse %d: status %d: %s", i, resp.Status, resp.Body)
					return
				}
				_ = json.Unmarshal(resp.Body, &got[i])
			}(i)
		}
		wg.Wait()
		for i, g := range got {
			if g.RefreshToken != first.RefreshToken || g.RefreshTokenID != first.RefreshTokenID {
				t.Fatalf("grace reuse %d answered %q, want the current %q", i, g.RefreshToken, first.RefreshToken)
			}
		}
		if n := len(s.tokenIDs(w.users[0])); n != 1 {
			t.Fatalf("tokens after grace reuses: %d, want 1", n)
		}
	})
	t.Run("the current value rotates once more and the older value is then retired", func(t *testing.T) {
		s.t = t
		second := s.mustExchange(first.RefreshToken)
		if second.RefreshToken == first.RefreshToken {
			t.Fatal("the current value did not rotate")
		}
		s.mustRefuse("graceful") // two generations back: not the previous value any more
		again := s.mustExchange(first.RefreshToken)
		if again.RefreshToken != second.RefreshToken {
			t.Fatalf("grace reuse of the previous value answered %q, want %q", again.RefreshToken, second.RefreshToken)
		}
	})
}

func TestReuseDetection(t *testing.T) {
	s := newServer(t)
	detecting := s.tenantWith(map[string]any{"refreshTokenRevocationPolicy": map[string]any{"onOneTimeTokenReuse": true}})
	lenient := s.tenantWith(map[string]any{})

	t.Run("a rotated-away value after grace revokes the session, with an event", func(t *testing.T) {
		s.t = t
		// The application's copy says false, as FusionAuth's Go client always sends it.
		cfg := oneTimeUse(0)
		cfg["refreshTokenRevocationPolicy"] = map[string]any{"onOneTimeTokenReuse": false}
		user, _ := s.sessionIn(detecting, cfg, "stolen")
		next := s.mustExchange("stolen")
		s.mustRefuse("stolen") // the thief comes back with the old value
		if _, status := s.token(next.RefreshTokenID); status != 404 {
			t.Fatalf("session after reuse: GET by id %d, want 404", status)
		}
		s.mustRefuse(next.RefreshToken) // the legitimate holder's value died with the session
		events := s.revokeEvents(user)
		if len(events) != 1 {
			t.Fatalf("revoke events: %d, want 1: %v", len(events), events)
		}
		rt, _ := events[0]["refreshToken"].(map[string]any)
		if rt["id"] != next.RefreshTokenID || rt["token"] != nil {
			t.Fatalf("revoke event refreshToken: %v, want id %s and no value", rt, next.RefreshTokenID)
		}
	})
	t.Run("reuse after the grace period ended", func(t *testing.T) {
		s.t = t
		_, _ = s.sessionIn(detecting, oneTimeUse(60), "late")
		next := s.mustExchange("late")
		if _, err := s.Store.DB().Exec(`UPDATE refresh_token_history SET grace_until = $1
			WHERE token_id = $2`, nowMillis()-1, next.RefreshTokenID); err != nil {
			t.Fatal(err)
		}
		s.mustRefuse("late")
		s.mustRefuse(next.RefreshToken)
	})
	t.Run("an older generation is a reuse even within grace", func(t *testing.T) {
		s.t = t
		_, _ = s.sessionIn(detecting, oneTimeUse(60), "gen0")
		g1 := s.mustExchange("gen0")
		g2 := s.mustExchange(g1.RefreshToken)
		s.mustRefuse("gen0")
		s.mustRefuse(g2.RefreshToken)
	})
	t.Run("without the tenant's policy the value is refused and the session lives", func(t *testing.T) {
		s.t = t
		cfg := oneTimeUse(0) // the application's copy cannot switch it on either
		cfg["refreshTokenRevocationPolicy"] = map[string]any{"onOneTimeTokenReuse": true}
		user, _ := s.sessionIn(lenient, cfg, "reused")
		next := s.mustExchange("reused")
		s.mustRefuse("reused")
		s.mustExchange(next.RefreshToken)
		if events := s.revokeEvents(user); len(events) != 0 {
			t.Fatalf("revoke events: %d, want 0", len(events))
		}
	})
	t.Run("remembered values are bounded", func(t *testing.T) {
		s.t = t
		_, _ = s.sessionIn(lenient, oneTimeUse(0), "busy")
		value, id := "busy", ""
		for i := 0; i < store.HistoryGenerations+8; i++ {
			out := s.mustExchange(value)
			value, id = out.RefreshToken, out.RefreshTokenID
		}
		var n int
		if err := s.Store.DB().Get(&n, `SELECT count(*) FROM refresh_token_history WHERE token_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		if n != store.HistoryGenerations {
			t.Fatalf("remembered values: %d, want %d", n, store.HistoryGenerations)
		}
	})
}

func TestLogout(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 2)
	u0, u1 := w.users[0], w.users[1]
	val := func(u uuid.UUID, a, k int) string { return w.tokens[pair{u, w.apps[a]}][k] }
	logout := func(r req) response {
		s.t.Helper()
		r.method, r.noKey = "POST", true
		if r.path == "" {
			r.path = "/api/logout"
		}
		resp := s.expect(r, 200)
		if len(resp.Body) != 0 {
			s.t.Fatalf("logout answered a body: %s", resp.Body)
		}
		return resp
	}

	t.Run("by query parameter, clearing the cookies", func(t *testing.T) {
		s.t = t
		resp := logout(req{path: "/api/logout?global=false&refreshToken=" + url.QueryEscape(val(u0, 0, 0))})
		s.mustRefuse(val(u0, 0, 0))
		s.mustExchange(val(u0, 0, 1))
		cleared := map[string]bool{}
		for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
			if c.MaxAge < 0 && c.Value == "" && c.HttpOnly {
				cleared[c.Name] = true
			}
		}
		if !cleared["access_token"] || !cleared["refresh_token"] {
			t.Fatalf("cookies cleared: %v, want access_token and refresh_token (Set-Cookie: %q)", cleared, resp.Header.Values("Set-Cookie"))
		}
	})
	t.Run("by body with eventInfo", func(t *testing.T) {
		s.t = t
		logout(req{body: map[string]any{"refreshToken": val(u0, 0, 1), "eventInfo": map[string]any{"deviceName": "kiosk"}}})
		s.mustRefuse(val(u0, 0, 1))
		events := s.revokeEvents(u0)
		info, _ := events[len(events)-1]["info"].(map[string]any)
		if info["deviceName"] != "kiosk" {
			t.Fatalf("last revoke event info: %v, want deviceName kiosk", info)
		}
	})
	t.Run("by cookie", func(t *testing.T) {
		s.t = t
		logout(req{header: map[string]string{"Cookie": "refresh_token=" + val(u0, 1, 0)}})
		s.mustRefuse(val(u0, 1, 0))
		s.mustExchange(val(u0, 1, 1))
	})
	t.Run("global revokes every token of the user", func(t *testing.T) {
		s.t = t
		logout(req{body: map[string]any{"refreshToken": val(u1, 0, 0), "global": true}})
		for a := 0; a < 2; a++ {
			for k := 0; k < 2; k++ {
				s.mustRefuse(val(u1, a, k))
			}
		}
		s.mustExchange(val(u0, 1, 1))
	})
	t.Run("unknown, absent and null tokens still answer 200", func(t *testing.T) {
		s.t = t
		logout(req{path: "/api/logout?refreshToken=never-issued"})
		logout(req{})
		logout(req{path: "/api/logout?refreshToken=null&global=true"})
		s.mustExchange(val(u0, 1, 1))
	})
	t.Run("malformed global is a 400", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "POST", path: "/api/logout?global=banana", noKey: true}, 400, "global:[couldNotConvert]global")
	})
	t.Run("a value rotated away still ends its session", func(t *testing.T) {
		s.t = t
		app := s.appWith(oneTimeUse(0))
		s.importToken(u0, app, "lost-answer", nowMillis()-60_000)
		next := s.mustExchange("lost-answer") // the client never saw this answer
		logout(req{body: map[string]any{"refreshToken": "lost-answer"}})
		s.mustRefuse(next.RefreshToken)
	})
}

// accessTokenFor exchanges a fresh token of user for app and returns the access token.
func (s *testServer) accessTokenFor(user, app uuid.UUID) string {
	s.t.Helper()
	v := "at-source-" + uuid.NewString()
	s.importToken(user, app, v, nowMillis()-60_000)
	return s.mustExchange(v).Token
}

func TestSelfRevocation(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 1, 2)
	me, other, app := w.users[0], w.users[1], w.apps[0]
	mine := w.tokens[pair{me, app}]
	theirs := w.tokens[pair{other, app}]
	rs := s.appWith(map[string]any{"accessTokenSigningAlgorithm": "RS256"})
	bearer := func(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }
	hs := s.accessTokenFor(me, app) // HS256, the default
	rsTok := s.accessTokenFor(me, rs)

	t.Run("own token by value with the Bearer access token", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + url.QueryEscape(mine[0]), header: bearer(hs)}, 200)
		s.mustRefuse(mine[0])
	})
	t.Run("another user's token is not found", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + url.QueryEscape(theirs[0]), header: bearer(rsTok)}, 404)
		s.mustExchange(theirs[0])
	})
	t.Run("by id, own and another's, through the access_token cookie", func(t *testing.T) {
		s.t = t
		cookie := map[string]string{"Authorization": "", "Cookie": "access_token=" + rsTok}
		theirID := s.tokenIDs(other)[0]
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + theirID, header: cookie}, 404)
		myIDs := s.tokenIDs(me)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + myIDs[len(myIDs)-1], header: cookie}, 200)
	})
	t.Run("bulk forms and other users are refused", func(t *testing.T) {
		s.t = t
		before := s.remaining()
		for _, path := range []string{
			"/api/jwt/refresh?userId=" + me.String(),
			"/api/jwt/refresh?applicationId=" + app.String(),
			"/api/jwt/refresh?userId=" + me.String() + "&applicationId=" + app.String(),
			"/api/jwt/refresh?token=" + url.QueryEscape(theirs[1]) + "&userId=" + other.String(),
		} {
			s.expect(req{method: "DELETE", path: path, header: bearer(hs)}, 401)
		}
		if after := s.remaining(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("tokens changed: %v → %v", before, after)
		}
	})
	t.Run("tokens that do not verify are refused", func(t *testing.T) {
		s.t = t
		parts := strings.Split(hs, ".")
		claims := claimsOf(t, hs)
		claims["sub"] = other.String()
		forgedClaims, _ := json.Marshal(claims)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedClaims) + "." + parts[2]
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"`+fmt.Sprint(jwtHeader(t, hs)["kid"])+`"}`)) +
			"." + parts[1] + "."
		var secret []byte
		if err := s.Store.DB().Get(&secret, `SELECT secret FROM signing_keys WHERE id = $1`, jwtHeader(t, hs)["kid"]); err != nil {
			t.Fatal(err)
		}
		expiredClaims := jwt.MapClaims{}
		for k, v := range claimsOf(t, hs) {
			expiredClaims[k] = v
		}
		expiredClaims["exp"] = time.Now().Add(-time.Minute).Unix()
		expiredTok := jwt.NewWithClaims(jwt.SigningMethodHS256, expiredClaims)
		expiredTok.Header["kid"] = jwtHeader(t, hs)["kid"]
		expired, err := expiredTok.SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		for name, tok := range map[string]string{"forged subject": forged, "alg none": none, "expired": expired,
			"garbage": "not.a.jwt", "an API key as bearer": s.Key} {
			t.Run(name, func(t *testing.T) {
				s.t = t
				s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + url.QueryEscape(theirs[1]), header: bearer(tok)}, 401)
			})
		}
		s.t = t
		s.mustExchange(theirs[1])
	})
	t.Run("a tenant header naming another tenant is refused", func(t *testing.T) {
		s.t = t
		other := s.tenantWith(map[string]any{})
		h := bearer(hs)
		h["X-FusionAuth-TenantId"] = other.String()
		s.importToken(me, app, "still-mine", nowMillis()-60_000)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=still-mine", header: h}, 401)
		s.mustExchange("still-mine")
	})
}

func jwtHeader(t *testing.T, token string) map[string]any {
	t.Helper()
	p, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Header
}

func TestFormEncodedRevoke(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 1, 2)
	u0, u1, app := w.users[0], w.users[1], w.apps[0]
	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh", header: form,
		body: "token=" + url.QueryEscape(w.tokens[pair{u0, app}][0])}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh", header: form,
		body: "token=" + url.QueryEscape(w.tokens[pair{u0, app}][0])}, 404)
	// A form field overrides the query parameter of the same name.
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u0.String(), header: form,
		body: "userId=" + u1.String()}, 200)
	s.expectRemaining(w, func(p pair) int {
		switch p.user {
		case u0:
			return 1
		case u1:
			return 2
		}
		return 0
	})
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh", header: form, body: "userId=" + uuid.NewString()}, 400,
		"userId:[invalid]userId")
}

func TestHardDeleteRecordsRevokeEvents(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 1)
	s.expect(req{method: "DELETE", path: "/api/user/" + w.users[0].String() + "?hardDelete=true"}, 200)
	events := s.revokeEvents(w.users[0])
	if len(events) != 1 {
		t.Fatalf("events after the user's delete: %d, want 1", len(events))
	}
	ttl, _ := events[0]["applicationTimeToLiveInSeconds"].(map[string]any)
	if events[0]["userId"] != w.users[0].String() || events[0]["applicationId"] != nil || len(ttl) != 2 {
		t.Fatalf("user delete event: %v, want the userId form with both applications", events[0])
	}
	// A user without live tokens: no event, as a revocation by user records none.
	idle := uuid.New()
	s.createUser(idle)
	s.expect(req{method: "DELETE", path: "/api/user/" + idle.String() + "?hardDelete=true"}, 200)
	if n := len(s.revokeEvents(idle)); n != 0 {
		t.Fatalf("events after deleting a user without tokens: %d, want 0", n)
	}
	s.expect(req{method: "DELETE", path: "/api/application/" + w.apps[1].String() + "?hardDelete=true"}, 200)
	resp := s.expect(req{method: "GET", path: "/api/event?type=jwt.refresh-token.revoke&applicationId=" + w.apps[1].String()}, 200)
	var list struct {
		Events []map[string]any `json:"events"`
	}
	_ = json.Unmarshal(resp.Body, &list)
	if len(list.Events) != 1 || list.Events[0]["userId"] != nil {
		t.Fatalf("application delete events: %v, want one of the applicationId form", list.Events)
	}
	s.mustRefuse(w.tokens[pair{w.users[1], w.apps[1]}][0])
	s.mustExchange(w.tokens[pair{w.users[1], w.apps[0]}][0])
	s.expect(req{method: "DELETE", path: "/api/user/" + uuid.NewString() + "?hardDelete=true"}, 404)
}

func TestExchangeBookkeeping(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	user, app := w.users[0], w.apps[0]

	t.Run("import stamps insertInstant with now", func(t *testing.T) {
		s.t = t
		before := nowMillis()
		s.importToken(user, app, "stamped", before-3_600_000)
		tok, _ := s.token(s.tokenIDs(user)[0])
		if tok.InsertInstant < before || tok.InsertInstant > nowMillis() {
			t.Fatalf("insertInstant %d, want the time of import (≥ %d)", tok.InsertInstant, before)
		}
	})
	t.Run("each exchange records when and from where", func(t *testing.T) {
		s.t = t
		before := nowMillis()
		out := s.mustExchange("stamped")
		tok, _ := s.token(out.RefreshTokenID)
		if tok.MetaData.Device.LastAccessedInstant < before || tok.MetaData.Device.LastAccessedAddress != "127.0.0.1" {
			t.Fatalf("device after an exchange: %+v, want lastAccessedInstant ≥ %d from 127.0.0.1", tok.MetaData.Device, before)
		}
	})
	t.Run("the cookie wins over the body", func(t *testing.T) {
		s.t = t
		s.importToken(user, app, "in-cookie", nowMillis()-60_000)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=stamped"}, 200)
		resp := s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": "stamped"},
			header: map[string]string{"Cookie": "refresh_token=in-cookie"}})
		if resp.Status != 200 {
			t.Fatalf("body with a revoked token, cookie with a live one: %d %s, want 200", resp.Status, resp.Body)
		}
	})
	t.Run("the answer sets the session cookies", func(t *testing.T) {
		s.t = t
		resp := s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": "in-cookie"}})
		var out exchanged
		_ = json.Unmarshal(resp.Body, &out)
		cookies := map[string]*http.Cookie{}
		for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
			cookies[c.Name] = c
		}
		at, rt := cookies["access_token"], cookies["refresh_token"]
		if at == nil || rt == nil {
			t.Fatalf("cookies: %q, want access_token and refresh_token", resp.Header.Values("Set-Cookie"))
		}
		if at.Value != out.Token || rt.Value != out.RefreshToken || !at.HttpOnly || !rt.HttpOnly || at.Secure ||
			at.SameSite != http.SameSiteStrictMode || at.MaxAge != 3600 || rt.MaxAge < 43190*60 || rt.MaxAge > 43200*60 {
			t.Fatalf("cookies: %q", resp.Header.Values("Set-Cookie"))
		}
	})
}

// TestSecureCookiesBehindATrustedProxy: cookies are Secure when a trusted proxy
// says the request came over HTTPS, and only then.
func TestSecureCookiesBehindATrustedProxy(t *testing.T) {
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	srv := testserver.StartWith(t, impl.Config{TrustedProxies: []*net.IPNet{loopback},
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	s := &testServer{t: t, URL: srv.URL, Key: srv.Key, Store: srv.Store}
	w := s.seed(1, 1, 2)
	for i, proto := range []string{"https", "http"} {
		resp := s.do(req{method: "POST", path: "/api/logout", noKey: true, header: map[string]string{"X-Forwarded-Proto": proto},
			body: map[string]any{"refreshToken": w.tokens[pair{w.users[0], w.apps[0]}][i]}})
		for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
			if c.Secure != (proto == "https") {
				t.Fatalf("X-Forwarded-Proto %s: cookie %s Secure=%v", proto, c.Name, c.Secure)
			}
		}
	}
}

// TestExchangeOfADeletedUsersToken: the token was valid when the exchange found
// it, and its user was deleted before the exchange could lock it: 404.
func TestExchangeOfADeletedUsersToken(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 1)
	value := w.tokens[pair{w.users[0], w.apps[0]}][0]
	ctx := context.Background()
	tx, err := s.Store.DB().BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM users WHERE id = $1`, w.users[0]); err != nil {
		t.Fatal(err)
	}
	done := make(chan response, 1)
	go func() {
		done <- s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": value}})
	}()
	// Wait until the exchange waits for the user's row lock, then let the delete commit.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		_ = s.Store.DB().Get(&waiting, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`)
		if waiting > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exchange never waited for the user's lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if resp := <-done; resp.Status != 404 || len(resp.Body) != 0 {
		t.Fatalf("exchange of a deleted user's token: %d %q, want 404 empty", resp.Status, resp.Body)
	}
}

func TestDeleteTenant(t *testing.T) {
	s := newServer(t)
	tenant := s.tenantWith(map[string]any{})
	user, _ := s.sessionIn(tenant, map[string]any{}, "tenant-token")
	s.mustExchange("tenant-token") // an event of the tenant
	other := s.tenantWith(map[string]any{})
	s.sessionIn(other, map[string]any{}, "other-tenant-token")
	s.mustExchange("other-tenant-token")
	eventsOf := func(id uuid.UUID) int {
		var n int
		if err := s.Store.DB().Get(&n, `SELECT count(*) FROM events WHERE tenant_id = $1`, id); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if eventsOf(tenant) == 0 || eventsOf(other) == 0 {
		t.Fatal("the exchanges recorded no events")
	}
	s.expect(req{method: "DELETE", path: "/api/tenant/" + tenant.String()}, 200)
	s.mustRefuse("tenant-token")
	if n := eventsOf(tenant); n != 0 {
		t.Errorf("%d events of the deleted tenant remain", n)
	}
	if eventsOf(other) == 0 {
		t.Error("deleting one tenant removed another's events")
	}
	s.mustExchange("other-tenant-token")
	s.expect(req{method: "GET", path: "/api/user/" + user.String()}, 404)
	s.expect(req{method: "DELETE", path: "/api/tenant/" + tenant.String()}, 404)
	var def uuid.UUID
	if err := s.Store.DB().Get(&def, `SELECT id FROM tenants WHERE is_default`); err != nil {
		t.Fatal(err)
	}
	s.expect(req{method: "DELETE", path: "/api/tenant/" + def.String()}, 400, ":[invalid]tenantId")
}
