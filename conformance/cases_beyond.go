package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// Sentences of openapi.yaml on what this server does beyond FusionAuth, verbatim
// (line breaks aside).
const (
	docOAuthRevoke    = "The refresh token named by `token` is revoked when it was issued to that application, with the usual `jwt.refresh-token.revoke` event;"
	docOAuthOther     = "a token that is unknown, expired, already revoked or another client's is left alone and the answer is the same 200"
	docOAuthClient    = "`invalid_client` (401, with `WWW-Authenticate: Basic`) when the client is unknown or its credentials are wrong."
	docDiscovery      = "Names the issuer, the JWKS and the RFC 7009 revocation endpoint with the client authentication methods it accepts."
	docReceipt        = "Receipts (ours): with `Prefer: return=representation` the answer is 200 with a `RevocationReceipt` naming the ids of the tokens revoked (at most 1,000; `count` is always exact)."
	docExcept         = "Ours: `exceptTokenId` with a `userId` (and optionally an `applicationId`) revokes all of that user's tokens but the one named — \"log out my other sessions\"."
	docExceptAT       = "With an access token it needs no `userId`: it is the token's user."
	docValidate       = "200 with its claims when it verifies with its tenant's key and has not expired; 401 with an empty body otherwise"
	docValidateRevoke = "and also (ours; FusionAuth checks only signature and expiry) when the session it belongs to (its `sid`, the refresh token's id) has been revoked or has expired"
)

// clientApp makes an application that is an OAuth client with the given client
// id, and returns its id and the client secret its create answered.
func (e *Env) clientApp(ctx context.Context, name, clientID string) (uuid.UUID, string, *Failure) {
	id, x, fail := e.createAppWith(ctx, name, gen.Application{OauthConfiguration: &gen.OAuthConfiguration{ClientId: &clientID}})
	if fail != nil {
		return id, "", fail
	}
	var out struct {
		Application struct {
			OauthConfiguration struct {
				ClientSecret string `json:"clientSecret"`
			} `json:"oauthConfiguration"`
		} `json:"application"`
	}
	if json.Unmarshal(x.body, &out) != nil || out.Application.OauthConfiguration.ClientSecret == "" {
		return id, "", e.shapeFailure(x, "200 with application.oauthConfiguration.clientSecret", []string{"no client secret in the answer"})
	}
	secret := out.Application.OauthConfiguration.ClientSecret
	e.label(secret, name+"'s client secret")
	return id, secret, nil
}

// oauthRevoke posts the form to /oauth2/revoke, with HTTP Basic credentials
// when clientID is set.
func (e *Env) oauthRevoke(ctx context.Context, form url.Values, clientID, secret string) *exchange {
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	if clientID != "" {
		r, _ := http.NewRequest(http.MethodPost, "/", nil)
		r.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
		h["Authorization"] = r.Header.Get("Authorization")
	}
	return e.raw(ctx, rawRequest{method: http.MethodPost, target: "/oauth2/revoke", body: []byte(form.Encode()), noKey: true, header: h})
}

// clientWorld is a user with one token for each of two client applications.
type clientWorld struct {
	w              *world
	mine, theirs   *token
	id, secret     string // the first application's client id and secret
	other, otherSe string
}

func (e *Env) newClientWorld(ctx context.Context) (*clientWorld, *Failure) {
	w := &world{e: e, base: time.Now().Add(-time.Minute).Truncate(time.Second).UnixMilli()}
	user, fail := e.createUser(ctx, "u1")
	if fail != nil {
		return nil, fail
	}
	cw := &clientWorld{w: w, id: "conformance-" + e.s.runID + "-" + randomHex(4), other: "conformance-" + e.s.runID + "-" + randomHex(4)}
	app1, secret1, fail := e.clientApp(ctx, "a1", cw.id)
	if fail != nil {
		return nil, fail
	}
	app2, secret2, fail := e.clientApp(ctx, "a2", cw.other)
	if fail != nil {
		return nil, fail
	}
	cw.secret, cw.otherSe = secret1, secret2
	w.users, w.apps = []uuid.UUID{user}, []uuid.UUID{app1, app2}
	cw.mine, cw.theirs = w.newToken(1, 1, "u1/a1/1"), w.newToken(1, 2, "u1/a2/1")
	if fail := w.store(ctx, cw.mine, cw.theirs); fail != nil {
		return nil, fail
	}
	return cw, nil
}

func beyondCases() []Case {
	return []Case{
		{ID: "oauth-revoke/own-token", Title: "RFC 7009: a client revokes its own refresh token",
			Source: sourceOpenAPI, Documented: []string{docOAuthRevoke}, Profile: ProfileStrict,
			Requirement: "For an application with oauthConfiguration.clientId set, POST /oauth2/revoke with the form token=<its token>&token_type_hint=refresh_token and HTTP Basic client credentials (the client id and the secret its create answered) answers 200 with an empty body; the token then no longer exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				cw, fail := e.newClientWorld(ctx)
				if fail != nil {
					return fail
				}
				x := e.oauthRevoke(ctx, url.Values{"token": {cw.mine.value}, "token_type_hint": {"refresh_token"}}, cw.id, cw.secret)
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				return e.expectGone(ctx, cw.mine.value, cw.mine.id, "After "+e.step(x)+".")
			}},
		{ID: "oauth-revoke/other-client", Title: "RFC 7009: another client's token and unknown tokens are left alone",
			Source: sourceOpenAPI, Documented: []string{docOAuthOther}, Profile: ProfileStrict,
			Requirement: "POST /oauth2/revoke by client a1 (form credentials client_id and client_secret) of a token issued to application a2, and of a value never issued, each answer 200 with an empty body; a2's token still exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				cw, fail := e.newClientWorld(ctx)
				if fail != nil {
					return fail
				}
				for _, token := range []string{cw.theirs.value, e.unknownToken()} {
					x := e.oauthRevoke(ctx, url.Values{"token": {token}, "client_id": {cw.id}, "client_secret": {cw.secret}}, "", "")
					if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
						return fail
					}
				}
				if _, fail := e.expectRefreshed(e.refresh(ctx, &cw.theirs.value)); fail != nil {
					fail.Note = "u1/a2/1 was issued to another client than the one that asked to revoke it."
					return fail
				}
				return nil
			}},
		{ID: "oauth-revoke/bad-client", Title: "RFC 7009: a client with a wrong secret is refused",
			Source: sourceOpenAPI, Documented: []string{docOAuthClient}, Profile: ProfileStrict,
			Requirement: "POST /oauth2/revoke of a1's token with HTTP Basic credentials naming a1's client id and a wrong secret answers 401 with {\"error\": \"invalid_client\"} and a WWW-Authenticate header starting with Basic; the token still exchanges.",
			Run: func(ctx context.Context, e *Env) *Failure {
				cw, fail := e.newClientWorld(ctx)
				if fail != nil {
					return fail
				}
				x := e.oauthRevoke(ctx, url.Values{"token": {cw.mine.value}}, cw.id, "not-the-secret")
				var body struct {
					Error string `json:"error"`
				}
				if x.err != nil || x.status != http.StatusUnauthorized || json.Unmarshal(x.body, &body) != nil ||
					body.Error != "invalid_client" || !strings.HasPrefix(x.header.Get("WWW-Authenticate"), "Basic") {
					return e.failAt(x, `401 with {"error": "invalid_client"} and WWW-Authenticate: Basic …`, http.StatusUnauthorized, nil)
				}
				if _, fail := e.expectRefreshed(e.refresh(ctx, &cw.mine.value)); fail != nil {
					fail.Note = "The revocation was refused."
					return fail
				}
				return nil
			}},
		{ID: "oauth-revoke/discovery", Title: "Discovery names the revocation endpoint",
			Source: sourceOpenAPI, Documented: []string{docDiscovery}, Profile: ProfileStrict,
			Requirement: "GET /.well-known/openid-configuration without an API key answers 200 with a JSON object whose revocation_endpoint is an absolute URL ending in /oauth2/revoke and whose revocation_endpoint_auth_methods_supported includes client_secret_basic.",
			Run: func(ctx context.Context, e *Env) *Failure {
				x := e.raw(ctx, rawRequest{method: http.MethodGet, target: "/.well-known/openid-configuration", noKey: true})
				var doc struct {
					Endpoint string   `json:"revocation_endpoint"`
					Methods  []string `json:"revocation_endpoint_auth_methods_supported"`
				}
				if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &doc) != nil {
					return e.failAt(x, "200 with the discovery document", http.StatusOK, nil)
				}
				u, err := url.Parse(doc.Endpoint)
				hasBasic := false
				for _, m := range doc.Methods {
					hasBasic = hasBasic || m == "client_secret_basic"
				}
				if err != nil || !u.IsAbs() || !strings.HasSuffix(u.Path, "/oauth2/revoke") || !hasBasic {
					return e.shapeFailure(x, "revocation_endpoint: an absolute URL ending in /oauth2/revoke; client_secret_basic supported",
						[]string{fmt.Sprintf("revocation_endpoint %q, methods %q", doc.Endpoint, doc.Methods)})
				}
				return nil
			}},
		{ID: "revoke/receipt/by-user", Title: "A revocation by user can ask for a receipt",
			Source: sourceOpenAPI, Documented: []string{docReceipt}, Profile: ProfileStrict,
			Requirement: "In a world of 2 users × 2 applications × 2 tokens, DELETE /api/jwt/refresh?userId=<u1> with Prefer: return=representation answers 200 with {\"revokedRefreshTokenIds\": the ids of u1's four tokens, \"count\": 4, \"truncated\": false}, and u1's tokens are revoked.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 2)
				if fail != nil {
					return fail
				}
				x := e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{UserId: ptr(w.user(1).String())},
					func(_ context.Context, r *http.Request) error {
						r.Header.Set("Prefer", "return=representation")
						return nil
					})
				var got struct {
					IDs       []string `json:"revokedRefreshTokenIds"`
					Count     int64    `json:"count"`
					Truncated bool     `json:"truncated"`
				}
				var want []string
				for _, t := range w.tokens {
					if t.userID == w.user(1) {
						want = append(want, t.id.String())
					}
				}
				sort.Strings(want)
				if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &got) != nil {
					return e.failAt(x, "200 with a RevocationReceipt", http.StatusOK, nil)
				}
				for i := range got.IDs {
					got.IDs[i] = strings.ToLower(got.IDs[i])
				}
				sort.Strings(got.IDs)
				if strings.Join(got.IDs, " ") != strings.Join(want, " ") || got.Count != int64(len(want)) || got.Truncated {
					return e.shapeFailure(x, fmt.Sprintf("the ids of u1's %d tokens, count %d, truncated false", len(want), len(want)),
						[]string{fmt.Sprintf("ids %s, count %d, truncated %v", e.show(strings.Join(got.IDs, " ")), got.Count, got.Truncated)})
				}
				return w.expectTokens(ctx, x, func(t *token) bool { return t.userID == w.user(1) })
			}},
		{ID: "revoke/except/api-key", Title: "Revoke all of a user's tokens but one",
			Source: sourceOpenAPI, Documented: []string{docExcept}, Profile: ProfileStrict,
			Requirement: "In a world of 2 users × 2 applications × 2 tokens, DELETE /api/jwt/refresh?userId=<u1>&exceptTokenId=<u1/a2/1's id> answers 200 with an empty body; every other token of u1 is revoked, u1/a2/1 and u2's tokens remain.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 2)
				if fail != nil {
					return fail
				}
				keep := w.tok(1, 2, 1)
				x := e.raw(ctx, rawRequest{method: http.MethodDelete,
					target: "/api/jwt/refresh?" + query("userId", w.user(1).String(), "exceptTokenId", keep.id.String())})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				return w.expectTokens(ctx, x, func(t *token) bool { return t.userID == w.user(1) && t != keep })
			}},
		{ID: "revoke/except/access-token", Title: "A user logs out their other sessions with their access token",
			Source: sourceOpenAPI, Documented: []string{docExcept, docExceptAT}, Profile: ProfileStrict,
			Requirement: "With Authorization: Bearer <the access token an exchange of u1/a1/1 answered> and no API key, DELETE /api/jwt/refresh?exceptTokenId=<the access token's session, u1/a1/1's id> answers 200 with an empty body; every other token of u1 is revoked, u1/a1/1 and u2's tokens remain.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 2, 2, 2)
				if fail != nil {
					return fail
				}
				keep := w.tok(1, 1, 1)
				jwt, fail := e.accessToken(ctx, keep)
				if fail != nil {
					return fail
				}
				x := e.raw(ctx, rawRequest{method: http.MethodDelete, target: "/api/jwt/refresh?exceptTokenId=" + keep.id.String(),
					noKey: true, header: bearer(jwt)})
				if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
					return fail
				}
				return w.expectTokens(ctx, x, func(t *token) bool { return t.userID == w.user(1) && t != keep })
			}},
		{ID: "validate/shape", Title: "A valid access token validates with its claims",
			Source: sourceOpenAPI, Documented: []string{docValidate}, Profile: ProfileCore,
			Requirement: "GET /api/jwt/validate with Authorization: Bearer <the access token an exchange of u1/a1/1 answered> and no API key answers 200 with {\"jwt\": {…}} whose sub is u1's id; with the token's signature altered it answers 401 with an empty body.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				jwt, fail := e.accessToken(ctx, w.tok(1, 1, 1))
				if fail != nil {
					return fail
				}
				x := e.raw(ctx, rawRequest{method: http.MethodGet, target: "/api/jwt/validate", noKey: true,
					header: bearer(jwt)})
				var got struct {
					JWT map[string]any `json:"jwt"`
				}
				if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &got) != nil ||
					!strings.EqualFold(fmt.Sprint(got.JWT["sub"]), w.user(1).String()) {
					return e.failAt(x, `200 with {"jwt": {…, "sub": {u1}}}`, http.StatusOK, nil)
				}
				tampered, fail := e.tampered(jwt, "u1's access token")
				if fail != nil {
					return fail
				}
				return e.expectEmpty(e.raw(ctx, rawRequest{method: http.MethodGet, target: "/api/jwt/validate", noKey: true,
					header: bearer(tampered)}), http.StatusUnauthorized)
			}},
		{ID: "validate/revoked-session", Title: "An access token of a revoked session no longer validates",
			Source: sourceOpenAPI, Documented: []string{docValidateRevoke}, Profile: ProfileStrict,
			Requirement: "After DELETE /api/jwt/refresh/{u1/a1/1's id}, GET /api/jwt/validate with the access token an exchange of u1/a1/1 answered before answers 401 with an empty body, while an access token of u1/a1/2 still answers 200.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 2)
				if fail != nil {
					return fail
				}
				dead, fail := e.accessToken(ctx, w.tok(1, 1, 1))
				if fail != nil {
					return fail
				}
				alive, fail := e.accessToken(ctx, w.tok(1, 1, 2))
				if fail != nil {
					return fail
				}
				before := e.raw(ctx, rawRequest{method: http.MethodGet, target: "/api/jwt/validate", noKey: true,
					header: bearer(dead)})
				if before.err != nil || before.status != http.StatusOK {
					return e.failAt(before, "200: u1/a1/1's session is live", http.StatusOK, nil)
				}
				if fail := e.expectEmpty(e.revokeByID(ctx, w.tok(1, 1, 1).id), http.StatusOK); fail != nil {
					return fail
				}
				x := e.raw(ctx, rawRequest{method: http.MethodGet, target: "/api/jwt/validate", noKey: true,
					header: bearer(dead)})
				if fail := e.expectEmpty(x, http.StatusUnauthorized); fail != nil {
					fail.Note = "The access token's session, u1/a1/1, was revoked by id."
					return fail
				}
				y := e.raw(ctx, rawRequest{method: http.MethodGet, target: "/api/jwt/validate", noKey: true,
					header: bearer(alive)})
				if y.err != nil || y.status != http.StatusOK {
					return e.failAt(y, "200: u1/a1/2's session is live", http.StatusOK, nil)
				}
				return nil
			}},
	}
}

// Sentences of openapi.yaml on the Shared Signals transmitter.
const (
	docSSF       = "Every revocation is published as a CAEP `session-revoked` Security Event Token (RFC 8417), signed with a key of the JWKS, to every stream of its tenant, by push (RFC 8935), through the same outbox as webhooks"
	docSSFStream = "`delivery.method` must be `urn:ietf:rfc:8935` (push) with an absolute http(s) `endpoint_url`;"
	docSSFVerify = "Queues a verification Security Event Token, carrying `state` when given, for the stream alone;"
)

const sessionRevokedURI = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

func ssfCases() []Case {
	return []Case{
		{ID: "ssf/configuration", Title: "The Shared Signals transmitter describes itself",
			Source: sourceOpenAPI, Documented: []string{docSSF}, Profile: ProfileStrict,
			Requirement: "GET /.well-known/ssf-configuration without an API key answers 200 with spec_version 1_0, a jwks_uri, delivery_methods_supported including urn:ietf:rfc:8935, and an absolute configuration_endpoint ending in /ssf/streams.",
			Run: func(ctx context.Context, e *Env) *Failure {
				x := e.raw(ctx, rawRequest{method: http.MethodGet, target: "/.well-known/ssf-configuration", noKey: true})
				var cfg struct {
					Version  string   `json:"spec_version"`
					JWKS     string   `json:"jwks_uri"`
					Methods  []string `json:"delivery_methods_supported"`
					Endpoint string   `json:"configuration_endpoint"`
				}
				if x.err != nil || x.status != http.StatusOK || json.Unmarshal(x.body, &cfg) != nil {
					return e.failAt(x, "200 with the transmitter configuration", http.StatusOK, nil)
				}
				u, err := url.Parse(cfg.Endpoint)
				push := false
				for _, m := range cfg.Methods {
					push = push || m == "urn:ietf:rfc:8935"
				}
				if cfg.Version != "1_0" || cfg.JWKS == "" || !push || err != nil || !u.IsAbs() || !strings.HasSuffix(u.Path, "/ssf/streams") {
					return e.shapeFailure(x, "spec_version 1_0, a jwks_uri, push delivery, configuration_endpoint …/ssf/streams",
						[]string{fmt.Sprintf("spec_version %q, jwks_uri %q, methods %q, configuration_endpoint %q", cfg.Version, cfg.JWKS, cfg.Methods, cfg.Endpoint)})
				}
				return nil
			}},
		{ID: "ssf/stream-lifecycle", Title: "A Shared Signals stream is created, read, changed, verified and deleted",
			Source: sourceOpenAPI, Documented: []string{docSSFStream, docSSFVerify}, Profile: ProfileStrict,
			Requirement: "POST /ssf/streams with a push delivery to https://receiver.invalid/push requesting session-revoked answers 201 with a stream_id and events_delivered holding session-revoked; GET /ssf/streams?stream_id= answers it (200); PATCH with a new description answers 200 with it; POST /ssf/verify answers 204; DELETE /ssf/streams?stream_id= answers 204, after which GET answers 404.",
			Run: func(ctx context.Context, e *Env) *Failure {
				endpoint := "https://receiver.invalid/push"
				body := gen.SSFStream{Delivery: &gen.SSFDelivery{Method: "urn:ietf:rfc:8935", EndpointUrl: &endpoint},
					EventsRequested: &[]string{sessionRevokedURI}, Description: ptr("conformance " + e.s.runID)}
				x := call(ctx, func(ctx context.Context) error {
					_, err := e.s.api.CreateSSFStreamWithResponse(ctx, nil, body)
					return err
				})
				var created struct {
					ID        uuid.UUID `json:"stream_id"`
					Delivered []string  `json:"events_delivered"`
				}
				if x.err != nil || x.status != http.StatusCreated || json.Unmarshal(x.body, &created) != nil || created.ID == uuid.Nil {
					return e.failAt(x, "201 with the stream and its stream_id", http.StatusCreated, nil)
				}
				f := fixture{kind: "stream", id: created.ID, tenant: tenantOf(ctx)}
				e.s.fx.add(f)
				e.made = append(e.made, f)
				e.label(created.ID.String(), "stream")
				if len(created.Delivered) != 1 || created.Delivered[0] != sessionRevokedURI {
					return e.shapeFailure(x, "events_delivered: [session-revoked]", []string{fmt.Sprintf("events_delivered %q", created.Delivered)})
				}
				get := func() *exchange {
					return call(ctx, func(ctx context.Context) error {
						_, err := e.s.api.ReadSSFStreamsWithResponse(ctx, &gen.ReadSSFStreamsParams{StreamId: &created.ID})
						return err
					})
				}
				if y := get(); y.err != nil || y.status != http.StatusOK || !strings.Contains(string(y.body), created.ID.String()) {
					return e.failAt(y, "200 with the stream", http.StatusOK, nil)
				}
				changed := "changed " + e.s.runID
				y := call(ctx, func(ctx context.Context) error {
					_, err := e.s.api.UpdateSSFStreamWithResponse(ctx, nil, gen.SSFStream{StreamId: &created.ID, Description: &changed})
					return err
				})
				if y.err != nil || y.status != http.StatusOK || !strings.Contains(string(y.body), changed) {
					return e.failAt(y, "200 with the changed description", http.StatusOK, nil)
				}
				v := call(ctx, func(ctx context.Context) error {
					_, err := e.s.api.VerifySSFStreamWithResponse(ctx, nil, gen.SSFVerificationRequest{StreamId: created.ID, State: ptr("conformance")})
					return err
				})
				if fail := e.expectEmpty(v, http.StatusNoContent); fail != nil {
					return fail
				}
				d := call(ctx, func(ctx context.Context) error {
					_, err := e.s.api.DeleteSSFStreamWithResponse(ctx, &gen.DeleteSSFStreamParams{StreamId: created.ID})
					return err
				})
				if fail := e.expectEmpty(d, http.StatusNoContent); fail != nil {
					return fail
				}
				if fail := e.expectEmpty(get(), http.StatusNotFound); fail != nil {
					fail.Note = "After " + e.step(d) + "."
					return fail
				}
				return nil
			}},
	}
}
