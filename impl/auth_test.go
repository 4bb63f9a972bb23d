package impl_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
)

// newKey creates an API key through the API and returns its value and id.
func (s *testServer) newKey(apiKey map[string]any) (value, id string) {
	s.t.Helper()
	resp := s.expect(req{method: "POST", path: "/api/api-key", body: map[string]any{"apiKey": apiKey}}, 200)
	var out struct {
		APIKey struct{ ID, Key string } `json:"apiKey"`
	}
	if err := json.Unmarshal(resp.Body, &out); err != nil || out.APIKey.Key == "" {
		s.t.Fatalf("create key: %v %s", err, resp.Body)
	}
	return out.APIKey.Key, out.APIKey.ID
}

func (s *testServer) newTenant(name string) string {
	s.t.Helper()
	id := uuid.NewString()
	s.expect(req{method: "POST", path: "/api/tenant/" + id, body: map[string]any{"tenant": map[string]any{"name": name}}}, 200)
	return id
}

func TestAuthentication(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 1)
	user := w.users[0].String()
	revokeUser := "/api/jwt/refresh?userId=" + user

	t.Run("status needs no key", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "GET", path: "/api/status", noKey: true}, 200)
	})
	t.Run("missing key", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "DELETE", path: revokeUser, noKey: true}, 401)
		// Bad input does not matter before the key does.
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=nope", noKey: true}, 401)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh", body: `{broken`, noKey: true}, 401)
	})
	t.Run("wrong key", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "DELETE", path: revokeUser, header: map[string]string{"Authorization": "not-a-key"}}, 401)
		s.expect(req{method: "DELETE", path: revokeUser, header: map[string]string{"Authorization": "Bearer " + s.Key}}, 401)
	})
	t.Run("endpoint-limited key", func(t *testing.T) {
		s.t = t
		limited, _ := s.newKey(map[string]any{"permissions": map[string]any{
			"endpoints": map[string]any{"/api/jwt/refresh": []string{"GET"}}}})
		auth := map[string]string{"Authorization": limited}
		s.expect(req{method: "GET", path: revokeUser, header: auth}, 200)
		s.expect(req{method: "DELETE", path: revokeUser, header: auth}, 401)
		s.expect(req{method: "GET", path: "/api/user/" + user, header: auth}, 401)
		s.expect(req{method: "POST", path: "/api/api-key", header: auth, body: map[string]any{"apiKey": map[string]any{}}}, 401)
		s.expectRemaining(w, none)
	})
	t.Run("deleted key stops working", func(t *testing.T) {
		s.t = t
		value, id := s.newKey(map[string]any{"description": "short-lived"})
		s.expect(req{method: "GET", path: revokeUser, header: map[string]string{"Authorization": value}}, 200)
		s.expect(req{method: "GET", path: "/api/api-key/" + id}, 200)
		s.expect(req{method: "DELETE", path: "/api/api-key/" + id}, 200)
		s.expect(req{method: "GET", path: revokeUser, header: map[string]string{"Authorization": value}}, 401)
	})
}

// TestTenantIsolation: a key locked to one tenant never reads or revokes another
// tenant's data, and a header naming another tenant is refused.
func TestTenantIsolation(t *testing.T) {
	s := newServer(t)
	defaultWorld := s.seed(2, 2, 1) // in the default tenant
	other := s.newTenant("other")
	locked, _ := s.newKey(map[string]any{"tenantId": other})
	asOther := map[string]string{"Authorization": locked}

	// Objects created with the locked key land in its tenant.
	app, user := uuid.NewString(), uuid.NewString()
	s.expect(req{method: "POST", path: "/api/application/" + app, header: asOther,
		body: map[string]any{"application": map[string]any{"name": "theirs"}}}, 200)
	s.expect(req{method: "POST", path: "/api/user/" + user, header: asOther,
		body: map[string]any{"user": map[string]any{"username": "them"}}}, 200)
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", header: asOther,
		body: map[string]any{"refreshTokens": []map[string]any{{"token": "theirs-1", "userId": user, "applicationId": app,
			"startInstant": 1700000000000}}}}, 200)
	resp := s.expect(req{method: "GET", path: "/api/application/" + app, header: asOther}, 200)
	var got struct {
		Application struct{ TenantID string } `json:"application"`
	}
	_ = json.Unmarshal(resp.Body, &got)
	if got.Application.TenantID != other {
		t.Fatalf("application tenant: got %s, want %s", got.Application.TenantID, other)
	}

	victimUser, victimApp := defaultWorld.users[0].String(), defaultWorld.apps[0].String()
	victimToken := defaultWorld.tokens[pair{defaultWorld.users[0], defaultWorld.apps[0]}][0]
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + victimUser, header: asOther}, 400, "userId:[invalid]userId")
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + victimApp, header: asOther}, 400,
		"applicationId:[invalid]applicationId")
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh", header: asOther, body: map[string]any{"token": victimToken}}, 404)
	s.expect(req{method: "GET", path: "/api/jwt/refresh?userId=" + victimUser, header: asOther}, 400, "userId:[invalid]userId")
	s.expect(req{method: "GET", path: "/api/user/" + victimUser, header: asOther}, 404)
	s.expect(req{method: "DELETE", path: "/api/user/" + victimUser + "?hardDelete=true", header: asOther}, 404)
	s.expect(req{method: "DELETE", path: "/api/application/" + victimApp + "?hardDelete=true", header: asOther}, 404)
	for _, id := range s.tokenIDs(defaultWorld.users[0]) {
		s.expect(req{method: "GET", path: "/api/jwt/refresh/" + id, header: asOther}, 404)
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + id, header: asOther}, 404)
	}
	s.expectRemaining(defaultWorld, none)

	// The locked key with another tenant's header: 401.
	resp2 := s.expect(req{method: "GET", path: "/api/tenant/" + other}, 200)
	_ = resp2
	defTenant := s.defaultTenant()
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + victimUser,
		header: map[string]string{"Authorization": locked, "X-FusionAuth-TenantId": defTenant}}, 401)
	// Its own tenant's header is fine.
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + user,
		header: map[string]string{"Authorization": locked, "X-FusionAuth-TenantId": other}}, 200)
	// An unrestricted key scoped by header sees only that tenant.
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + victimUser,
		header: map[string]string{"X-FusionAuth-TenantId": other}}, 400, "userId:[invalid]userId")
	s.expectRemaining(defaultWorld, none)
	// A locked key may not manage tenants or keys.
	s.expect(req{method: "POST", path: "/api/tenant", header: asOther, body: map[string]any{"tenant": map[string]any{"name": "x"}}}, 401)
	s.expect(req{method: "GET", path: "/api/tenant/" + defTenant, header: asOther}, 404)
}

func (s *testServer) defaultTenant() string {
	s.t.Helper()
	var id string
	if err := s.Store.DB().Get(&id, `SELECT id FROM tenants WHERE is_default`); err != nil {
		s.t.Fatal(err)
	}
	return id
}
