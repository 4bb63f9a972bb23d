package impl_test

import (
	"net/url"
	"testing"

	"github.com/google/uuid"
)

// selector names what a revoke request selects, before it is put on the wire.
type selector struct {
	token         string
	userID, appID uuid.UUID
}

// transports put a selector on the wire in each way clients do.
var transports = []struct {
	name  string
	build func(sel selector) req
}{
	{"query", func(sel selector) req {
		q := url.Values{}
		if sel.token != "" {
			q.Set("token", sel.token)
		}
		if sel.userID != uuid.Nil {
			q.Set("userId", sel.userID.String())
		}
		if sel.appID != uuid.Nil {
			q.Set("applicationId", sel.appID.String())
		}
		return req{method: "DELETE", path: "/api/jwt/refresh?" + q.Encode()}
	}},
	{"go-client-empty-params", func(sel selector) req {
		// FusionAuth's Go client always sends all three parameters.
		q := "applicationId=" + idOrEmpty(sel.appID) + "&token=" + url.QueryEscape(sel.token) + "&userId=" + idOrEmpty(sel.userID)
		return req{method: "DELETE", path: "/api/jwt/refresh?" + q}
	}},
	{"typescript-null-params", func(sel selector) req {
		text := func(v string) string {
			if v == "" {
				return "null"
			}
			return url.QueryEscape(v)
		}
		q := "token=" + text(sel.token) + "&userId=" + text(idOrEmpty(sel.userID)) + "&applicationId=" + text(idOrEmpty(sel.appID))
		return req{method: "DELETE", path: "/api/jwt/refresh?" + q}
	}},
	{"json-body", func(sel selector) req {
		return req{method: "DELETE", path: "/api/jwt/refresh", body: bodyOf(sel, false)}
	}},
	{"json-body-with-event-info", func(sel selector) req {
		return req{method: "DELETE", path: "/api/jwt/refresh", body: bodyOf(sel, true)}
	}},
}

func idOrEmpty(id uuid.UUID) string {
	if id == uuid.Nil {
		return ""
	}
	return id.String()
}

func bodyOf(sel selector, withEventInfo bool) map[string]any {
	b := map[string]any{}
	if sel.token != "" {
		b["token"] = sel.token
	}
	if sel.userID != uuid.Nil {
		b["userId"] = sel.userID
	}
	if sel.appID != uuid.Nil {
		b["applicationId"] = sel.appID
	}
	if withEventInfo {
		b["eventInfo"] = map[string]any{"ipAddress": "192.0.2.7", "deviceName": "laptop", "userAgent": "test",
			"location": map[string]any{"city": "Denver", "latitude": 39.7, "longitude": -104.9}}
	}
	return b
}

// TestRevokeForms revokes through every documented form and every transport and
// checks that exactly the named tokens are gone, by SQL and through GET.
func TestRevokeForms(t *testing.T) {
	forms := []struct {
		name       string
		pick       func(w *world) selector
		removed    func(w *world) func(pair) int
		repeatCode int // status of the same request sent again
	}{
		{"token-only",
			func(w *world) selector { return selector{token: w.tokens[pair{w.users[0], w.apps[0]}][1]} },
			func(w *world) func(pair) int { return only(pair{w.users[0], w.apps[0]}, 1) },
			404},
		{"token-with-its-user-and-app",
			func(w *world) selector {
				return selector{token: w.tokens[pair{w.users[1], w.apps[2]}][0], userID: w.users[1], appID: w.apps[2]}
			},
			func(w *world) func(pair) int { return only(pair{w.users[1], w.apps[2]}, 1) },
			404},
		{"user-only",
			func(w *world) selector { return selector{userID: w.users[1]} },
			func(w *world) func(pair) int {
				return func(p pair) int { return countIf(p.user == w.users[1], w.tokens[p]) }
			},
			200},
		{"user-and-application",
			func(w *world) selector { return selector{userID: w.users[0], appID: w.apps[1]} },
			func(w *world) func(pair) int {
				return func(p pair) int { return countIf(p == pair{w.users[0], w.apps[1]}, w.tokens[p]) }
			},
			200},
		{"application-only",
			func(w *world) selector { return selector{appID: w.apps[2]} },
			func(w *world) func(pair) int {
				return func(p pair) int { return countIf(p.app == w.apps[2], w.tokens[p]) }
			},
			200},
	}
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			t.Parallel()
			s := newServer(t)
			for _, f := range forms {
				t.Run(f.name, func(t *testing.T) {
					s.t = t
					w := s.seed(3, 3, 2)
					before := s.remaining()
					r := tr.build(f.pick(w))
					s.expect(r, 200)
					s.expectRemaining(w, f.removed(w))
					s.expect(r, f.repeatCode)
					s.expectRemaining(w, f.removed(w))
					if len(before) == 0 {
						t.Fatal("seeding stored nothing")
					}
				})
			}
		})
	}
}

func only(target pair, n int) func(pair) int {
	return func(p pair) int {
		if p == target {
			return n
		}
		return 0
	}
}

func countIf(cond bool, values []string) int {
	if cond {
		return len(values)
	}
	return 0
}

// TestRevokeBodyOverridesQuery: a field in the body wins over the same parameter.
func TestRevokeBodyOverridesQuery(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 1, 1)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?userId=" + w.users[0].String(),
		body: map[string]any{"userId": w.users[1]}}, 200)
	s.expectRemaining(w, func(p pair) int { return countIf(p.user == w.users[1], w.tokens[p]) })
}

// TestRevokeDecisionOrder walks the contract's order of decision; every refusal
// leaves every token in place.
func TestRevokeDecisionOrder(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 1)
	other := s.seed(1, 1, 1) // a token of another user and application
	u0, u1, a0, a1 := w.users[0].String(), w.users[1].String(), w.apps[0].String(), w.apps[1].String()
	tok00 := url.QueryEscape(w.tokens[pair{w.users[0], w.apps[0]}][0])
	unknown := uuid.NewString()
	cases := []struct {
		name   string
		r      req
		status int
		codes  []string
	}{
		{"malformed userId in query", req{method: "DELETE", path: "/api/jwt/refresh?userId=nope"}, 400,
			[]string{"userId:[couldNotConvert]userId"}},
		{"malformed applicationId in query", req{method: "DELETE", path: "/api/jwt/refresh?applicationId=1234"}, 400,
			[]string{"applicationId:[couldNotConvert]applicationId"}},
		{"malformed ids beat an unknown token", req{method: "DELETE",
			path: "/api/jwt/refresh?token=zzz&userId=x&applicationId=y"}, 400,
			[]string{"applicationId:[couldNotConvert]applicationId", "userId:[couldNotConvert]userId"}},
		{"malformed userId in body", req{method: "DELETE", path: "/api/jwt/refresh",
			body: map[string]any{"userId": "not-a-uuid"}}, 400, []string{"userId:[couldNotConvert]userId"}},
		{"malformed applicationId in body", req{method: "DELETE", path: "/api/jwt/refresh",
			body: map[string]any{"applicationId": "g0000000-0000-0000-0000-000000000000"}}, 400,
			[]string{"applicationId:[couldNotConvert]applicationId"}},
		{"malformed token id in path", req{method: "DELETE", path: "/api/jwt/refresh/not-a-uuid"}, 400,
			[]string{"tokenId:[couldNotConvert]tokenId"}},
		{"nothing selected", req{method: "DELETE", path: "/api/jwt/refresh"}, 400, []string{":[invalid]"}},
		{"nothing selected, empty params", req{method: "DELETE", path: "/api/jwt/refresh?applicationId=&token=&userId="},
			400, []string{":[invalid]"}},
		{"nothing selected, empty body", req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{}},
			400, []string{":[invalid]"}},
		{"nothing selected, only eventInfo", req{method: "DELETE", path: "/api/jwt/refresh",
			body: map[string]any{"eventInfo": map[string]any{"location": map[string]any{}}}}, 400, []string{":[invalid]"}},
		{"unknown user", req{method: "DELETE", path: "/api/jwt/refresh?userId=" + unknown}, 400,
			[]string{"userId:[invalid]userId"}},
		{"unknown application", req{method: "DELETE", path: "/api/jwt/refresh?applicationId=" + unknown}, 400,
			[]string{"applicationId:[invalid]applicationId"}},
		{"unknown user and application", req{method: "DELETE",
			path: "/api/jwt/refresh?userId=" + unknown + "&applicationId=" + uuid.NewString()}, 400,
			[]string{"applicationId:[invalid]applicationId", "userId:[invalid]userId"}},
		{"unknown user on the token path", req{method: "DELETE", path: "/api/jwt/refresh?token=" + tok00 + "&userId=" + unknown},
			400, []string{"userId:[invalid]userId"}},
		{"unknown application on the token path", req{method: "DELETE",
			path: "/api/jwt/refresh?token=" + tok00 + "&applicationId=" + unknown}, 400,
			[]string{"applicationId:[invalid]applicationId"}},
		{"unknown user with a known application", req{method: "DELETE",
			path: "/api/jwt/refresh?userId=" + unknown + "&applicationId=" + a0}, 400, []string{"userId:[invalid]userId"}},
		{"unknown token", req{method: "DELETE", path: "/api/jwt/refresh?token=no-such-token"}, 404, nil},
		{"token of another user", req{method: "DELETE", path: "/api/jwt/refresh?token=" + tok00 + "&userId=" + u1}, 404, nil},
		{"token of another application (ours)", req{method: "DELETE",
			path: "/api/jwt/refresh?token=" + tok00 + "&applicationId=" + a1}, 404, nil},
		{"token of another user in body", req{method: "DELETE", path: "/api/jwt/refresh",
			body: map[string]any{"token": w.tokens[pair{w.users[0], w.apps[0]}][0], "userId": other.users[0]}}, 404, nil},
		{"unknown token id", req{method: "DELETE", path: "/api/jwt/refresh/" + unknown}, 404, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			s.expect(c.r, c.status, c.codes...)
			s.expectRemaining(w, none)
			s.expectRemaining(other, none)
		})
	}
	_ = u0
}

// TestRevokeByID revokes one token by id, then finds it gone; the second call is a 404.
func TestRevokeByID(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 2, 2)
	id := s.tokenIDs(w.users[0])[0]
	s.expect(req{method: "GET", path: "/api/jwt/refresh/" + id}, 200)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + id}, 200)
	s.expect(req{method: "GET", path: "/api/jwt/refresh/" + id}, 404)
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh/" + id}, 404)
	have := s.remaining()
	total := 0
	for _, n := range have {
		total += n
	}
	if total != 7 {
		t.Fatalf("tokens left: got %d, want 7", total)
	}
	for _, left := range s.tokenIDs(w.users[0]) {
		if left == id {
			t.Fatalf("revoked token %s still listed", id)
		}
	}
}

// TestRevokeExpiredToken: an expired token is absent for revocation and listing.
func TestRevokeExpiredToken(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 2)
	value := w.tokens[pair{w.users[0], w.apps[0]}][0]
	if _, err := s.Store.DB().Exec(`UPDATE refresh_tokens SET expires_at = 1 WHERE token_hash = sha256($1::bytea)`, value); err != nil {
		t.Fatal(err)
	}
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh?token=" + url.QueryEscape(value)}, 404)
	if ids := s.tokenIDs(w.users[0]); len(ids) != 1 {
		t.Fatalf("listed tokens: got %d, want 1", len(ids))
	}
}
