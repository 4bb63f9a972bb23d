package impl_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/FusionAuth/go-client/pkg/fusionauth"
	"github.com/google/uuid"
)

// What no FusionAuth server does: RFC 7009 revocation, revocation receipts,
// "log out my other sessions", and validation that knows about revoked sessions.

// clientApp creates an application with the given OAuth configuration and
// returns its id and the client secret the create answered.
func (s *testServer) clientApp(oauth map[string]any) (uuid.UUID, string) {
	s.t.Helper()
	id := uuid.New()
	resp := s.expect(req{method: "POST", path: "/api/application/" + id.String(),
		body: map[string]any{"application": map[string]any{"name": "client " + id.String(), "oauthConfiguration": oauth}}}, 200)
	var out struct {
		Application struct {
			OauthConfiguration struct {
				ClientID     string `json:"clientId"`
				ClientSecret string `json:"clientSecret"`
			} `json:"oauthConfiguration"`
		} `json:"application"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		s.t.Fatal(err)
	}
	if out.Application.OauthConfiguration.ClientSecret == "" {
		s.t.Fatalf("create answered no client secret: %s", resp.Body)
	}
	got := s.expect(req{method: "GET", path: "/api/application/" + id.String()}, 200)
	if strings.Contains(string(got.Body), out.Application.OauthConfiguration.ClientSecret) {
		s.t.Fatalf("GET returned the client secret: %s", got.Body)
	}
	return id, out.Application.OauthConfiguration.ClientSecret
}

// oauthRevoke posts a form to /oauth2/revoke, with HTTP Basic credentials when id is set.
func (s *testServer) oauthRevoke(form url.Values, id, secret string) response {
	s.t.Helper()
	hr, err := http.NewRequest("POST", s.URL+"/oauth2/revoke", strings.NewReader(form.Encode()))
	if err != nil {
		s.t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id != "" {
		hr.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	_, _ = fmt.Fprint(&body, readAll(resp))
	return response{Status: resp.StatusCode, Body: []byte(body.String()), Header: resp.Header}
}

func readAll(resp *http.Response) string {
	var b strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			return b.String()
		}
	}
}

func oauthErrorOf(t *testing.T, r response) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("not an OAuth error: %s", r.Body)
	}
	return e.Error
}

func TestOAuthRevocation(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 0, 0)
	user := w.users[0]
	app, secret := s.clientApp(nil)
	other, otherSecret := s.clientApp(map[string]any{"clientId": "other-client"})
	public, _ := s.clientApp(map[string]any{"clientId": "public-client", "clientAuthenticationPolicy": "NotRequired"})
	for i, a := range []uuid.UUID{app, app, app, other, public} {
		s.importToken(user, a, fmt.Sprintf("rfc-%d", i), nowMillis()-60_000)
	}

	t.Run("discovery names the endpoint", func(t *testing.T) {
		s.t = t
		resp := s.expect(req{method: "GET", path: "/.well-known/openid-configuration", noKey: true}, 200)
		var doc map[string]any
		_ = json.Unmarshal(resp.Body, &doc)
		if doc["revocation_endpoint"] != s.URL+"/oauth2/revoke" || doc["jwks_uri"] != s.URL+"/.well-known/jwks.json" {
			t.Fatalf("discovery: %s", resp.Body)
		}
	})
	t.Run("HTTP Basic revokes the client's own token, with an event", func(t *testing.T) {
		s.t = t
		before := len(s.revokeEvents(user))
		r := s.oauthRevoke(url.Values{"token": {"rfc-0"}, "token_type_hint": {"refresh_token"}}, app.String(), secret)
		if r.Status != 200 || len(r.Body) != 0 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		s.mustRefuse("rfc-0")
		if after := len(s.revokeEvents(user)); after != before+1 {
			t.Fatalf("revoke events: %d → %d, want one more", before, after)
		}
	})
	t.Run("form credentials work too", func(t *testing.T) {
		s.t = t
		r := s.oauthRevoke(url.Values{"token": {"rfc-1"}, "client_id": {app.String()}, "client_secret": {secret}}, "", "")
		if r.Status != 200 {
			t.Fatalf("revoke: %d %s", r.Status, r.Body)
		}
		s.mustRefuse("rfc-1")
	})
	t.Run("another client's token and unknown tokens: 200, nothing revoked", func(t *testing.T) {
		s.t = t
		for _, token := range []string{"rfc-3", "never-issued"} {
			if r := s.oauthRevoke(url.Values{"token": {token}}, app.String(), secret); r.Status != 200 {
				t.Fatalf("revoke %s: %d %s", token, r.Status, r.Body)
			}
		}
		s.mustExchange("rfc-3")
		if r := s.oauthRevoke(url.Values{"token": {"rfc-3"}}, "other-client", otherSecret); r.Status != 200 {
			t.Fatalf("revoke by its own client: %d", r.Status)
		}
		s.mustRefuse("rfc-3")
	})
	t.Run("a public client sends its id alone", func(t *testing.T) {
		s.t = t
		if r := s.oauthRevoke(url.Values{"token": {"rfc-4"}, "client_id": {"public-client"}}, "", ""); r.Status != 200 {
			t.Fatalf("public client: %d %s", r.Status, r.Body)
		}
		s.mustRefuse("rfc-4")
	})
	t.Run("client authentication failures", func(t *testing.T) {
		s.t = t
		r := s.oauthRevoke(url.Values{"token": {"rfc-2"}}, app.String(), "wrong-secret")
		if r.Status != 401 || oauthErrorOf(t, r) != "invalid_client" || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("wrong secret: %d %s %q", r.Status, r.Body, r.Header.Get("WWW-Authenticate"))
		}
		for name, form := range map[string]url.Values{
			"no credentials":            {"token": {"rfc-2"}},
			"a confidential id alone":   {"token": {"rfc-2"}, "client_id": {app.String()}},
			"an unknown client":         {"token": {"rfc-2"}, "client_id": {"nobody"}, "client_secret": {"x"}},
			"another client's secret":   {"token": {"rfc-2"}, "client_id": {app.String()}, "client_secret": {otherSecret}},
			"a public client's pretend": {"token": {"rfc-2"}, "client_id": {"public-client"}, "client_secret": {"guess"}},
		} {
			if r := s.oauthRevoke(form, "", ""); r.Status != 401 || oauthErrorOf(t, r) != "invalid_client" {
				t.Fatalf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		s.mustExchange("rfc-2")
	})
	t.Run("malformed requests", func(t *testing.T) {
		s.t = t
		for name, form := range map[string]url.Values{
			"no token":       {"client_id": {app.String()}, "client_secret": {secret}},
			"repeated token": {"token": {"rfc-2", "rfc-2"}, "client_id": {app.String()}, "client_secret": {secret}},
		} {
			if r := s.oauthRevoke(form, "", ""); r.Status != 400 || oauthErrorOf(t, r) != "invalid_request" {
				t.Fatalf("%s: %d %s", name, r.Status, r.Body)
			}
		}
		if r := s.oauthRevoke(url.Values{"token": {"rfc-2"}, "client_id": {app.String()}}, app.String(), secret); r.Status != 400 {
			t.Fatalf("Basic and form credentials at once: %d %s", r.Status, r.Body)
		}
		s.mustExchange("rfc-2")
	})
	t.Run("client ids are unique", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "POST", path: "/api/application", body: map[string]any{"application": map[string]any{
			"name": "taken", "oauthConfiguration": map[string]any{"clientId": "other-client"}}}}, 400,
			"application.oauthConfiguration.clientId:[duplicate]application.oauthConfiguration.clientId")
	})
}

// receipt decodes a revocation receipt.
type receipt struct {
	IDs       []string `json:"revokedRefreshTokenIds"`
	Count     int64    `json:"count"`
	Truncated bool     `json:"truncated"`
}

func (s *testServer) receiptOf(r req) receipt {
	s.t.Helper()
	if r.header == nil {
		r.header = map[string]string{}
	}
	r.header["Prefer"] = "return=representation"
	resp := s.expect(r, 200)
	var out receipt
	if err := json.Unmarshal(resp.Body, &out); err != nil {
		s.t.Fatalf("receipt: %v: %q", err, resp.Body)
	}
	return out
}

func TestRevocationReceipts(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 2)
	u0, u1 := w.users[0], w.users[1]

	t.Run("without asking, FusionAuth's empty answer", func(t *testing.T) {
		s.t = t
		resp := s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + url.QueryEscape(w.tokens[pair{u0, w.apps[0]}][0])}, 200)
		if len(resp.Body) != 0 || resp.Header.Get("Content-Type") != "" {
			t.Fatalf("answer: %q %q", resp.Body, resp.Header.Get("Content-Type"))
		}
	})
	t.Run("by token, by id and by user", func(t *testing.T) {
		s.t = t
		ids := s.tokenIDs(u1)
		got := s.receiptOf(req{method: "DELETE", path: "/api/jwt/refresh?token=" + url.QueryEscape(w.tokens[pair{u0, w.apps[0]}][1])})
		if got.Count != 1 || len(got.IDs) != 1 || got.Truncated {
			t.Fatalf("by token: %+v", got)
		}
		got = s.receiptOf(req{method: "DELETE", path: "/api/jwt/refresh/" + ids[0]})
		if got.Count != 1 || len(got.IDs) != 1 || got.IDs[0] != ids[0] {
			t.Fatalf("by id: %+v, want %s", got, ids[0])
		}
		got = s.receiptOf(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u1.String()})
		if got.Count != 3 || fmt.Sprint(sorted(got.IDs)) != fmt.Sprint(sorted(ids[1:])) || got.Truncated {
			t.Fatalf("by user: %+v, want %v", got, ids[1:])
		}
		got = s.receiptOf(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u1.String()})
		if got.Count != 0 || len(got.IDs) != 0 || got.IDs == nil {
			t.Fatalf("again: %+v, want an empty list", got)
		}
	})
	t.Run("bounded at 1,000 ids", func(t *testing.T) {
		s.t = t
		app := w.apps[1]
		var batch []map[string]any
		for i := 0; i < 1001; i++ {
			batch = append(batch, map[string]any{"token": fmt.Sprintf("many-%d", i), "userId": u0, "applicationId": app,
				"startInstant": nowMillis() - 60_000})
		}
		s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": batch}}, 200)
		got := s.receiptOf(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + app.String()})
		if got.Count != 1003 || len(got.IDs) != 1000 || !got.Truncated {
			t.Fatalf("receipt of 1,003: count %d, %d ids, truncated %v", got.Count, len(got.IDs), got.Truncated)
		}
	})
}

func sorted(in []string) []string {
	out := append([]string(nil), in...)
	sortStrings(out)
	return out
}

func TestRevokeAllButOne(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 2)
	u0, u1 := w.users[0], w.users[1]
	keep := s.tokenIDs(u0)[2]

	t.Run("with an API key", func(t *testing.T) {
		s.t = t
		got := s.receiptOf(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u0.String() + "&exceptTokenId=" + keep})
		if got.Count != 3 {
			t.Fatalf("revoked %d, want 3", got.Count)
		}
		if ids := s.tokenIDs(u0); len(ids) != 1 || ids[0] != keep {
			t.Fatalf("left: %v, want only %s", ids, keep)
		}
		events := s.revokeEvents(u0)
		if last := events[len(events)-1]; last["userId"] != u0.String() || last["applicationId"] != nil {
			t.Fatalf("event: %v, want the userId form", last)
		}
	})
	t.Run("with the user's own access token: log out my other sessions", func(t *testing.T) {
		s.t = t
		current := s.accessTokenFor(u1, w.apps[0])
		sid := claimsOf(t, current)["sid"].(string)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?exceptTokenId=" + sid,
			header: map[string]string{"Authorization": "Bearer " + current}}, 200)
		if ids := s.tokenIDs(u1); len(ids) != 1 || ids[0] != sid {
			t.Fatalf("left: %v, want only the current session %s", ids, sid)
		}
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u0.String() + "&exceptTokenId=" + sid,
			header: map[string]string{"Authorization": "Bearer " + current}}, 401)
	})
	t.Run("errors", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?exceptTokenId=" + keep}, 400, "exceptTokenId:[invalid]exceptTokenId")
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + w.apps[0].String() + "&exceptTokenId=" + keep}, 400,
			"exceptTokenId:[invalid]exceptTokenId")
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=x&userId=" + u0.String() + "&exceptTokenId=" + keep}, 400,
			"exceptTokenId:[invalid]exceptTokenId")
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + u0.String() + "&exceptTokenId=nope"}, 400,
			"exceptTokenId:[couldNotConvert]exceptTokenId")
		if ids := s.tokenIDs(u0); len(ids) != 1 {
			t.Fatalf("tokens changed: %v", ids)
		}
	})
}

func TestValidateJWT(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	rs := s.appWith(map[string]any{"accessTokenSigningAlgorithm": "RS256"})
	hs := s.accessTokenFor(w.users[0], w.apps[0])
	rsTok := s.accessTokenFor(w.users[0], rs)
	validate := func(header map[string]string) response {
		return s.do(req{method: "GET", path: "/api/jwt/validate", noKey: true, header: header})
	}
	for name, h := range map[string]map[string]string{
		"HS256 bearer": {"Authorization": "Bearer " + hs}, "RS256 bearer": {"Authorization": "Bearer " + rsTok},
		"cookie": {"Cookie": "access_token=" + hs},
	} {
		resp := validate(h)
		var out struct {
			JWT map[string]any `json:"jwt"`
		}
		if resp.Status != 200 || json.Unmarshal(resp.Body, &out) != nil || out.JWT["sub"] != w.users[0].String() {
			t.Fatalf("%s: %d %s", name, resp.Status, resp.Body)
		}
	}
	for name, h := range map[string]map[string]string{
		"no token": nil, "garbage": {"Authorization": "Bearer x.y.z"}, "an API key": {"Authorization": s.Key},
	} {
		if resp := validate(h); resp.Status != 401 || len(resp.Body) != 0 {
			t.Fatalf("%s: %d %s", name, resp.Status, resp.Body)
		}
	}
	// Revoking the session ends its access tokens here at once (ours).
	sid := claimsOf(t, hs)["sid"].(string)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + sid}, 200)
	if resp := validate(map[string]string{"Authorization": "Bearer " + hs}); resp.Status != 401 {
		t.Fatalf("after the session's revocation: %d", resp.Status)
	}
	if resp := validate(map[string]string{"Authorization": "Bearer " + rsTok}); resp.Status != 200 {
		t.Fatalf("another session: %d", resp.Status)
	}
	// FusionAuth's Go client reads the claims.
	base, _ := url.Parse(s.URL)
	c := fusionauth.NewClient(&http.Client{Timeout: 10 * time.Second}, base, "")
	v, err := c.ValidateJWT(rsTok)
	if err != nil || v.StatusCode != 200 || v.Jwt.Sub != w.users[0].String() {
		t.Fatalf("ValidateJWT: %v %+v", err, v)
	}
	v, err = c.ValidateJWT(hs)
	if err != nil || v.StatusCode != 401 {
		t.Fatalf("ValidateJWT of a revoked session: %v %d", err, v.StatusCode)
	}
}
