package impl_test

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
)

func TestApplicationsAndUsers(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 2)
	app, user := w.apps[0].String(), w.users[0].String()

	s.expect(req{method: "POST", path: "/api/application/" + app,
		body: map[string]any{"application": map[string]any{"name": "again"}}}, 400, "applicationId:[duplicate]applicationId")
	s.expect(req{method: "POST", path: "/api/user/" + user,
		body: map[string]any{"user": map[string]any{"username": "again"}}}, 400, "userId:[duplicate]userId")
	s.expect(req{method: "POST", path: "/api/user",
		body: map[string]any{"user": map[string]any{"email": user + "@EXAMPLE.com"}}}, 400, "user.email:[duplicate]user.email")

	// Server-assigned ids; state fields in the body are ignored.
	resp := s.expect(req{method: "POST", path: "/api/application", body: map[string]any{"application": map[string]any{
		"name": "assigned", "active": false, "insertInstant": 1, "oauthConfiguration": map[string]any{"clientSecret": "x"},
		"jwtConfiguration": map[string]any{"enabled": true, "refreshTokenTimeToLiveInMinutes": 60,
			"refreshTokenExpirationPolicy": "SlidingWindow"}},
		"eventInfo": map[string]any{"location": map[string]any{}}}}, 200)
	var created struct {
		Application struct {
			ID               string `json:"id"`
			Active           bool   `json:"active"`
			InsertInstant    int64  `json:"insertInstant"`
			JWTConfiguration struct {
				Enabled                         bool `json:"enabled"`
				RefreshTokenTimeToLiveInMinutes int  `json:"refreshTokenTimeToLiveInMinutes"`
			} `json:"jwtConfiguration"`
		} `json:"application"`
	}
	if err := json.Unmarshal(resp.Body, &created); err != nil {
		t.Fatal(err)
	}
	a := created.Application
	if _, err := uuid.Parse(a.ID); err != nil || !a.Active || a.InsertInstant <= 1 ||
		!a.JWTConfiguration.Enabled || a.JWTConfiguration.RefreshTokenTimeToLiveInMinutes != 60 {
		t.Fatalf("created application: %s", resp.Body)
	}
	s.expect(req{method: "GET", path: "/api/application/" + a.ID}, 200)

	// Soft delete deactivates and keeps the tokens; hard delete removes both.
	s.expect(req{method: "DELETE", path: "/api/application/" + app}, 200)
	resp = s.expect(req{method: "GET", path: "/api/application/" + app}, 200)
	if err := json.Unmarshal(resp.Body, &created); err != nil || created.Application.Active {
		t.Fatalf("after soft delete: %s", resp.Body)
	}
	s.expectRemaining(w, none)
	s.expect(req{method: "DELETE", path: "/api/user/" + user + "?hardDelete=false"}, 200)
	s.expectRemaining(w, none)
	s.expect(req{method: "DELETE", path: "/api/user/" + user + "?hardDelete=true"}, 200)
	s.expect(req{method: "GET", path: "/api/user/" + user}, 404)
	s.expect(req{method: "DELETE", path: "/api/user/" + user + "?hardDelete=true"}, 404)
	if left := s.remaining(); len(left) != 0 {
		t.Fatalf("tokens left after the user's hard delete: %v", left)
	}
	s.expect(req{method: "DELETE", path: "/api/application/" + app + "?hardDelete=true"}, 200)
	s.expect(req{method: "GET", path: "/api/application/" + app}, 404)
	s.expect(req{method: "GET", path: "/api/application/" + uuid.NewString()}, 404)
}

// TestTokenLifetime: an import's expiry follows the application's enabled
// jwtConfiguration, else the tenant's default of 43,200 minutes.
func TestTokenLifetime(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	short := uuid.NewString()
	s.expect(req{method: "POST", path: "/api/application/" + short, body: map[string]any{"application": map[string]any{
		"name": "short", "jwtConfiguration": map[string]any{"enabled": true, "refreshTokenTimeToLiveInMinutes": 1}}}}, 200)
	disabled := uuid.NewString()
	s.expect(req{method: "POST", path: "/api/application/" + disabled, body: map[string]any{"application": map[string]any{
		"name": "disabled", "jwtConfiguration": map[string]any{"enabled": false, "refreshTokenTimeToLiveInMinutes": 1}}}}, 200)
	twoMinutesAgo := nowMillis() - 2*60_000
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": []map[string]any{
		{"token": "short-lived", "userId": w.users[0], "applicationId": short, "startInstant": twoMinutesAgo},
		{"token": "default-lived", "userId": w.users[0], "applicationId": disabled, "startInstant": twoMinutesAgo},
	}}}, 200)
	ids := s.tokenIDs(w.users[0])
	if len(ids) != 1 {
		t.Fatalf("live tokens: got %d, want 1 (the one on default lifetime)", len(ids))
	}
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=short-lived"}, 404)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=default-lived"}, 200)
	// An expired value may be imported again: it is absent.
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: map[string]any{"refreshTokens": []map[string]any{
		{"token": "short-lived", "userId": w.users[0], "applicationId": disabled, "startInstant": twoMinutesAgo}}}}, 200)
}

func TestStatusWithoutDatabase(t *testing.T) {
	s := newServer(t)
	s.expect(req{method: "GET", path: "/api/status", noKey: true}, 200)
	s.Store.Close()
	resp := s.do(req{method: "GET", path: "/api/status", noKey: true})
	if resp.Status != 503 {
		t.Fatalf("status without database: got %d, want 503", resp.Status)
	}
}
