package impl_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"refreshd/impl"
)

// TestBadInput: malformed requests get a 400 with the right code — never a 500 —
// and change nothing.
func TestBadInput(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 2)
	user := w.users[0].String()
	long := strings.Repeat("x", 5000)
	cases := []struct {
		name  string
		r     req
		codes []string
	}{
		{"broken JSON", req{method: "DELETE", path: "/api/jwt/refresh", body: `{"userId": `}, []string{":[invalidJSON]"}},
		{"JSON array instead of object", req{method: "DELETE", path: "/api/jwt/refresh", body: `[]`}, []string{":[invalidJSON]"}},
		{"wrong JSON type for userId", req{method: "DELETE", path: "/api/jwt/refresh", body: `{"userId": 42}`},
			[]string{":[invalidJSON]"}},
		{"wrong JSON type for eventInfo", req{method: "DELETE", path: "/api/jwt/refresh",
			body: `{"userId": "` + user + `", "eventInfo": "x"}`}, []string{":[invalidJSON]"}},
		{"trailing garbage", req{method: "DELETE", path: "/api/jwt/refresh", body: `{"userId": "` + user + `"} x`},
			[]string{":[invalidJSON]"}},
		{"non-JSON content type", req{method: "DELETE", path: "/api/jwt/refresh", body: `<userId>` + user + `</userId>`,
			header: map[string]string{"Content-Type": "application/xml"}}, []string{":[InvalidContentType]"}},
		{"form where only JSON is taken", req{method: "POST", path: "/api/user/refresh-token/import", body: `userId=` + user,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, []string{":[InvalidContentType]"}},
		{"repeated form field", req{method: "DELETE", path: "/api/jwt/refresh", body: `token=a&token=b`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, []string{"token:[invalid]token"}},
		{"malformed id in a form", req{method: "DELETE", path: "/api/jwt/refresh", body: `userId=not-a-uuid`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, []string{"userId:[couldNotConvert]userId"}},
		{"form that does not parse", req{method: "DELETE", path: "/api/jwt/refresh", body: `token=%zz`,
			header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, []string{":[invalid]"}},
		{"text/plain JSON", req{method: "DELETE", path: "/api/jwt/refresh", body: `{"userId": "` + user + `"}`,
			header: map[string]string{"Content-Type": "text/plain"}}, []string{":[InvalidContentType]"}},
		{"oversized body", req{method: "DELETE", path: "/api/jwt/refresh",
			body: `{"userId": "` + user + `", "eventInfo": {"data": {"x": "` + strings.Repeat("a", impl.DefaultBodyLimit) + `"}}}`},
			[]string{":[tooLarge]"}},
		{"repeated userId", req{method: "DELETE", path: "/api/jwt/refresh?userId=" + user + "&userId=" + uuid.NewString()},
			[]string{"userId:[invalid]userId"}},
		{"repeated token", req{method: "DELETE", path: "/api/jwt/refresh?token=a&token=b"}, []string{"token:[invalid]token"}},
		{"absurdly long token", req{method: "DELETE", path: "/api/jwt/refresh?token=" + long}, []string{"token:[tooLong]token"}},
		{"absurdly long token in body", req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{"token": long}},
			[]string{"token:[tooLong]token"}},
		{"absurdly long userId", req{method: "DELETE", path: "/api/jwt/refresh?userId=" + long},
			[]string{"userId:[couldNotConvert]userId"}},
		{"GET without userId", req{method: "GET", path: "/api/jwt/refresh"}, []string{"userId:[missing]userId"}},
		{"GET with empty userId", req{method: "GET", path: "/api/jwt/refresh?userId="}, []string{"userId:[missing]userId"}},
		{"GET with unknown userId", req{method: "GET", path: "/api/jwt/refresh?userId=" + uuid.NewString()},
			[]string{"userId:[invalid]userId"}},
		{"GET with malformed userId", req{method: "GET", path: "/api/jwt/refresh?userId=abc"},
			[]string{"userId:[couldNotConvert]userId"}},
		{"GET token with malformed id", req{method: "GET", path: "/api/jwt/refresh/abc"},
			[]string{"tokenId:[couldNotConvert]tokenId"}},
		{"hardDelete not a boolean", req{method: "DELETE", path: "/api/user/" + user + "?hardDelete=yes"},
			[]string{"hardDelete:[couldNotConvert]hardDelete"}},
		{"create user without body", req{method: "POST", path: "/api/user/" + uuid.NewString()}, []string{":[invalidJSON]"}},
		{"create user without email or username", req{method: "POST", path: "/api/user/" + uuid.NewString(),
			body: map[string]any{"user": map[string]any{"password": "pw"}}},
			[]string{"user.email:[missing]user.email", "user.username:[missing]user.username"}},
		{"create user body without user", req{method: "POST", path: "/api/user", body: map[string]any{}},
			[]string{"user:[missing]user"}},
		{"create application without name", req{method: "POST", path: "/api/application",
			body: map[string]any{"application": map[string]any{}}}, []string{"application.name:[missing]application.name"}},
		{"application with malformed tenantId", req{method: "POST", path: "/api/application",
			body: map[string]any{"application": map[string]any{"name": "x", "tenantId": "t"}}},
			[]string{"application.tenantId:[couldNotConvert]application.tenantId"}},
		{"application with bad enum", req{method: "POST", path: "/api/application",
			body: map[string]any{"application": map[string]any{"name": "x",
				"jwtConfiguration": map[string]any{"enabled": true, "refreshTokenUsagePolicy": "Sometimes"}}}},
			[]string{"application.jwtConfiguration.refreshTokenUsagePolicy:[invalid]application.jwtConfiguration.refreshTokenUsagePolicy"}},
		{"malformed tenant header", req{method: "GET", path: "/api/jwt/refresh?userId=" + user,
			header: map[string]string{"X-FusionAuth-TenantId": "nope"}}, []string{":[invalid]tenantId"}},
		{"unknown tenant header", req{method: "GET", path: "/api/jwt/refresh?userId=" + user,
			header: map[string]string{"X-FusionAuth-TenantId": uuid.NewString()}}, []string{":[invalid]tenantId"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			s.expect(c.r, http.StatusBadRequest, c.codes...)
			s.expectRemaining(w, none)
		})
	}
}

// TestUnknownRoutes: paths and methods outside the contract get empty 404/405.
func TestUnknownRoutes(t *testing.T) {
	s := newServer(t)
	s.expect(req{method: "GET", path: "/api/nothing"}, 404)
	resp := s.do(req{method: "PUT", path: "/api/jwt/refresh"})
	if resp.Status != http.StatusMethodNotAllowed || len(resp.Body) != 0 {
		t.Fatalf("PUT /api/jwt/refresh: got %d %q, want 405 with empty body", resp.Status, resp.Body)
	}
}
