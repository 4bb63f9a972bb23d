package impl_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/FusionAuth/go-client/pkg/fusionauth"
	"github.com/google/uuid"
)

// TestFusionAuthGoClient drives the server with FusionAuth's official Go client,
// exactly as a user who points it at us would: every refresh-token method, with
// the client's own request shapes (dozens of zero-valued fields, empty query
// parameters, eventInfo on every body).
func TestFusionAuthGoClient(t *testing.T) {
	s := newServer(t)
	base, _ := url.Parse(s.URL)
	c := fusionauth.NewClient(&http.Client{Timeout: 10 * time.Second}, base, s.Key)

	apps := []string{uuid.NewString(), uuid.NewString()}
	users := []string{uuid.NewString(), uuid.NewString()}
	for _, id := range apps {
		resp, errs, err := c.CreateApplication(id, fusionauth.ApplicationRequest{Application: fusionauth.Application{Name: "app " + id}})
		mustOK(t, "CreateApplication", resp.StatusCode, errs, err)
		if resp.Application.Id != id || !resp.Application.Active {
			t.Fatalf("CreateApplication: got id %q active %v, want %q true", resp.Application.Id, resp.Application.Active, id)
		}
	}
	for _, id := range users {
		resp, errs, err := c.CreateUser(id, fusionauth.UserRequest{User: fusionauth.User{
			SecureIdentity: fusionauth.SecureIdentity{Password: "correct horse"}, Email: id + "@example.com"}})
		mustOK(t, "CreateUser", resp.StatusCode, errs, err)
		if resp.User.Id != id {
			t.Fatalf("CreateUser: got id %q, want %q", resp.User.Id, id)
		}
	}
	// Two tokens per (user, app), named by their position.
	value := func(u, a, k int) string { return "fa-" + users[u] + "-" + apps[a] + "-" + string(rune('a'+k)) }
	var batch []fusionauth.RefreshToken
	start := time.Now().Add(-time.Minute).UnixMilli()
	for u := range users {
		for a := range apps {
			for k := 0; k < 2; k++ {
				batch = append(batch, fusionauth.RefreshToken{Token: value(u, a, k), UserId: users[u], ApplicationId: apps[a],
					StartInstant: start, MetaData: fusionauth.MetaData{Device: fusionauth.DeviceInfo{Name: "phone"}}})
			}
		}
	}
	resp, errs, err := c.ImportRefreshTokens(fusionauth.RefreshTokenImportRequest{RefreshTokens: batch})
	mustOK(t, "ImportRefreshTokens", resp.StatusCode, errs, err)

	count := func(user string) map[string]int {
		t.Helper()
		r, errs, err := c.RetrieveRefreshTokens(user)
		mustOK(t, "RetrieveRefreshTokens", r.StatusCode, errs, err)
		out := map[string]int{}
		for _, tok := range r.RefreshTokens {
			if tok.Token != "" {
				t.Errorf("RetrieveRefreshTokens returned a token value")
			}
			out[tok.ApplicationId]++
		}
		return out
	}
	want := func(user string, perApp ...int) {
		t.Helper()
		got := count(user)
		for i, n := range perApp {
			if got[apps[i]] != n {
				t.Errorf("user %s app %d: got %d tokens, want %d", user, i, got[apps[i]], n)
			}
		}
	}
	want(users[0], 2, 2)
	want(users[1], 2, 2)

	// RevokeRefreshToken(token, "", ""): the client sends ?applicationId=&token=…&userId=
	r, errs, err := c.RevokeRefreshToken(value(0, 0, 0), "", "")
	mustOK(t, "RevokeRefreshToken(token)", r.StatusCode, errs, err)
	want(users[0], 1, 2)

	r, errs, err = c.RevokeRefreshTokenByToken(value(0, 0, 0))
	if err != nil || r.StatusCode != 404 {
		t.Fatalf("RevokeRefreshTokenByToken(revoked): got %d %v, want 404", r.StatusCode, err)
	}

	r, errs, err = c.RevokeRefreshTokensByUserIdForApplication(users[0], apps[1])
	mustOK(t, "RevokeRefreshTokensByUserIdForApplication", r.StatusCode, errs, err)
	want(users[0], 1, 0)
	want(users[1], 2, 2)

	r, errs, err = c.RevokeRefreshTokensWithRequest(fusionauth.RefreshTokenRevokeRequest{Token: value(1, 1, 0),
		BaseEventRequest: fusionauth.BaseEventRequest{EventInfo: fusionauth.EventInfo{IpAddress: "192.0.2.1"}}})
	mustOK(t, "RevokeRefreshTokensWithRequest(token)", r.StatusCode, errs, err)
	want(users[1], 2, 1)

	list, errs, err := c.RetrieveRefreshTokens(users[1])
	mustOK(t, "RetrieveRefreshTokens", list.StatusCode, errs, err)
	var id string
	for _, tok := range list.RefreshTokens {
		if tok.ApplicationId == apps[0] {
			id = tok.Id
		}
	}
	one, errs, err := c.RetrieveRefreshTokenById(id)
	mustOK(t, "RetrieveRefreshTokenById", one.StatusCode, errs, err)
	if one.RefreshToken.Id != id || one.RefreshToken.UserId != users[1] || one.RefreshToken.MetaData.Device.Name != "phone" {
		t.Fatalf("RetrieveRefreshTokenById: got %+v", one.RefreshToken)
	}
	r, errs, err = c.RevokeRefreshTokenById(id)
	mustOK(t, "RevokeRefreshTokenById", r.StatusCode, errs, err)
	want(users[1], 1, 1)

	r, errs, err = c.RevokeRefreshTokensByApplicationId(apps[0])
	mustOK(t, "RevokeRefreshTokensByApplicationId", r.StatusCode, errs, err)
	want(users[0], 0, 0)
	want(users[1], 0, 1)

	r, errs, err = c.RevokeRefreshTokensByUserId(users[1])
	mustOK(t, "RevokeRefreshTokensByUserId", r.StatusCode, errs, err)
	want(users[1], 0, 0)

	// Errors decode into the client's Errors type.
	r, errs, err = c.RevokeRefreshTokensByUserId(uuid.NewString())
	if err != nil || r.StatusCode != 400 || errs == nil || len(errs.FieldErrors["userId"]) != 1 ||
		errs.FieldErrors["userId"][0].Code != "[invalid]userId" {
		t.Fatalf("unknown user: got %d %+v %v, want 400 [invalid]userId", r.StatusCode, errs, err)
	}
	// A tenant header the client sets with SetTenantId.
	c.SetTenantId(uuid.NewString())
	r, errs, err = c.RevokeRefreshTokensByUserId(users[0])
	if err != nil || r.StatusCode != 400 || errs == nil || len(errs.GeneralErrors) != 1 || errs.GeneralErrors[0].Code != "[invalid]tenantId" {
		t.Fatalf("unknown tenant: got %d %+v %v, want 400 [invalid]tenantId", r.StatusCode, errs, err)
	}
	c.SetTenantId("")

	// Hard deletes take the tokens with them.
	_, errs, err = c.ImportRefreshTokens(fusionauth.RefreshTokenImportRequest{RefreshTokens: []fusionauth.RefreshToken{
		{Token: "late-1", UserId: users[0], ApplicationId: apps[1], StartInstant: start},
		{Token: "late-2", UserId: users[1], ApplicationId: apps[0], StartInstant: start}}})
	if err != nil || errs != nil {
		t.Fatalf("import: %+v %v", errs, err)
	}
	r, errs, err = c.DeleteApplication(apps[1])
	mustOK(t, "DeleteApplication", r.StatusCode, errs, err)
	app, err := c.RetrieveApplication(apps[1])
	if err != nil || app.StatusCode != 404 {
		t.Fatalf("RetrieveApplication after hard delete: got %d %v, want 404", app.StatusCode, err)
	}
	want(users[0], 0, 0)
	r, errs, err = c.DeleteUser(users[1])
	mustOK(t, "DeleteUser", r.StatusCode, errs, err)
	if left := s.remaining(); len(left) != 0 {
		t.Fatalf("tokens left after hard deletes: %v", left)
	}

	// Wrong key: 401, which the client reports without an error body.
	bad := fusionauth.NewClient(&http.Client{Timeout: 10 * time.Second}, base, "wrong-key")
	r, errs, err = bad.RevokeRefreshTokensByUserId(users[0])
	if err != nil || r.StatusCode != 401 || (errs != nil && errs.Present()) {
		t.Fatalf("wrong key: got %d %+v %v, want 401 without errors", r.StatusCode, errs, err)
	}
}

func mustOK(t *testing.T, what string, status int, errs *fusionauth.Errors, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if errs != nil && errs.Present() {
		t.Fatalf("%s: status %d, errors %+v", what, status, *errs)
	}
	if status != 200 {
		t.Fatalf("%s: status %d, want 200", what, status)
	}
}

// TestFusionAuthGoClientSession drives a one-time-use session with the official
// client: login tokens rotate on exchange while the id stays, the id revokes the
// session, reuse detection follows the tenant's policy, and Logout ends sessions.
func TestFusionAuthGoClientSession(t *testing.T) {
	s := newServer(t)
	base, _ := url.Parse(s.URL)
	c := fusionauth.NewClient(&http.Client{Timeout: 10 * time.Second}, base, s.Key)
	anon := fusionauth.NewClient(&http.Client{Timeout: 10 * time.Second}, base, "")

	tenantID := uuid.NewString()
	tr, errs, err := c.CreateTenant(tenantID, fusionauth.TenantRequest{Tenant: fusionauth.Tenant{Name: "reuse detecting",
		JwtConfiguration: fusionauth.JWTConfiguration{TimeToLiveInSeconds: 600, RefreshTokenTimeToLiveInMinutes: 60,
			RefreshTokenRevocationPolicy: fusionauth.RefreshTokenRevocationPolicy{OnOneTimeTokenReuse: true}}}})
	mustOK(t, "CreateTenant", tr.StatusCode, errs, err)
	c.SetTenantId(tenantID)
	appID, userID := uuid.NewString(), uuid.NewString()
	ar, errs, err := c.CreateApplication(appID, fusionauth.ApplicationRequest{Application: fusionauth.Application{Name: "otu",
		JwtConfiguration: fusionauth.JWTConfiguration{Enableable: fusionauth.Enableable{Enabled: true}, TimeToLiveInSeconds: 300,
			RefreshTokenUsagePolicy: fusionauth.RefreshTokenUsagePolicy_OneTimeUse}}})
	mustOK(t, "CreateApplication", ar.StatusCode, errs, err)
	ur, errs, err := c.CreateUser(userID, fusionauth.UserRequest{User: fusionauth.User{Email: userID + "@example.com"}})
	mustOK(t, "CreateUser", ur.StatusCode, errs, err)
	start := time.Now().Add(-time.Minute).UnixMilli()
	ir, errs, err := c.ImportRefreshTokens(fusionauth.RefreshTokenImportRequest{RefreshTokens: []fusionauth.RefreshToken{
		{Token: "session-a", UserId: userID, ApplicationId: appID, StartInstant: start},
		{Token: "session-b", UserId: userID, ApplicationId: appID, StartInstant: start},
		{Token: "session-c", UserId: userID, ApplicationId: appID, StartInstant: start},
		{Token: "session-d", UserId: userID, ApplicationId: appID, StartInstant: start}}})
	mustOK(t, "ImportRefreshTokens", ir.StatusCode, errs, err)

	exchange := func(value string) *fusionauth.JWTRefreshResponse {
		t.Helper()
		r, errs, err := anon.ExchangeRefreshTokenForJWT(fusionauth.RefreshRequest{RefreshToken: value})
		mustOK(t, "ExchangeRefreshTokenForJWT", r.StatusCode, errs, err)
		return r
	}
	refused := func(value string) {
		t.Helper()
		r, errs, err := anon.ExchangeRefreshTokenForJWT(fusionauth.RefreshRequest{RefreshToken: value})
		if err != nil || r.StatusCode != 400 || errs == nil || len(errs.FieldErrors["refreshToken"]) == 0 {
			t.Fatalf("exchange of %q: %d %+v %v, want 400 [invalid]refreshToken", value, r.StatusCode, errs, err)
		}
	}

	// Exchange with rotation: a new value each time, the same id.
	first := exchange("session-a")
	second := exchange(first.RefreshToken)
	if second.RefreshTokenId != first.RefreshTokenId || second.RefreshToken == first.RefreshToken {
		t.Fatalf("rotation: ids %s → %s, values equal %v", first.RefreshTokenId, second.RefreshTokenId,
			second.RefreshToken == first.RefreshToken)
	}
	// The id the client stored at login revokes the session.
	rr, errs, err := c.RevokeRefreshTokenById(first.RefreshTokenId)
	mustOK(t, "RevokeRefreshTokenById", rr.StatusCode, errs, err)
	refused(second.RefreshToken)

	// Reuse of a rotated-away value revokes the session (the tenant's policy).
	b1 := exchange("session-b")
	refused("session-b")
	refused(b1.RefreshToken)

	// Logout(false, token) ends one session; LogoutWithRequest(global) all of them.
	lr, err := anon.Logout(false, "session-c")
	if err != nil || lr.StatusCode != 200 {
		t.Fatalf("Logout: %d %v", lr.StatusCode, err)
	}
	refused("session-c")
	exchange("session-d")
	lr, err = anon.LogoutWithRequest(fusionauth.LogoutRequest{Global: true, RefreshToken: "session-d"})
	if err != nil || lr.StatusCode != 200 {
		t.Fatalf("LogoutWithRequest: %d %v", lr.StatusCode, err)
	}
	list, errs, err := c.RetrieveRefreshTokens(userID)
	mustOK(t, "RetrieveRefreshTokens", list.StatusCode, errs, err)
	if len(list.RefreshTokens) != 0 {
		t.Fatalf("sessions after a global logout: %d, want 0", len(list.RefreshTokens))
	}
	// A logout with nothing to end still succeeds.
	if lr, err = anon.Logout(true, ""); err != nil || lr.StatusCode != 200 {
		t.Fatalf("Logout without a token: %d %v", lr.StatusCode, err)
	}
}
