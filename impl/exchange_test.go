package impl_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/FusionAuth/go-client/pkg/fusionauth"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

type exchanged struct {
	Token          string `json:"token"`
	RefreshToken   string `json:"refreshToken"`
	RefreshTokenID string `json:"refreshTokenId"`
}

// exchange posts a refresh token and returns the response.
func (s *testServer) exchange(value string) (response, exchanged) {
	s.t.Helper()
	resp := s.do(req{method: "POST", path: "/api/jwt/refresh", body: map[string]any{"refreshToken": value}, noKey: true})
	var out exchanged
	if resp.Status == 200 {
		if err := json.Unmarshal(resp.Body, &out); err != nil {
			s.t.Fatalf("decode exchange: %v: %s", err, resp.Body)
		}
	}
	return resp, out
}

func (s *testServer) mustExchange(value string) exchanged {
	s.t.Helper()
	resp, out := s.exchange(value)
	if resp.Status != 200 {
		s.t.Fatalf("exchange: status %d, want 200: %s", resp.Status, resp.Body)
	}
	return out
}

func (s *testServer) mustRefuse(value string) {
	s.t.Helper()
	resp, _ := s.exchange(value)
	if resp.Status != 400 {
		s.t.Fatalf("exchange: status %d, want 400: %s", resp.Status, resp.Body)
	}
	if got := resp.codes(s.t); len(got) != 1 || got[0] != "refreshToken:[invalid]refreshToken" {
		s.t.Fatalf("exchange codes: %v, want [invalid]refreshToken", got)
	}
}

// appWith creates an application with an enabled jwtConfiguration.
func (s *testServer) appWith(cfg map[string]any) uuid.UUID {
	s.t.Helper()
	id := uuid.New()
	cfg["enabled"] = true
	s.expect(req{method: "POST", path: "/api/application/" + id.String(),
		body: map[string]any{"application": map[string]any{"name": "app " + id.String(), "jwtConfiguration": cfg}}}, 200)
	return id
}

func (s *testServer) importToken(user, app uuid.UUID, value string, start int64) {
	s.t.Helper()
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": []map[string]any{
		{"token": value, "userId": user, "applicationId": app, "startInstant": start}}}}, 200)
}

// jwks fetches the published keys, by kid.
func (s *testServer) jwks() map[string]any {
	s.t.Helper()
	resp := s.expect(req{method: "GET", path: "/.well-known/jwks.json", noKey: true}, 200)
	var set struct {
		Keys []struct{ Kty, Kid, Alg, Use, N, E, Crv, X, Y string } `json:"keys"`
	}
	if err := json.Unmarshal(resp.Body, &set); err != nil {
		s.t.Fatal(err)
	}
	num := func(v string) *big.Int {
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			s.t.Fatalf("jwk number: %v", err)
		}
		return new(big.Int).SetBytes(b)
	}
	out := map[string]any{}
	for _, k := range set.Keys {
		if k.Use != "sig" {
			s.t.Errorf("jwk %s: use %q", k.Kid, k.Use)
		}
		switch k.Kty {
		case "RSA":
			out[k.Kid] = &rsa.PublicKey{N: num(k.N), E: int(num(k.E).Int64())}
		case "EC":
			out[k.Kid] = &ecdsa.PublicKey{Curve: elliptic.P256(), X: num(k.X), Y: num(k.Y)}
		}
	}
	return out
}

// verify checks an access token's signature against the JWKS and its claims.
func (s *testServer) verify(token string, user, app uuid.UUID, sid string, lifetime int64) {
	s.t.Helper()
	keys := s.jwks()
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("kid %q not in jwks", kid)
	}, jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithIssuer("refreshd"), jwt.WithAudience(app.String()))
	if err != nil {
		s.t.Fatalf("access token does not verify: %v", err)
	}
	want := map[string]string{"sub": user.String(), "applicationId": app.String(), "sid": sid}
	for claim, v := range want {
		if claims[claim] != v {
			s.t.Errorf("claim %s: got %v, want %v", claim, claims[claim], v)
		}
	}
	if _, err := uuid.Parse(fmt.Sprint(claims["jti"])); err != nil {
		s.t.Errorf("claim jti: %v", claims["jti"])
	}
	if _, err := uuid.Parse(fmt.Sprint(claims["tid"])); err != nil {
		s.t.Errorf("claim tid: %v", claims["tid"])
	}
	if got := int64(claims["exp"].(float64) - claims["iat"].(float64)); got != lifetime {
		s.t.Errorf("exp - iat: got %d, want %d", got, lifetime)
	}
}

func TestExchange(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 0, 0)
	user := w.users[0]
	start := nowMillis() - 60_000

	for _, alg := range []string{"RS256", "ES256"} {
		t.Run("signed with "+alg+" and verified with the JWKS", func(t *testing.T) {
			s.t = t
			app := s.appWith(map[string]any{"accessTokenSigningAlgorithm": alg, "timeToLiveInSeconds": 600})
			s.importToken(user, app, "rt-"+alg, start)
			out := s.mustExchange("rt-" + alg)
			if out.RefreshToken != "rt-"+alg {
				t.Fatalf("reusable token: got %q back", out.RefreshToken)
			}
			s.verify(out.Token, user, app, out.RefreshTokenID, 600)
			// A shorter lifetime on request; a longer one is refused.
			resp := s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true,
				body: map[string]any{"refreshToken": "rt-" + alg, "timeToLiveInSeconds": 60}})
			var short exchanged
			_ = json.Unmarshal(resp.Body, &short)
			s.verify(short.Token, user, app, out.RefreshTokenID, 60)
			s.expect(req{method: "POST", path: "/api/jwt/refresh", noKey: true,
				body: map[string]any{"refreshToken": "rt-" + alg, "timeToLiveInSeconds": 601}}, 400,
				"timeToLiveInSeconds:[invalid]timeToLiveInSeconds")
		})
	}

	t.Run("HS256 by default, with a kid", func(t *testing.T) {
		s.t = t
		app := s.appWith(map[string]any{})
		s.importToken(user, app, "rt-hs", start)
		out := s.mustExchange("rt-hs")
		parsed, _, err := jwt.NewParser().ParseUnverified(out.Token, jwt.MapClaims{})
		if err != nil || parsed.Method.Alg() != "HS256" || parsed.Header["kid"] == nil {
			t.Fatalf("default token: %v %v", err, parsed.Header)
		}
		var secret []byte
		if err := s.Store.DB().Get(&secret, `SELECT secret FROM signing_keys WHERE id = $1`, parsed.Header["kid"]); err != nil {
			t.Fatal(err)
		}
		if _, err := jwt.Parse(out.Token, func(*jwt.Token) (any, error) { return secret, nil }, jwt.WithValidMethods([]string{"HS256"})); err != nil {
			t.Fatalf("HS256 token does not verify with the tenant secret: %v", err)
		}
	})

	t.Run("cookie", func(t *testing.T) {
		s.t = t
		app := s.appWith(map[string]any{})
		s.importToken(user, app, "rt-cookie", start)
		resp := s.do(req{method: "POST", path: "/api/jwt/refresh", noKey: true, header: map[string]string{"Cookie": "refresh_token=rt-cookie"}})
		if resp.Status != 200 {
			t.Fatalf("cookie exchange: %d %s", resp.Status, resp.Body)
		}
	})

	t.Run("errors", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "POST", path: "/api/jwt/refresh", noKey: true}, 400, "refreshToken:[missing]refreshToken")
		s.expect(req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: map[string]any{"refreshToken": ""}}, 400,
			"refreshToken:[missing]refreshToken")
		s.mustRefuse("never-issued")
		expired := s.appWith(map[string]any{"refreshTokenTimeToLiveInMinutes": 1})
		s.importToken(user, expired, "rt-expired", nowMillis()-2*60_000)
		s.mustRefuse("rt-expired")
		inactive := s.appWith(map[string]any{})
		s.importToken(user, inactive, "rt-inactive", start)
		s.mustExchange("rt-inactive")
		s.expect(req{method: "DELETE", path: "/api/application/" + inactive.String()}, 200)
		s.mustRefuse("rt-inactive")
	})
}

// TestExchangeAfterEachRevokeForm: every revoke form kills exactly the tokens it
// names for exchange; the others still exchange.
func TestExchangeAfterEachRevokeForm(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 1)
	value := func(u, a int) string { return w.tokens[pair{w.users[u], w.apps[a]}][0] }
	ids := map[string]string{}
	for u := range w.users {
		resp := s.expect(req{method: "GET", path: "/api/jwt/refresh?userId=" + w.users[u].String()}, 200)
		var list struct {
			RefreshTokens []struct{ ID, ApplicationID string } `json:"refreshTokens"`
		}
		_ = json.Unmarshal(resp.Body, &list)
		for _, tk := range list.RefreshTokens {
			ids[w.users[u].String()+tk.ApplicationID] = tk.ID
		}
	}
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + url.QueryEscape(value(0, 0))}, 200)
	s.mustRefuse(value(0, 0))
	s.mustExchange(value(0, 1))
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + ids[w.users[0].String()+w.apps[1].String()]}, 200)
	s.mustRefuse(value(0, 1))
	s.mustExchange(value(1, 0))
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{"userId": w.users[1], "applicationId": w.apps[0]}}, 200)
	s.mustRefuse(value(1, 0))
	s.mustExchange(value(1, 1))
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + w.apps[1].String()}, 200)
	s.mustRefuse(value(1, 1))

	w2 := s.seed(1, 2, 1)
	s.mustExchange(w2.tokens[pair{w2.users[0], w2.apps[1]}][0])
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w2.users[0].String()}, 200)
	for _, a := range w2.apps {
		s.mustRefuse(w2.tokens[pair{w2.users[0], a}][0])
	}
}

func TestExchangePolicies(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 0, 0)
	user := w.users[0]
	start := nowMillis() - 60_000

	t.Run("one-time use rotates", func(t *testing.T) {
		s.t = t
		app := s.appWith(map[string]any{"refreshTokenUsagePolicy": "OneTimeUse"})
		s.importToken(user, app, "otu-1", start)
		first := s.mustExchange("otu-1")
		if first.RefreshToken == "otu-1" || first.RefreshToken == "" {
			t.Fatalf("one-time use: got refresh token %q", first.RefreshToken)
		}
		s.mustRefuse("otu-1")
		second := s.mustExchange(first.RefreshToken)
		s.mustRefuse(first.RefreshToken)
		if second.RefreshToken == first.RefreshToken {
			t.Fatal("the second rotation answered the value of the first")
		}
		if second.RefreshTokenID != first.RefreshTokenID {
			t.Fatalf("rotation changed the token id: %s, then %s", first.RefreshTokenID, second.RefreshTokenID)
		}
		s.expect(req{method: "GET", path: "/api/jwt/refresh/" + second.RefreshTokenID}, 200)
		if n := len(s.tokenIDs(user)); n != 1 {
			t.Fatalf("tokens of the user after two rotations: %d, want 1", n)
		}
	})
	t.Run("one-time use with a grace period", func(t *testing.T) {
		s.t = t
		app := s.appWith(map[string]any{"refreshTokenUsagePolicy": "OneTimeUse",
			"refreshTokenOneTimeUseConfiguration": map[string]any{"gracePeriodInSeconds": 60}})
		s.importToken(user, app, "otu-grace", start)
		first := s.mustExchange("otu-grace")
		again := s.mustExchange("otu-grace") // still inside the grace period
		if again.RefreshToken != first.RefreshToken || again.RefreshTokenID != first.RefreshTokenID {
			t.Fatalf("grace reuse answered %q (%s), want the current %q (%s)", again.RefreshToken, again.RefreshTokenID,
				first.RefreshToken, first.RefreshTokenID)
		}
		s.mustExchange(first.RefreshToken) // the current value was not rotated by the grace reuse
		// Move the grace period into the past: then it is refused.
		if _, err := s.Store.DB().Exec(`UPDATE refresh_token_history SET grace_until = $1`, nowMillis()-1); err != nil {
			t.Fatal(err)
		}
		s.mustRefuse("otu-grace")
	})
	t.Run("sliding window moves the start", func(t *testing.T) {
		s.t = t
		app := s.appWith(map[string]any{"refreshTokenExpirationPolicy": "SlidingWindow", "refreshTokenTimeToLiveInMinutes": 10})
		old := nowMillis() - 9*60_000
		s.importToken(user, app, "sliding", old)
		out := s.mustExchange("sliding")
		resp := s.expect(req{method: "GET", path: "/api/jwt/refresh/" + out.RefreshTokenID}, 200)
		var got struct {
			RefreshToken struct{ StartInstant int64 } `json:"refreshToken"`
		}
		_ = json.Unmarshal(resp.Body, &got)
		if got.RefreshToken.StartInstant <= old {
			t.Fatalf("sliding window: start %d did not move from %d", got.RefreshToken.StartInstant, old)
		}
	})
	t.Run("maximum lifetime caps the window", func(t *testing.T) {
		s.t = t
		app := s.appWith(map[string]any{"refreshTokenExpirationPolicy": "SlidingWindowWithMaximumLifetime",
			"refreshTokenTimeToLiveInMinutes": 10, "refreshTokenSlidingWindowConfiguration": map[string]any{"maximumTimeToLiveInMinutes": 5}})
		born := nowMillis() - 6*60_000
		s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": []map[string]any{
			{"token": "capped", "userId": user, "applicationId": app, "startInstant": born, "insertInstant": born}}}}, 200)
		s.mustRefuse("capped")
	})
	t.Run("reaper deletes expired rows", func(t *testing.T) {
		s.t = t
		var before int
		_ = s.Store.DB().Get(&before, `SELECT count(*) FROM refresh_tokens WHERE expires_at <= $1`, nowMillis())
		if before == 0 {
			t.Fatal("no expired rows to reap")
		}
		if _, err := reapOnce(s); err != nil {
			t.Fatal(err)
		}
		var after int
		_ = s.Store.DB().Get(&after, `SELECT count(*) FROM refresh_tokens WHERE expires_at <= $1`, nowMillis())
		if after != 0 {
			t.Fatalf("expired rows after reaping: %d", after)
		}
	})
}

// TestExchangeWithFusionAuthClient: FusionAuth's ExchangeRefreshTokenForJWT gets a
// JWT that verifies against /.well-known/jwks.json, and [invalid]refreshToken
// after a revocation.
func TestExchangeWithFusionAuthClient(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 0, 0)
	app := s.appWith(map[string]any{"accessTokenSigningAlgorithm": "RS256"})
	s.importToken(w.users[0], app, "fa-exchange", nowMillis()-60_000)
	base, _ := url.Parse(s.URL)
	c := fusionauth.NewClient(&http.Client{Timeout: 10 * time.Second}, base, "")
	resp, errs, err := c.ExchangeRefreshTokenForJWT(fusionauth.RefreshRequest{RefreshToken: "fa-exchange"})
	mustOK(t, "ExchangeRefreshTokenForJWT", resp.StatusCode, errs, err)
	s.verify(resp.Token, w.users[0], app, resp.RefreshTokenId, 3600)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + app.String()}, 200)
	resp, errs, err = c.ExchangeRefreshTokenForJWT(fusionauth.RefreshRequest{RefreshToken: "fa-exchange"})
	if err != nil || resp.StatusCode != 400 || errs == nil || len(errs.FieldErrors["refreshToken"]) == 0 ||
		errs.FieldErrors["refreshToken"][0].Code != "[invalid]refreshToken" {
		t.Fatalf("after revoke: %d %+v %v", resp.StatusCode, errs, err)
	}
}
