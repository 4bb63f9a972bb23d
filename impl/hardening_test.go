package impl_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
)

// eventInfoOf returns the stored info of the one event recorded for a user, as
// PostgreSQL renders it.
func (s *testServer) eventInfos(user uuid.UUID) []string {
	s.t.Helper()
	var infos []string
	if err := s.Store.DB().Select(&infos, `SELECT (body->'info')::text FROM events WHERE user_id = $1 ORDER BY seq`, user); err != nil {
		s.t.Fatal(err)
	}
	return infos
}

// TestRevocationWithAnyEventInfo: text PostgreSQL cannot hold (U+0000), invalid
// UTF-8, lone surrogates, huge exact numbers and deep nesting in a revocation's or
// an exchange's eventInfo never make it fail: the token is revoked, and the event
// keeps the info with U+0000 stored as U+FFFD and the numbers exact.
func TestRevocationWithAnyEventInfo(t *testing.T) {
	s := newServer(t)
	w := s.seed(2, 1, 6)
	u0, u1, app := w.users[0], w.users[1], w.apps[0]
	tokens := w.tokens[pair{u0, app}]
	info := `{"deviceName":"a\u0000b","userAgent":"\ud800x","os":"` + "\xff" + `","data":{"k\u0000":"v\u0000",` +
		`"big":9223372036854775807,"bigger":123456789012345678901234567890,"deep":` +
		strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`

	t.Run("single token, JSON body", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh", body: `{"token":"` + tokens[0] + `","eventInfo":` + info + `}`}, 200)
		got := s.eventInfos(u0)
		if len(got) != 1 {
			t.Fatalf("events: got %d, want 1", len(got))
		}
		for _, want := range []string{"\"deviceName\": \"a\ufffdb\"", "\"userAgent\": \"\ufffdx\"", "\"os\": \"\ufffd\"",
			"\"k\ufffd\": \"v\ufffd\"", `"big": 9223372036854775807`, `"bigger": 123456789012345678901234567890`} {
			if !strings.Contains(got[0], want) {
				t.Errorf("stored info lacks %s: %.300s", want, got[0])
			}
		}
	})
	t.Run("concurrent single tokens, one batch or several", func(t *testing.T) {
		s.t = t
		var wg sync.WaitGroup
		status := make([]int, 4)
		for i := range status {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status[i] = s.do(req{method: "DELETE", path: "/api/jwt/refresh",
					body: `{"token":"` + tokens[1+i] + `","eventInfo":` + info + `}`}).Status
			}()
		}
		wg.Wait()
		for i, st := range status {
			if st != 200 {
				t.Errorf("revocation %d: status %d, want 200", i, st)
			}
		}
	})
	t.Run("bulk by user", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "DELETE", path: "/api/jwt/refresh", body: `{"userId":"` + u1.String() + `","eventInfo":` + info + `}`}, 200)
	})
	s.t = t
	s.expectRemaining(w, func(p pair) int {
		if p.user == u0 {
			return 5
		}
		return 6
	})
	t.Run("exchange", func(t *testing.T) {
		s.t = t
		s.expect(req{method: "POST", path: "/api/jwt/refresh", noKey: true,
			body: `{"refreshToken":"` + tokens[5] + `","eventInfo":` + info + `}`}, 200)
	})
}

// TestStoredTextIsChecked: a field stored as text (format: text in the contract)
// with U+0000 is refused as [invalid]F before anything is stored; so is a webhook
// header that could never be sent.
func TestStoredTextIsChecked(t *testing.T) {
	s := newServer(t)
	state := newDBState(t, s.Store.DB())
	nul := "a\x00b"
	hook := func(w map[string]any) map[string]any {
		base := map[string]any{"url": "https://example.com/h", "eventsEnabled": map[string]bool{"jwt.refresh": true}, "global": true}
		for k, v := range w {
			base[k] = v
		}
		return map[string]any{"webhook": base}
	}
	cases := []struct {
		name string
		r    req
		code string
	}{
		{"user email", req{method: "POST", path: "/api/user", body: map[string]any{"user": map[string]any{"email": nul}}},
			"user.email:[invalid]user.email"},
		{"user username", req{method: "POST", path: "/api/user/" + uuid.NewString(),
			body: map[string]any{"user": map[string]any{"username": nul}}}, "user.username:[invalid]user.username"},
		{"user first name", req{method: "POST", path: "/api/user",
			body: map[string]any{"user": map[string]any{"email": "x@example.com", "firstName": nul}}}, "user.firstName:[invalid]user.firstName"},
		{"application name", req{method: "POST", path: "/api/application",
			body: map[string]any{"application": map[string]any{"name": nul}}}, "application.name:[invalid]application.name"},
		{"tenant name", req{method: "POST", path: "/api/tenant", body: map[string]any{"tenant": map[string]any{"name": nul}}},
			"tenant.name:[invalid]tenant.name"},
		{"webhook url", req{method: "POST", path: "/api/webhook", body: hook(map[string]any{"url": "https://example.com/\x00"})},
			"webhook.url:[invalid]webhook.url"},
		{"webhook description", req{method: "POST", path: "/api/webhook", body: hook(map[string]any{"description": nul})},
			"webhook.description:[invalid]webhook.description"},
		{"webhook header value with NUL", req{method: "POST", path: "/api/webhook",
			body: hook(map[string]any{"headers": map[string]string{"X-A": nul}})}, "webhook.headers.X-A:[invalid]webhook.headers.X-A"},
		{"webhook header value with CR LF", req{method: "POST", path: "/api/webhook",
			body: hook(map[string]any{"headers": map[string]string{"X-A": "a\r\nX-B: b"}})}, "webhook.headers:[invalid]webhook.headers"},
		{"webhook header name", req{method: "POST", path: "/api/webhook",
			body: hook(map[string]any{"headers": map[string]string{"X A:": "b"}})}, "webhook.headers:[invalid]webhook.headers"},
		{"api key description", req{method: "POST", path: "/api/api-key",
			body: map[string]any{"apiKey": map[string]any{"description": nul}}}, "apiKey.description:[invalid]apiKey.description"},
	}
	before := state.mark(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			s.expect(c.r, 400, c.code)
			if !state.unchanged(t, before) {
				t.Fatalf("the database changed on a 400")
			}
		})
	}
}

// TestFreeFormJSONKeptExactly: numbers in metaData, user data and eventInfo come
// back exactly as sent — through the token listing, the user and the audit
// listing of events — with U+0000 as U+FFFD.
func TestFreeFormJSONKeptExactly(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	user, app := w.users[0], w.apps[0]
	numbers := `"max":9223372036854775807,"min":-9223372036854775808,"huge":123456789012345678901234567890,` +
		`"precise":0.1000000000000000055511151231257827,"kept":3.0,"tiny":4.9406564584124654e-324,"nul\u0000":"\u0000"`
	wantNumbers := []string{`"max":9223372036854775807`, `"min":-9223372036854775808`,
		`"huge":123456789012345678901234567890`, `"precise":0.1000000000000000055511151231257827`, `"kept":3.0`,
		`"tiny":0.0000`, "\"nul\ufffd\":\"\ufffd\""}
	contains := func(t *testing.T, what string, body []byte, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("%s lacks %s: %.600s", what, w, body)
			}
		}
	}
	s.expect(req{method: "POST", path: "/api/user/refresh-token/import", body: `{"refreshTokens":[{"token":"exact",` +
		`"userId":"` + user.String() + `","applicationId":"` + app.String() + `","startInstant":` + fmt.Sprint(nowMillis()-60_000) + `,` +
		`"metaData":{"device":{"name":"phone\u0000","lastAccessedInstant":9223372036854775807},"data":{` + numbers + `}}}]}`}, 200)

	list := s.expect(req{method: "GET", path: "/api/jwt/refresh?userId=" + user.String()}, 200)
	contains(t, "token listing", list.Body, append(wantNumbers, `"lastAccessedInstant":9223372036854775807`, "\"name\":\"phone\ufffd\"")...)
	ids := s.tokenIDs(user)
	byID := s.expect(req{method: "GET", path: "/api/jwt/refresh/" + ids[0]}, 200)
	contains(t, "token by id", byID.Body, wantNumbers...)

	// The case: revoking that token records its metadata in the event,
	// and the audit listing must still list it.
	s.expect(req{method: "DELETE", path: "/api/jwt/refresh", body: `{"token":"exact","eventInfo":{"data":{` + numbers + `}}}`}, 200)
	events := s.expect(req{method: "GET", path: "/api/event?userId=" + user.String()}, 200)
	contains(t, "event listing", events.Body, append(wantNumbers, `"lastAccessedInstant":9223372036854775807`)...)

	created := s.expect(req{method: "POST", path: "/api/user", body: `{"user":{"email":"exact@example.com","data":{` + numbers + `}}}`}, 200)
	contains(t, "created user", created.Body, wantNumbers[:5]...)
	contains(t, "created user", created.Body, wantNumbers[6])
	var out struct {
		User struct{ ID string } `json:"user"`
	}
	if err := json.Unmarshal(created.Body, &out); err != nil {
		t.Fatal(err)
	}
	read := s.expect(req{method: "GET", path: "/api/user/" + out.User.ID}, 200)
	contains(t, "user read back", read.Body, wantNumbers...)
}

// TestFreeFormNumbersOutOfRange: a free-form number beyond what a double-using
// client sends is refused, naming the free-form field, and changes nothing.
func TestFreeFormNumbersOutOfRange(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 1)
	state := newDBState(t, s.Store.DB())
	user, app := w.users[0].String(), w.apps[0].String()
	tok := w.tokens[pair{w.users[0], w.apps[0]}][0]
	before := state.mark(t)
	for _, n := range []string{"1e400", "-1.8e309", "1e-401", "0e99999999999999999999", "0.1e-400",
		"1" + strings.Repeat("0", 400), "0." + strings.Repeat("1", 401)} {
		for _, c := range []struct {
			r    req
			code string
		}{
			{req{method: "DELETE", path: "/api/jwt/refresh", body: `{"token":"` + tok + `","eventInfo":{"data":{"n":[` + n + `]}}}`},
				"eventInfo.data:[invalid]eventInfo.data"},
			{req{method: "POST", path: "/api/user/refresh-token/import", body: `{"refreshTokens":[{"token":"n","userId":"` + user +
				`","applicationId":"` + app + `","startInstant":1700000000000,"metaData":{"data":{"a":{"n":` + n + `}}}}]}`},
				"refreshTokens[0].metaData.data:[invalid]refreshTokens.metaData.data"},
			{req{method: "POST", path: "/api/user", body: `{"user":{"email":"n@example.com","data":{"n":` + n + `}}}`},
				"user.data:[invalid]user.data"},
			{req{method: "POST", path: "/api/jwt/refresh", noKey: true, body: `{"refreshToken":"` + tok + `","eventInfo":{"data":{"n":` + n + `}}}`},
				"eventInfo.data:[invalid]eventInfo.data"},
		} {
			t.Run(fmt.Sprintf("%.20s %s", n, c.r.path), func(t *testing.T) {
				s.t = t
				s.expect(c.r, 400, c.code)
				if !state.unchanged(t, before) {
					t.Fatal("the database changed on a 400")
				}
			})
		}
	}
}

// TestEventListingListsWhatIsStored: the audit listing passes stored events
// through as they are, so an event no decoder of ours would accept — say a
// number beyond int64 where the contract has an int64, as earlier versions could
// store — is still listed, unchanged.
func TestEventListingListsWhatIsStored(t *testing.T) {
	s := newServer(t)
	tenant, err := s.Store.DefaultTenant(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	body := `{"id": "` + uuid.NewString() + `", "type": "jwt.refresh-token.revoke", "tenantId": "` + tenant.ID.String() +
		`", "createInstant": 1, "refreshToken": {"metaData": {"device": {"lastAccessedInstant": 9223372036854775808}}}, "x": 1e300}`
	if _, err := s.Store.DB().Exec(`INSERT INTO events (id, tenant_id, type, create_instant, body)
		VALUES (gen_random_uuid(), $1, 'jwt.refresh-token.revoke', 1, $2::jsonb)`, tenant.ID, body); err != nil {
		t.Fatal(err)
	}
	resp := s.expect(req{method: "GET", path: "/api/event"}, 200)
	for _, want := range []string{`"lastAccessedInstant":9223372036854775808`, `"x":1` + strings.Repeat("0", 300) + `,`} {
		if !strings.Contains(string(resp.Body), want) {
			t.Errorf("listing lacks %.60s: %.300s", want, resp.Body)
		}
	}
}

// TestRefusedImportChangesNothing: an import refused with 400 leaves even the
// expired tokens holding its values in place (found by FuzzRequest: the lookup
// that explains a refusal used to delete them); a valid import of such a value
// frees it and succeeds.
func TestRefusedImportChangesNothing(t *testing.T) {
	s := newServer(t)
	w := s.seed(1, 1, 0)
	user, app := w.users[0].String(), w.apps[0].String()
	longAgo := fmt.Sprint(nowMillis() - 365*24*3600*1000) // expired at once: the default lifetime is 30 days
	imp := func(appID string) req {
		return req{method: "POST", path: "/api/user/refresh-token/import", body: `{"refreshTokens":[{"token":"reused",` +
			`"userId":"` + user + `","applicationId":"` + appID + `","startInstant":` + longAgo + `}]}`}
	}
	s.expect(imp(app), 200)
	state := newDBState(t, s.Store.DB())
	before := state.mark(t)
	s.expect(imp(uuid.NewString()), 400, "refreshTokens[0].applicationId:[invalid]refreshTokens.applicationId")
	if !state.unchanged(t, before) {
		t.Fatal("the database changed on a 400")
	}
	s.expect(imp(app), 200)
}
