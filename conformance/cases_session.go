package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// Sentences of openapi.yaml on a session's life, verbatim (line breaks aside).
const (
	docStableID      = "The refresh token's id (`refreshTokenId`, the `sid` claim of the access token) identifies the session for its whole life: it never changes, so it can always be used to revoke the session."
	docGrace         = "Within `gracePeriodInSeconds` of that rotation, the value sent is still accepted: the answer then carries the current value, and nothing rotates again."
	docReuse         = "A rotated-away value presented after its grace period is a reuse: when the tenant's `jwtConfiguration.refreshTokenRevocationPolicy.onOneTimeTokenReuse` is true, the session is revoked"
	docReuseEvent    = "with a `jwt.refresh-token.revoke` event (ours; FusionAuth records none) — and the answer is `[invalid]refreshToken`;"
	docByIDStable    = "The id stays the same when a one-time-use token rotates, so the id a client learnt at login revokes its session after any number of exchanges."
	docAccessToken   = "Authentication: an API key, or the access token (JWT) of the user who owns the refresh token — as `Authorization: Bearer <JWT>` or in the `access_token` cookie."
	docATVerify      = "The access token must verify with its tenant's key and must not have expired; its subject must own the token, else 404 as for a token that does not exist."
	docATSingle      = "With an access token only the single-token form is allowed: a request without `token`, or naming another `userId`, is answered 401."
	docForm          = "as JSON, or as an `application/x-www-form-urlencoded` form so that a token value stays out of access logs"
	docLogoutFrom    = "It comes from the JSON body's `refreshToken`, else the `refreshToken` query parameter, else the `refresh_token` cookie."
	docLogoutWhat    = "Revokes that token's session, or with `global=true` (body or query) every refresh token of its user, recording the same `jwt.refresh-token.revoke` events as `DELETE /api/jwt/refresh` does for a single token or for a user."
	docLogoutAnswer  = "The answer clears the `access_token` and `refresh_token` cookies and is 200 with an empty body — also when the token is unknown, expired or absent: a logout never fails for want of a session."
	docLogoutRotated = "A recently rotated-away value of a one-time-use token also ends its session (ours: a client whose last exchange answer was lost still logs out)."
	docUserDelete    = "With `hardDelete=true` the user and all their refresh tokens are deleted in one transaction, which also records the `jwt.refresh-token.revoke` event of a revocation by user (when the user had a live token), as FusionAuth does;"
	docAppDelete     = "With `hardDelete=true` the application and all its refresh tokens are deleted in one transaction, which also records the `jwt.refresh-token.revoke` event of a revocation by application (ours);"
	docLastAccessed  = "Every exchange sets the token's `metaData.device.lastAccessedInstant` (now) and `lastAccessedAddress` (the caller's address)."
	docCookieWins    = "The token comes from the `refresh_token` cookie, else from the body's `refreshToken`: when both carry one, the cookie wins."
	docSetsCookies   = "The answer sets two HttpOnly cookies (`SameSite=Strict`, `Path=/`, and `Secure` when the request came over TLS or through a trusted proxy that says so): `access_token` (for the access token's lifetime) and `refresh_token` (for the refresh token's remaining life)."
	docInsertNow     = "When the token was made; defaults to now."
)

// oneTimeUse is the configuration of an application whose tokens rotate on each
// exchange, with a grace period in seconds.
func oneTimeUse(grace int32) *gen.JWTConfiguration {
	cfg := &gen.JWTConfiguration{Enabled: ptr(true), TimeToLiveInSeconds: ptr(int32(3600)),
		RefreshTokenUsagePolicy: ptr(gen.OneTimeUse)}
	cfg.RefreshTokenOneTimeUseConfiguration = &struct {
		GracePeriodInSeconds *int32 `json:"gracePeriodInSeconds,omitempty"`
	}{GracePeriodInSeconds: ptr(grace)}
	return cfg
}

// exchangeWith sends POST /api/jwt/refresh without an API key: body (nil: none)
// as JSON, and cookies as a Cookie header.
func (e *Env) exchangeWith(ctx context.Context, body map[string]any, cookies string) *exchange {
	rr := rawRequest{method: http.MethodPost, target: "/api/jwt/refresh", noKey: true, header: map[string]string{}}
	if body != nil {
		rr.body, _ = json.Marshal(body)
	}
	if cookies != "" {
		rr.header["Cookie"] = cookies
	}
	return e.raw(ctx, rr)
}

// logout sends POST /api/logout without an API key: query (may be ""), body
// (nil: none) as JSON, and cookies as a Cookie header.
func (e *Env) logout(ctx context.Context, query string, body map[string]any, cookies string) *exchange {
	rr := rawRequest{method: http.MethodPost, target: "/api/logout" + query, noKey: true, header: map[string]string{}}
	if body != nil {
		rr.body, _ = json.Marshal(body)
	}
	if cookies != "" {
		rr.header["Cookie"] = cookies
	}
	return e.raw(ctx, rr)
}

// cookiesOf reads the Set-Cookie headers of an answer, by name.
func cookiesOf(x *exchange) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: x.header}).Cookies() {
		out[c.Name] = c
	}
	return out
}

// rotate exchanges t's value n times, following the rotation, and returns the
// last answer; every answer must be a 200 naming t's id.
func (e *Env) rotate(ctx context.Context, t *token, n int) (string, *Failure) {
	value := t.value
	for i := 1; i <= n; i++ {
		x := e.refresh(ctx, &value)
		r, fail := e.expectRefreshed(x)
		if fail != nil {
			return "", fail
		}
		if r.RefreshToken == value {
			return "", e.shapeFailure(x, "200 with a new refreshToken, not the one sent", []string{"refreshToken is the one sent"})
		}
		if !strings.EqualFold(r.RefreshTokenID, t.id.String()) {
			return "", e.shapeFailure(x, fmt.Sprintf("refreshTokenId %s: the id the token had before it rotated", t.id),
				[]string{fmt.Sprintf("refreshTokenId %s after rotation %d", r.RefreshTokenID, i)})
		}
		value = r.RefreshToken
		e.label(value, fmt.Sprintf("%s after %d rotations", t.name, i))
	}
	return value, nil
}

// expectGone checks that a value no longer exchanges and that its token is no
// longer found by id.
func (e *Env) expectGone(ctx context.Context, value string, id uuid.UUID, why string) *Failure {
	if fail := e.expectInvalidToken(e.refresh(ctx, &value)); fail != nil {
		fail.Note = why
		return fail
	}
	if fail := e.expectEmpty(e.getByID(ctx, id), http.StatusNotFound); fail != nil {
		fail.Note = why
		return fail
	}
	return nil
}

// newTenant makes a tenant of the case's own with the given jwtConfiguration;
// the case works in it through the returned context. A key that may not make
// tenants skips the case.
func (e *Env) newTenant(ctx context.Context, name string, jwt *gen.JWTConfiguration) (context.Context, *Failure) {
	id := uuid.New()
	e.label(id.String(), name)
	f := fixture{kind: "tenant", id: id}
	e.s.fx.add(f)
	e.made = append(e.made, f)
	body := gen.TenantRequest{Tenant: gen.Tenant{Name: ptr(fmt.Sprintf("conformance %s %s %s", e.s.runID, name, id.String()[:8])),
		JwtConfiguration: jwt}}
	x := call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.CreateTenantWithIdWithResponse(ctx, id, body)
		return err
	})
	if x.err == nil && x.status == http.StatusUnauthorized {
		e.forget(f, x)
		return ctx, Skip("the API key may not create tenants, which this case needs")
	}
	if x.err != nil || x.status != http.StatusOK {
		e.forget(f, x)
		return ctx, e.setupFailure(x)
	}
	return inTenant(ctx, id), nil
}

// accessToken exchanges t (a Reusable token) and returns the access token.
func (e *Env) accessToken(ctx context.Context, t *token) (string, *Failure) {
	r, fail := e.expectRefreshed(e.refresh(ctx, &t.value))
	if fail != nil {
		fail.Step = "setup: " + fail.Step
		return "", fail
	}
	e.label(r.Token, t.name+"'s access token")
	return r.Token, nil
}

// tampered is an access token with one letter of its signature changed, so
// that it no longer verifies; a failure when the token is not a JWT.
func (e *Env) tampered(jwt, name string) (string, *Failure) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || len(parts[2]) < 4 {
		return "", e.shapeFailure(&exchange{method: http.MethodPost, target: "/api/jwt/refresh"}, "an access token that is a JWT", []string{"it is not"})
	}
	sig := []byte(parts[2])
	sig[1] ^= 1 // another base64url letter
	if sig[1] == '-' || sig[1] == '_' || sig[1] == 0 {
		sig[1] = 'A'
	}
	out := parts[0] + "." + parts[1] + "." + string(sig)
	e.label(out, name+", tampered")
	return out, nil
}

// refusedByValue revokes t by its value with header and no API key; the answer
// must be status with an empty body, and t must still exchange.
func (e *Env) refusedByValue(ctx context.Context, t *token, header map[string]string, status int) *Failure {
	x := e.raw(ctx, rawRequest{method: http.MethodDelete, target: "/api/jwt/refresh?token=" + url.QueryEscape(t.value),
		noKey: true, header: header})
	if fail := e.expectEmpty(x, status); fail != nil {
		return fail
	}
	if _, fail := e.expectRefreshed(e.refresh(ctx, &t.value)); fail != nil {
		fail.Note = t.name + " must survive " + e.step(x)
		return fail
	}
	return nil
}

// expectDeleted checks the tokens after x deleted their owner (a user or an
// application, what): those gone says went with it neither exchange nor are
// found by id; every other token still exchanges.
func (w *world) expectDeleted(ctx context.Context, x *exchange, gone func(*token) bool, what string) *Failure {
	e := w.e
	for _, t := range w.tokens {
		if gone(t) {
			if fail := e.expectGone(ctx, t.value, t.id, "After "+e.step(x)+"."); fail != nil {
				return fail
			}
		} else if _, fail := e.expectRefreshed(e.refresh(ctx, &t.value)); fail != nil {
			fail.Note = t.name + " belongs to another " + what + " than the one deleted."
			return fail
		}
	}
	return nil
}

// bearer is the header that presents an access token.
func bearer(jwt string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + jwt}
}

func sessionCases() []Case {
	return []Case{
		{ID: "exchange/one-time-use/stable-id", Title: "A one-time-use token keeps its id across rotations",
			Source: sourceOpenAPI, Documented: []string{docOneTimeUse, docStableID}, Profile: ProfileCore,
			Requirement: "For an application with one-time-use tokens (no grace period), exchanging u1/a1/1 three times, each time with the value the last answer carried, answers 200 each time with a new refreshToken and the refreshTokenId the token was listed with before; GET /api/jwt/refresh/{that id} then answers 200 with the insertInstant it had before. In the strict profile each access token's sid claim is that id too.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorldWith(ctx, 1, 1, 1, oneTimeUse(0))
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				before := e.getByID(ctx, t.id)
				var was struct {
					RefreshToken struct {
						InsertInstant int64 `json:"insertInstant"`
					} `json:"refreshToken"`
				}
				if before.status != http.StatusOK || json.Unmarshal(before.body, &was) != nil {
					return e.setupFailure(before)
				}
				value := t.value
				for i := 1; i <= 3; i++ {
					x := e.refresh(ctx, &value)
					r, fail := e.expectRefreshed(x)
					if fail != nil {
						return fail
					}
					var problems []string
					if r.RefreshToken == value {
						problems = append(problems, "refreshToken is the one sent")
					}
					if !strings.EqualFold(r.RefreshTokenID, t.id.String()) {
						problems = append(problems, fmt.Sprintf("refreshTokenId is %s", r.RefreshTokenID))
					}
					if jw, err := parseJWS(r.Token); e.s.profile == ProfileStrict && (err != nil || !strings.EqualFold(claim(jw.claims, "sid"), t.id.String())) {
						problems = append(problems, fmt.Sprintf("the access token's sid is %q", claim(jw.claims, "sid")))
					}
					if len(problems) > 0 {
						f := e.shapeFailure(x, fmt.Sprintf("rotation %d: 200 with a new refreshToken and refreshTokenId {u1/a1/1.id}", i), problems)
						f.Note = "{u1/a1/1.id} is the id GET /api/jwt/refresh?userId= listed before any exchange."
						return f
					}
					value = r.RefreshToken
					e.label(value, fmt.Sprintf("u1/a1/1 after %d rotations", i))
				}
				after := e.getByID(ctx, t.id)
				var is struct {
					RefreshToken struct {
						InsertInstant int64 `json:"insertInstant"`
					} `json:"refreshToken"`
				}
				if after.err != nil || after.status != http.StatusOK || json.Unmarshal(after.body, &is) != nil ||
					is.RefreshToken.InsertInstant != was.RefreshToken.InsertInstant {
					return e.failAt(after, fmt.Sprintf("200 with the token, insertInstant still %d", was.RefreshToken.InsertInstant), http.StatusOK, nil)
				}
				return nil
			}},
		{ID: "revoke-by-id/after-rotations", Title: "The id returned at login revokes the session after two rotations",
			Source: sourceOpenAPI, Documented: []string{docByIDStable, docStableID}, Profile: ProfileCore,
			Requirement: "For an application with one-time-use tokens, after u1/a1/1 was exchanged twice (following the rotation), DELETE /api/jwt/refresh/{the id it was listed with before} answers 200 with an empty body; the value the last exchange answered then no longer exchanges (400 [invalid]refreshToken) and GET by that id answers 404.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorldWith(ctx, 1, 1, 1, oneTimeUse(0))
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				value, fail := e.rotate(ctx, t, 2)
				if fail != nil {
					return fail
				}
				x := e.revokeByID(ctx, t.id)
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					fail.Note = "{u1/a1/1.id} is the id listed before u1/a1/1 was exchanged twice."
					return fail
				}
				return e.expectGone(ctx, value, t.id, "After "+e.step(x)+".")
			}},
		{ID: "exchange/one-time-use/grace", Title: "A reuse within the grace period answers the current value",
			Source: sourceOpenAPI, Documented: []string{docGrace}, Profile: ProfileCore,
			Requirement: "For an application with one-time-use tokens and a grace period of 60 s: exchanging u1/a1/1 answers a new value V; exchanging u1/a1/1 again answers 200 with V itself and the same refreshTokenId (no second live token: the user still has exactly one token listed); V then still exchanges, answering a value other than V.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorldWith(ctx, 1, 1, 1, oneTimeUse(60))
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				current, fail := e.rotate(ctx, t, 1)
				if fail != nil {
					return fail
				}
				x := e.refresh(ctx, &t.value)
				r, fail := e.expectRefreshed(x)
				if fail != nil {
					return fail
				}
				if r.RefreshToken != current || !strings.EqualFold(r.RefreshTokenID, t.id.String()) {
					return e.shapeFailure(x, "200 with refreshToken {u1/a1/1 after 1 rotations} and refreshTokenId {u1/a1/1.id}",
						[]string{fmt.Sprintf("refreshToken %s, refreshTokenId %s", e.show(r.RefreshToken), r.RefreshTokenID)})
				}
				listed, y, fail := w.list(ctx, w.user(1))
				if fail != nil {
					return fail
				}
				if len(listed) != 1 {
					return e.shapeFailure(y, "exactly one token listed: the session", []string{fmt.Sprintf("%d tokens listed", len(listed))})
				}
				z := e.refresh(ctx, &current)
				next, fail := e.expectRefreshed(z)
				if fail != nil {
					fail.Note = "The current value, after a reuse of the previous one within the grace period."
					return fail
				}
				if next.RefreshToken == current {
					return e.shapeFailure(z, "200 with a new refreshToken", []string{"refreshToken is the one sent"})
				}
				return nil
			}},
		{ID: "exchange/one-time-use/reuse-revokes", Title: "A reuse after the grace period revokes the session",
			Source: sourceOpenAPI, Documented: []string{docReuse, docReuseEvent}, Profile: ProfileCore,
			Requirement: "In a tenant of the case's own whose jwtConfiguration.refreshTokenRevocationPolicy.onOneTimeTokenReuse is true, for an application with one-time-use tokens (no grace period): exchanging u1/a1/1 answers a new value V; exchanging u1/a1/1 again answers 400 with exactly refreshToken: [invalid]refreshToken; then V no longer exchanges (400 [invalid]refreshToken) and GET /api/jwt/refresh/{u1/a1/1.id} answers 404. Skipped when the key may not create tenants. In the strict profile with webhooks, the reuse records exactly one jwt.refresh-token.revoke event for the token.",
			Run: func(ctx context.Context, e *Env) *Failure {
				ctx, fail := e.newTenant(ctx, "t1", &gen.JWTConfiguration{TimeToLiveInSeconds: ptr(int32(3600)),
					RefreshTokenTimeToLiveInMinutes: ptr(int32(43200)),
					RefreshTokenRevocationPolicy:    &gen.RefreshTokenRevocationPolicy{OnOneTimeTokenReuse: ptr(true)}})
				if fail != nil {
					return fail
				}
				w, fail := e.newWorldWith(ctx, 1, 1, 1, oneTimeUse(0))
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				current, fail := e.rotate(ctx, t, 1)
				if fail != nil {
					return fail
				}
				x := e.refresh(ctx, &t.value)
				if fail := e.expectInvalidToken(x); fail != nil {
					fail.Note = "u1/a1/1 was rotated away by an exchange before."
					return fail
				}
				if fail := e.expectGone(ctx, current, t.id, "The session's current value, after "+e.step(x)+" reused a rotated-away one."); fail != nil {
					return fail
				}
				if e.s.profile != ProfileStrict {
					return nil
				}
				return w.expectEvents(ctx, sentRevoke{x, &wantEvent{user: t.userID, app: t.appID, token: t, ttlApps: []uuid.UUID{t.appID}}})
			}},
		{ID: "logout/token", Title: "Logout revokes the token it names",
			Source: sourceOpenAPI, Documented: []string{docLogoutFrom, docLogoutWhat, docLogoutAnswer}, Profile: ProfileCore,
			Requirement: "POST /api/logout?global=false&refreshToken=<u1/a1/1> without an API key (as FusionAuth's Go client sends it) answers 200 with an empty body; u1/a1/1 then no longer exchanges and its sibling u1/a1/2 still does. With webhooks: exactly one jwt.refresh-token.revoke event, for u1/a1/1.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 2)
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x := e.logout(ctx, "?"+url.Values{"global": {"false"}, "refreshToken": {t.value}}.Encode(), nil, "")
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				if fail := e.expectGone(ctx, t.value, t.id, "After "+e.step(x)+"."); fail != nil {
					return fail
				}
				if _, fail := e.expectRefreshed(e.refresh(ctx, &w.tok(1, 1, 2).value)); fail != nil {
					fail.Note = "u1/a1/2 was spared by " + e.step(x)
					return fail
				}
				return w.expectEvents(ctx, sentRevoke{x, &wantEvent{user: t.userID, app: t.appID, token: t, ttlApps: []uuid.UUID{t.appID}}})
			}},
		{ID: "logout/global", Title: "A global logout revokes every token of the user",
			Source: sourceOpenAPI, Documented: []string{docLogoutFrom, docLogoutWhat}, Profile: ProfileCore,
			Requirement: "In a world of 2 users × 2 applications × 1 token, POST /api/logout with the JSON body {\"refreshToken\": <u1/a1/1>, \"global\": true} answers 200 with an empty body; then none of u1's tokens exchanges, and u2's still do. With webhooks: exactly one jwt.refresh-token.revoke event, of the userId form, naming both applications.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 1)
				if fail != nil {
					return fail
				}
				x := e.logout(ctx, "", map[string]any{"refreshToken": w.tok(1, 1, 1).value, "global": true}, "")
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				for _, t := range w.tokens {
					if t.userID == w.user(1) {
						if fail := e.expectGone(ctx, t.value, t.id, "After "+e.step(x)+"."); fail != nil {
							return fail
						}
					} else if _, fail := e.expectRefreshed(e.refresh(ctx, &t.value)); fail != nil {
						fail.Note = t.name + " belongs to another user than the one who logged out."
						return fail
					}
				}
				return w.expectEvents(ctx, sentRevoke{x, &wantEvent{user: w.user(1), ttlApps: w.apps}})
			}},
		{ID: "logout/cookie", Title: "Logout takes the token from the refresh_token cookie",
			Source: sourceOpenAPI, Documented: []string{docLogoutFrom}, Profile: ProfileCore,
			Requirement: "POST /api/logout with no query and no body, and the cookie refresh_token=<u1/a1/1>, answers 200 with an empty body; u1/a1/1 then no longer exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x := e.logout(ctx, "", nil, "refresh_token="+t.value)
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				return e.expectGone(ctx, t.value, t.id, "After "+e.step(x)+" with the cookie refresh_token={u1/a1/1}.")
			}},
		{ID: "logout/unknown", Title: "A logout with an unknown token succeeds",
			Source: sourceOpenAPI, Documented: []string{docLogoutAnswer}, Profile: ProfileCore,
			Requirement: "POST /api/logout?refreshToken=<a value never issued> answers 200 with an empty body, and so does POST /api/logout with no token at all.",
			Run: func(ctx context.Context, e *Env) *Failure {
				if fail := e.expectEmpty(e.logout(ctx, "?refreshToken="+url.QueryEscape(e.unknownToken()), nil, ""), http.StatusOK); fail != nil {
					return fail
				}
				return e.expectEmpty(e.logout(ctx, "", nil, ""), http.StatusOK)
			}},
		{ID: "logout/clears-cookies", Title: "Logout clears the session cookies",
			Source: sourceOpenAPI, Documented: []string{docLogoutAnswer}, Profile: ProfileCore,
			Requirement: "The answer to POST /api/logout?refreshToken=<u1/a1/1> carries Set-Cookie headers that remove the access_token and refresh_token cookies (an empty value with Max-Age=0, or an Expires in the past).",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				x := e.logout(ctx, "?refreshToken="+url.QueryEscape(w.tok(1, 1, 1).value), nil, "")
				cookies := cookiesOf(x)
				var problems []string
				for _, name := range []string{"access_token", "refresh_token"} {
					c := cookies[name]
					switch {
					case c == nil:
						problems = append(problems, "no Set-Cookie for "+name)
					case c.MaxAge >= 0 && (c.Expires.IsZero() || c.Expires.After(time.Now())):
						problems = append(problems, fmt.Sprintf("Set-Cookie for %s does not remove it: %s", name, c.String()))
					}
				}
				if x.err != nil || x.status != http.StatusOK || len(problems) > 0 {
					f := e.failAt(x, "200 with Set-Cookie headers removing access_token and refresh_token", http.StatusOK, nil)
					if len(problems) > 0 {
						f.Actual = strings.Join(problems, "; ")
					}
					return f
				}
				return nil
			}},
		{ID: "logout/rotated-away", Title: "Logout with a rotated-away value ends its session",
			Source: sourceOpenAPI, Documented: []string{docLogoutRotated}, Profile: ProfileStrict,
			Requirement: "For an application with one-time-use tokens, after u1/a1/1 was exchanged once (as if the client never saw the answer), POST /api/logout with {\"refreshToken\": <u1/a1/1>} answers 200 with an empty body, and the value the exchange answered no longer exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorldWith(ctx, 1, 1, 1, oneTimeUse(0))
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				current, fail := e.rotate(ctx, t, 1)
				if fail != nil {
					return fail
				}
				x := e.logout(ctx, "", map[string]any{"refreshToken": t.value}, "")
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				return e.expectGone(ctx, current, t.id, "After "+e.step(x)+", which named the value the session had before it rotated.")
			}},
		{ID: "revoke/access-token/own", Title: "A user revokes their own token with their access token",
			Source: sourceOpenAPI, Documented: []string{docAccessToken, docATVerify}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh?token=<u1/a1/1> with Authorization: Bearer <the access token an exchange of u1/a1/2 answered>, and no API key, answers 200 with an empty body; u1/a1/1 then no longer exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 2)
				if fail != nil {
					return fail
				}
				jwt, fail := e.accessToken(ctx, w.tok(1, 1, 2))
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x := e.raw(ctx, rawRequest{method: http.MethodDelete, target: "/api/jwt/refresh?token=" + url.QueryEscape(t.value),
					noKey: true, header: bearer(jwt)})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				return e.expectGone(ctx, t.value, t.id, "After "+e.step(x)+".")
			}},
		{ID: "revoke/access-token/other-user", Title: "An access token cannot revoke another user's token",
			Source: sourceOpenAPI, Documented: []string{docATVerify}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh?token=<u2/a1/1> with Authorization: Bearer <u1's access token> and no API key answers 404 with an empty body, and u2/a1/1 still exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 1, 1)
				if fail != nil {
					return fail
				}
				jwt, fail := e.accessToken(ctx, w.tok(1, 1, 1))
				if fail != nil {
					return fail
				}
				return e.refusedByValue(ctx, w.tok(2, 1, 1), bearer(jwt), http.StatusNotFound)
			}},
		{ID: "revoke/access-token/bulk", Title: "An access token cannot revoke in bulk",
			Source: sourceOpenAPI, Documented: []string{docATSingle}, Profile: ProfileCore,
			Requirement: "With Authorization: Bearer <u1's access token> and no API key, DELETE /api/jwt/refresh?userId=<u1>, ?applicationId=<a1> and ?userId=<u1>&applicationId=<a1> each answer 401 with an empty body, and every token remains.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 2)
				if fail != nil {
					return fail
				}
				jwt, fail := e.accessToken(ctx, w.tok(1, 1, 1))
				if fail != nil {
					return fail
				}
				var last *exchange
				for _, q := range []string{query("userId", w.user(1).String()), query("applicationId", w.app(1).String()),
					query("userId", w.user(1).String(), "applicationId", w.app(1).String())} {
					last = e.raw(ctx, rawRequest{method: http.MethodDelete, target: "/api/jwt/refresh?" + q, noKey: true,
						header: bearer(jwt)})
					if fail := e.expectEmpty(last, http.StatusUnauthorized); fail != nil {
						return fail
					}
				}
				return w.expectTokens(ctx, last, nothing)
			}},
		{ID: "revoke/access-token/invalid", Title: "An access token that does not verify is refused",
			Source: sourceOpenAPI, Documented: []string{docATVerify}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh?token=<u1/a1/1> with Authorization: Bearer <u1's access token with its signature altered> and no API key answers 401 with an empty body, and u1/a1/1 still exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 2)
				if fail != nil {
					return fail
				}
				jwt, fail := e.accessToken(ctx, w.tok(1, 1, 2))
				if fail != nil {
					return fail
				}
				tampered, fail := e.tampered(jwt, "u1's access token")
				if fail != nil {
					return fail
				}
				return e.refusedByValue(ctx, w.tok(1, 1, 1), bearer(tampered), http.StatusUnauthorized)
			}},
		{ID: "revoke-by-id/access-token-cookie", Title: "A user revokes their own token by id with the access_token cookie",
			Source: sourceOpenAPI, Documented: []string{docAccessToken}, Profile: ProfileCore,
			Requirement: "DELETE /api/jwt/refresh/{u1/a1/1.id} with the cookie access_token=<u1's access token> and no API key answers 200 with an empty body, and u1/a1/1 then no longer exchanges; the same for u2's token answers 404.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 1, 2)
				if fail != nil {
					return fail
				}
				jwt, fail := e.accessToken(ctx, w.tok(1, 1, 2))
				if fail != nil {
					return fail
				}
				cookie := map[string]string{"Cookie": "access_token=" + jwt}
				other := w.tok(2, 1, 1)
				x := e.raw(ctx, rawRequest{method: http.MethodDelete, target: "/api/jwt/refresh/" + other.id.String(), noKey: true, header: cookie})
				if fail := e.expectEmpty(x, http.StatusNotFound); fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x = e.raw(ctx, rawRequest{method: http.MethodDelete, target: "/api/jwt/refresh/" + t.id.String(), noKey: true, header: cookie})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				return e.expectGone(ctx, t.value, t.id, "After "+e.step(x)+".")
			}},
		{ID: "delete/user", Title: "A user's hard delete revokes their tokens",
			Source: sourceOpenAPI, Documented: []string{docUserDelete}, Profile: ProfileCore,
			Requirement: "In a world of 2 users × 2 applications × 1 token, DELETE /api/user/{u1}?hardDelete=true answers 200; then none of u1's tokens exchanges or is found by id, and u2's still exchange. With webhooks: exactly one jwt.refresh-token.revoke event, of the userId form, naming both applications.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 1)
				if fail != nil {
					return fail
				}
				hard := true
				x := call(ctx, func(ctx context.Context) error {
					_, err := e.s.api.DeleteUserWithResponse(ctx, w.user(1), &gen.DeleteUserParams{HardDelete: &hard})
					return err
				})
				if x.err != nil || x.status != http.StatusOK {
					return e.failAt(x, "200", http.StatusOK, nil)
				}
				if fail := w.expectDeleted(ctx, x, func(t *token) bool { return t.userID == w.user(1) }, "user"); fail != nil {
					return fail
				}
				return w.expectEvents(ctx, sentRevoke{x, &wantEvent{user: w.user(1), ttlApps: w.apps}})
			}},
		{ID: "delete/application", Title: "An application's hard delete revokes its tokens",
			Source: sourceOpenAPI, Documented: []string{docAppDelete}, Profile: ProfileCore,
			Requirement: "In a world of 2 users × 2 applications × 1 token, DELETE /api/application/{a2}?hardDelete=true answers 200; then none of a2's tokens exchanges or is found by id, and a1's still exchange. In the strict profile with webhooks: exactly one jwt.refresh-token.revoke event, of the applicationId form, for a2.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 1)
				if fail != nil {
					return fail
				}
				hard := true
				x := call(ctx, func(ctx context.Context) error {
					_, err := e.s.api.DeleteApplicationWithResponse(ctx, w.app(2), &gen.DeleteApplicationParams{HardDelete: &hard})
					return err
				})
				if x.err != nil || x.status != http.StatusOK {
					return e.failAt(x, "200", http.StatusOK, nil)
				}
				if fail := w.expectDeleted(ctx, x, func(t *token) bool { return t.appID == w.app(2) }, "application"); fail != nil {
					return fail
				}
				if e.s.profile != ProfileStrict {
					return nil
				}
				return w.expectEvents(ctx, sentRevoke{x, &wantEvent{app: w.app(2), ttlApps: []uuid.UUID{w.app(2)}}})
			}},
		{ID: "exchange/last-accessed", Title: "An exchange records when and from where the token was used",
			Source: sourceOpenAPI, Documented: []string{docLastAccessed}, Profile: ProfileCore,
			Requirement: "After exchanging u1/a1/1, GET /api/jwt/refresh/{u1/a1/1.id} shows metaData.device.lastAccessedInstant no earlier than a second before the exchange was sent, and a non-empty metaData.device.lastAccessedAddress.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				sent := time.Now().Add(-time.Second).UnixMilli()
				if _, fail := e.expectRefreshed(e.refresh(ctx, &t.value)); fail != nil {
					return fail
				}
				x := e.getByID(ctx, t.id)
				var got struct {
					RefreshToken struct {
						MetaData struct {
							Device struct {
								LastAccessedInstant int64  `json:"lastAccessedInstant"`
								LastAccessedAddress string `json:"lastAccessedAddress"`
							} `json:"device"`
						} `json:"metaData"`
					} `json:"refreshToken"`
				}
				if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &got) != nil {
					return e.failAt(x, "200 with the token", http.StatusOK, nil)
				}
				d := got.RefreshToken.MetaData.Device
				if d.LastAccessedInstant < sent || d.LastAccessedAddress == "" {
					return e.shapeFailure(x, fmt.Sprintf("metaData.device.lastAccessedInstant ≥ %d and a lastAccessedAddress", sent),
						[]string{fmt.Sprintf("lastAccessedInstant %d, lastAccessedAddress %q", d.LastAccessedInstant, d.LastAccessedAddress)})
				}
				return nil
			}},
		{ID: "exchange/cookie-wins", Title: "The refresh_token cookie wins over the body",
			Source: sourceOpenAPI, Documented: []string{docCookieWins}, Profile: ProfileCore,
			Requirement: "POST /api/jwt/refresh with the body {\"refreshToken\": <a value never issued>} and the cookie refresh_token=<u1/a1/1> answers 200 with refreshTokenId {u1/a1/1.id}.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				t := w.tok(1, 1, 1)
				x := e.exchangeWith(ctx, map[string]any{"refreshToken": e.unknownToken()}, "refresh_token="+t.value)
				r, fail := e.expectRefreshed(x)
				if fail != nil {
					fail.Note = "The cookie carried u1/a1/1."
					return fail
				}
				if !strings.EqualFold(r.RefreshTokenID, t.id.String()) {
					return e.shapeFailure(x, "refreshTokenId {u1/a1/1.id}", []string{"refreshTokenId " + r.RefreshTokenID})
				}
				return nil
			}},
		{ID: "exchange/sets-cookies", Title: "An exchange sets the session cookies",
			Source: sourceOpenAPI, Documented: []string{docSetsCookies}, Profile: ProfileCore,
			Requirement: "The answer to an exchange of u1/a1/1 carries Set-Cookie headers for access_token (the token answered) and refresh_token (the refreshToken answered), both HttpOnly and with a positive Max-Age or an Expires in the future.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				x := e.exchangeWith(ctx, map[string]any{"refreshToken": w.tok(1, 1, 1).value}, "")
				r, fail := e.expectRefreshed(x)
				if fail != nil {
					return fail
				}
				cookies := cookiesOf(x)
				var problems []string
				for name, want := range map[string]string{"access_token": r.Token, "refresh_token": r.RefreshToken} {
					c := cookies[name]
					switch {
					case c == nil:
						problems = append(problems, "no Set-Cookie for "+name)
					case c.Value != want:
						problems = append(problems, name+" is not the value answered in the body")
					case !c.HttpOnly:
						problems = append(problems, name+" is not HttpOnly")
					case c.MaxAge <= 0 && (c.Expires.IsZero() || c.Expires.Before(time.Now())):
						problems = append(problems, name+" expires at once")
					}
				}
				if len(problems) > 0 {
					return e.shapeFailure(x, "Set-Cookie for access_token and refresh_token, HttpOnly, with the values answered", problems)
				}
				return nil
			}},
		{ID: "import/insert-instant", Title: "An import without insertInstant is stamped with the time of import",
			Source: sourceOpenAPI, Documented: []string{docInsertNow}, Profile: ProfileCore,
			Requirement: "A token imported with a startInstant a minute in the past and no insertInstant is listed by GET /api/jwt/refresh/{id} with an insertInstant no earlier than a second before the import was sent.",
			Run: func(ctx context.Context, e *Env) *Failure {
				sent := time.Now().Add(-time.Second).UnixMilli()
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				x := e.getByID(ctx, w.tok(1, 1, 1).id)
				var got struct {
					RefreshToken struct {
						InsertInstant int64 `json:"insertInstant"`
					} `json:"refreshToken"`
				}
				if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &got) != nil {
					return e.failAt(x, "200 with the token", http.StatusOK, nil)
				}
				if got.RefreshToken.InsertInstant < sent {
					return e.shapeFailure(x, fmt.Sprintf("insertInstant ≥ %d", sent),
						[]string{fmt.Sprintf("insertInstant %d (the startInstant was %d)", got.RefreshToken.InsertInstant, w.tok(1, 1, 1).start)})
				}
				return nil
			}},
	}
}
