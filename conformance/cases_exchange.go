package conformance

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	gen "refreshd/generated"
)

// Sentences of openapi.yaml the exchange cases replay, verbatim (line breaks aside).
const (
	docExchangeNoKey   = "Needs no API key: the refresh token is the credential."
	docExchangeShape   = "A signed access token, and the refresh token to use next time."
	docExchangeMissing = "Errors: no refresh token → `[missing]refreshToken`;"
	docExchangeInvalid = "unknown, revoked or expired token, or its application deleted or deactivated, or its user deactivated → `[invalid]refreshToken`;"
	docExchangeRevoked = "Once any revocation has answered 200, no exchange sent afterwards succeeds with a token it revoked."
	docOneTimeUse      = "With `refreshTokenUsagePolicy: OneTimeUse` the answer carries a new refresh-token value for the same id and the value sent stops working."
	docClaims          = "The signed access token. Claims: iss, sub (user id), aud and applicationId (application id), iat, exp, jti, tid (tenant id) and sid (the id of the refresh token it came from); `kid` in the header."
	docJWKS            = "Lists the public half of every RSA and EC key, each with the `kid` that access tokens and webhook signatures name in their header: each tenant's built-in RS256 and ES256 keys,"
	docRS256           = "Default HS256 with a per-tenant secret; RS256 and ES256 tokens verify against /.well-known/jwks.json."
)

// Sentences of docs/fusionauth-compatibility.md on expiry.
const (
	docExpiry          = "A token has expired once its start instant plus the refresh-token lifetime lies in the past, or, under the maximum-lifetime policy, once its insert instant plus that maximum does."
	docExchangeExpired = "A token that is unknown, revoked or expired: 400 with `[invalid]refreshToken`; so is one whose application is deactivated or deleted, or whose user is deactivated."
	docRevokeExpired   = "Looked up by its hash, it is not found — 404 with an empty body — when it was never issued, is already revoked, has expired, or belongs to a user other than the `userId` given."
)

// refresh sends POST /api/jwt/refresh without an API key, with value (nil: none)
// as the body's refreshToken.
func (e *Env) refresh(ctx context.Context, value *string) *exchange {
	return call(ctx, func(ctx context.Context) error {
		_, err := e.s.api.ExchangeRefreshTokenForJWTWithResponse(ctx, nil, gen.RefreshRequest{RefreshToken: value}, withoutKey)
		return err
	})
}

// refreshed is the body of a successful exchange, decoded loosely.
type refreshed struct {
	Token          string `json:"token"`
	RefreshToken   string `json:"refreshToken"`
	RefreshTokenID string `json:"refreshTokenId"`
}

const refreshedShape = `200 with {"token": <a JWT>, "refreshToken": "…", "refreshTokenId": <a UUID>}`

// expectRefreshed checks a successful exchange: 200 with an access token, a
// refresh token and the refresh token's id.
func (e *Env) expectRefreshed(x *exchange) (refreshed, *Failure) {
	var r refreshed
	if x.err != nil || x.status != http.StatusOK {
		return r, e.failAt(x, refreshedShape, http.StatusOK, nil)
	}
	if err := json.Unmarshal(x.body, &r); err != nil {
		return r, e.shapeFailure(x, refreshedShape, []string{"the body is not an object whose token, refreshToken and refreshTokenId are strings"})
	}
	var problems []string
	if r.Token == "" {
		problems = append(problems, "token missing or empty")
	}
	if r.RefreshToken == "" {
		problems = append(problems, "refreshToken missing or empty")
	}
	if uuid.Validate(r.RefreshTokenID) != nil {
		problems = append(problems, fmt.Sprintf("refreshTokenId %q is not a UUID", r.RefreshTokenID))
	}
	if len(problems) > 0 {
		return r, e.shapeFailure(x, refreshedShape, problems)
	}
	return r, nil
}

// expectInvalidToken checks the answer to an exchange of a token that is not (or
// no longer) valid.
func (e *Env) expectInvalidToken(x *exchange) *Failure {
	return e.expect400(x, fieldCode("refreshToken", "[invalid]refreshToken"))
}

// jws is a compact JWS split into its parts.
type jws struct {
	header, claims map[string]any
	signed         []byte // "header.payload": what the signature covers
	signature      []byte
}

// parseJWS splits a compact JWS and decodes its header and claims; it does not verify.
func parseJWS(s string) (jws, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return jws{}, fmt.Errorf("token has %d dot-separated parts, not 3", len(parts))
	}
	var t jws
	for i, into := range []*map[string]any{&t.header, &t.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return jws{}, fmt.Errorf("token part %d is not unpadded base64url", i+1)
		}
		if json.Unmarshal(raw, into) != nil || *into == nil {
			return jws{}, fmt.Errorf("token part %d is not a JSON object", i+1)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) == 0 {
		return jws{}, errors.New("token part 3 (the signature) is not unpadded base64url")
	}
	t.signed, t.signature = []byte(parts[0]+"."+parts[1]), sig
	return t, nil
}

// claim returns a string claim or header field, "" when absent or not a string.
func claim(m map[string]any, name string) string {
	s, _ := m[name].(string)
	return s
}

// jwk is one key of /.well-known/jwks.json, decoded loosely.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// verifyRS256 checks an RS256 signature with an RSA key of a JWKS.
func verifyRS256(k jwk, t jws) error {
	if k.Kty != "RSA" {
		return fmt.Errorf("key %s has kty %q, not RSA", k.Kid, k.Kty)
	}
	n, errN := base64.RawURLEncoding.DecodeString(k.N)
	e, errE := base64.RawURLEncoding.DecodeString(k.E)
	if errN != nil || errE != nil || len(n) == 0 || len(e) == 0 || len(e) > 4 {
		return fmt.Errorf("key %s: n or e is not unpadded base64url of a big-endian integer", k.Kid)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	sum := sha256.Sum256(t.signed)
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], t.signature); err != nil {
		return fmt.Errorf("the signature does not verify with key %s", k.Kid)
	}
	return nil
}

// rs256 is the configuration of an application whose access tokens are signed RS256.
func rs256() *gen.JWTConfiguration {
	return &gen.JWTConfiguration{Enabled: ptr(true), TimeToLiveInSeconds: ptr(int32(3600)),
		AccessTokenSigningAlgorithm: ptr(gen.JWTConfigurationAccessTokenSigningAlgorithmRS256)}
}

func exchangeCases() []Case {
	cs := []Case{
		{ID: "exchange/shape", Title: "A refresh token is exchanged for an access token",
			Source: sourceOpenAPI, Documented: []string{docExchangeNoKey, docExchangeShape, docClaims}, Profile: ProfileCore,
			Requirement: "POST /api/jwt/refresh without an API key and with the body {\"refreshToken\": <u1's token>} answers 200 with token (a JWT: three unpadded base64url parts whose header is a JSON object naming a kid), a non-empty refreshToken and a UUID refreshTokenId that GET /api/jwt/refresh/{id} finds.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				x := e.refresh(ctx, &w.tok(1, 1, 1).value)
				r, fail := e.expectRefreshed(x)
				if fail != nil {
					return fail
				}
				t, err := parseJWS(r.Token)
				if err == nil && claim(t.header, "kid") == "" {
					err = errors.New("the token's header names no kid")
				}
				if err != nil {
					return e.shapeFailure(x, "token: a JWT whose header names a kid", []string{err.Error()})
				}
				id, _ := uuid.Parse(r.RefreshTokenID)
				e.label(id.String(), "refreshTokenId")
				if y := e.getByID(ctx, id); y.err != nil || y.status != http.StatusOK {
					f := e.failAt(y, "200: the refreshTokenId the exchange answered names a live token", http.StatusOK, nil)
					f.Note = "After " + e.step(x)
					return f
				}
				return nil
			}},
		{ID: "exchange/missing-token", Title: "An exchange without a refresh token is refused",
			Source: sourceOpenAPI, Documented: []string{docExchangeMissing}, Profile: ProfileCore,
			Requirement: "POST /api/jwt/refresh with the body {} (and no refresh_token cookie) answers 400 with exactly refreshToken: [missing]refreshToken.",
			Run: func(ctx context.Context, e *Env) *Failure {
				return e.expect400(e.refresh(ctx, nil), fieldCode("refreshToken", "[missing]refreshToken"))
			}},
		{ID: "exchange/unknown-token", Title: "An unknown refresh token is invalid",
			Source: sourceOpenAPI, Documented: []string{docExchangeInvalid}, Profile: ProfileCore,
			Requirement: "POST /api/jwt/refresh with a refresh token never issued answers 400 with exactly refreshToken: [invalid]refreshToken.",
			Run: func(ctx context.Context, e *Env) *Failure {
				return e.expectInvalidToken(e.refresh(ctx, ptr(e.unknownToken())))
			}},
	}
	// How each usage is sent here and named in the report, and which token it spares.
	revoked := map[string]struct{ title, request, kept string }{
		"by-token":        {"A token revoked by its value no longer exchanges", "DELETE /api/jwt/refresh?token=<u2/a2/1>", "its sibling u2/a2/2"},
		"by-user":         {"Tokens revoked by user no longer exchange", "DELETE /api/jwt/refresh?userId=u2", "u1/a2/1"},
		"by-user-and-app": {"Tokens revoked by user and application no longer exchange", "DELETE /api/jwt/refresh?userId=u2&applicationId=a2", "u2/a1/1"},
		"by-app":          {"Tokens revoked by application no longer exchange", "DELETE /api/jwt/refresh?applicationId=a2", "u2/a1/1"},
	}
	for _, u := range usages {
		r := revoked[u.id]
		cs = append(cs, Case{ID: "exchange/revoked/" + u.id, Title: r.title,
			Source: sourceOpenAPI, Documented: []string{docExchangeRevoked, docExchangeInvalid, u.doc}, Profile: ProfileCore,
			Requirement: "In a world of 2 users × 2 applications × 2 tokens, " + r.request + " answers 200; then exchanging each token it revoked answers 400 with exactly refreshToken: [invalid]refreshToken, and " + r.kept + ", which it spared, still exchanges (200 with token, refreshToken and refreshTokenId).",
			Run: exchangeRevoked(u.pick, u.kept, func(ctx context.Context, e *Env, s selector) *exchange {
				tok, user, app := s.values()
				return e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{Token: orNil(tok), UserId: orNil(user), ApplicationId: orNil(app)})
			})})
	}
	cs = append(cs,
		Case{ID: "exchange/revoked/by-id", Title: "A token revoked by its id no longer exchanges",
			Source: sourceOpenAPI, Documented: []string{docExchangeRevoked, docExchangeInvalid, docByID}, Profile: ProfileCore,
			Requirement: "In a world of 2 users × 2 applications × 2 tokens, DELETE /api/jwt/refresh/{id of u2/a2/1} answers 200; then exchanging u2/a2/1 answers 400 with exactly refreshToken: [invalid]refreshToken, and its sibling u2/a2/2 still exchanges.",
			Run: exchangeRevoked(func(w *world) selector { return selector{token: w.tok(2, 2, 1)} },
				func(w *world) *token { return w.tok(2, 2, 2) },
				func(ctx context.Context, e *Env, s selector) *exchange { return e.revokeByID(ctx, s.token.id) })},
		Case{ID: "exchange/expired", Title: "An expired refresh token is invalid, unlisted and not found",
			Source: sourceContract, Documented: []string{docExpiry, docExchangeExpired, docEmptyList, docRevokeExpired}, Profile: ProfileCore,
			Requirement: "For an application with jwtConfiguration {enabled: true, refreshTokenTimeToLiveInMinutes: 1}, a token imported with a startInstant two minutes ago has expired: its exchange answers 400 with exactly refreshToken: [invalid]refreshToken, GET /api/jwt/refresh?userId= does not list it, and DELETE /api/jwt/refresh?token=<it> answers 404 with an empty body.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorldWith(ctx, 1, 1, 0, &gen.JWTConfiguration{Enabled: ptr(true),
					TimeToLiveInSeconds: ptr(int32(3600)), RefreshTokenTimeToLiveInMinutes: ptr(int32(1))})
				if fail != nil {
					return fail
				}
				t := w.newToken(1, 1, "u1/a1/expired")
				t.start = w.base - time.Minute.Milliseconds() // two minutes ago or more
				t.expired = true
				if fail := w.store(ctx, t); fail != nil {
					return fail
				}
				const note = "Fixtures: user u1, application a1 with a refresh-token lifetime of 1 minute, and u1/a1/expired imported with a startInstant two minutes ago."
				x := e.refresh(ctx, &t.value)
				if fail := e.expectInvalidToken(x); fail != nil {
					fail.Note = note
					return fail
				}
				if fail := w.expectListed(ctx, x, nothing); fail != nil {
					fail.Note = note
					return fail
				}
				x = e.revokeQuery(ctx, gen.RevokeRefreshTokensParams{Token: &t.value})
				if fail := e.expectEmpty(x, http.StatusNotFound); fail != nil {
					fail.Note = note
					return fail
				}
				return nil
			}},
		Case{ID: "exchange/one-time-use", Title: "A one-time-use refresh token is replaced on use",
			Source: sourceOpenAPI, Documented: []string{docOneTimeUse, docExchangeInvalid}, Profile: ProfileCore,
			Requirement: "For an application with jwtConfiguration {enabled: true, refreshTokenUsagePolicy: OneTimeUse, refreshTokenOneTimeUseConfiguration: {gracePeriodInSeconds: 0}}, exchanging u1's token answers 200 with a refreshToken other than the one sent; exchanging the old one again answers 400 with exactly refreshToken: [invalid]refreshToken; the new one exchanges (200).",
			Run: func(ctx context.Context, e *Env) *Failure {
				// FusionAuth may require an access-token lifetime in an enabled configuration.
				cfg := &gen.JWTConfiguration{Enabled: ptr(true), TimeToLiveInSeconds: ptr(int32(3600)),
					RefreshTokenUsagePolicy: ptr(gen.OneTimeUse)}
				cfg.RefreshTokenOneTimeUseConfiguration = &struct {
					GracePeriodInSeconds *int32 `json:"gracePeriodInSeconds,omitempty"`
				}{GracePeriodInSeconds: ptr(int32(0))}
				w, fail := e.newWorldWith(ctx, 1, 1, 1, cfg)
				if fail != nil {
					return fail
				}
				old := w.tok(1, 1, 1)
				x := e.refresh(ctx, &old.value)
				r, fail := e.expectRefreshed(x)
				if fail != nil {
					return fail
				}
				if r.RefreshToken == old.value {
					return e.shapeFailure(x, "200 with a new refreshToken, not the one sent", []string{"refreshToken is the one sent"})
				}
				e.label(r.RefreshToken, "u1/a1/1's successor")
				if fail := e.expectInvalidToken(e.refresh(ctx, &old.value)); fail != nil {
					fail.Note = "The token sent a second time, after " + e.step(x) + " answered with its successor."
					return fail
				}
				if _, fail := e.expectRefreshed(e.refresh(ctx, &r.RefreshToken)); fail != nil {
					fail.Note = "The successor " + e.step(x) + " answered with."
					return fail
				}
				return nil
			}},
		Case{ID: "exchange/jwks/signature", Title: "An RS256 access token verifies with the published key",
			Source: sourceOpenAPI, Documented: []string{docRS256, docJWKS}, Profile: ProfileStrict,
			Requirement: "For an application with jwtConfiguration {enabled: true, accessTokenSigningAlgorithm: RS256}, the exchanged access token's header says alg RS256 and names a kid; GET /.well-known/jwks.json (without an API key) answers 200 with {\"keys\": […]} holding an RSA key with that kid, and the token's signature verifies with it (RSASSA-PKCS1-v1_5 with SHA-256).",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorldWith(ctx, 1, 1, 1, rs256())
				if fail != nil {
					return fail
				}
				x := e.refresh(ctx, &w.tok(1, 1, 1).value)
				r, fail := e.expectRefreshed(x)
				if fail != nil {
					return fail
				}
				t, err := parseJWS(r.Token)
				if err != nil {
					return e.shapeFailure(x, "token: an RS256 JWT", []string{err.Error()})
				}
				kid := claim(t.header, "kid")
				if alg := claim(t.header, "alg"); alg != "RS256" || kid == "" {
					return e.shapeFailure(x, "token: a JWT whose header says alg RS256 and names a kid",
						[]string{fmt.Sprintf("header alg %q, kid %q", alg, kid)})
				}
				e.label(kid, "kid")
				y := call(ctx, func(ctx context.Context) error {
					_, err := e.s.api.GetJWKSWithResponse(ctx, withoutKey)
					return err
				})
				const keysShape = `200 with {"keys": […]}`
				if y.err != nil || y.status != http.StatusOK {
					return e.failAt(y, keysShape, http.StatusOK, nil)
				}
				var set struct {
					Keys []jwk `json:"keys"`
				}
				if err := json.Unmarshal(y.body, &set); err != nil {
					return e.shapeFailure(y, keysShape, []string{"the body is not a JSON Web Key Set"})
				}
				for _, k := range set.Keys {
					if k.Kid != kid {
						continue
					}
					if err := verifyRS256(k, t); err != nil {
						f := e.shapeFailure(y, "the access token's signature verifies with the key named by its kid", []string{err.Error()})
						f.Note = "The access token came from " + e.step(x)
						return f
					}
					return nil
				}
				f := e.shapeFailure(y, "a key whose kid is the access token's", []string{fmt.Sprintf("%d keys, none with kid {kid}", len(set.Keys))})
				f.Note = "The access token came from " + e.step(x)
				return f
			}},
		Case{ID: "exchange/claims", Title: "An access token names its user, application and refresh token",
			Source: sourceOpenAPI, Documented: []string{docClaims}, Profile: ProfileStrict,
			Requirement: "The access token an exchange of u1's token for a1 answers with carries the claims sub = u1's id, applicationId = a1's id and sid = the refreshTokenId of the same answer.",
			Run: func(ctx context.Context, e *Env) *Failure {
				w, fail := e.newWorld(ctx, 1, 1, 1)
				if fail != nil {
					return fail
				}
				x := e.refresh(ctx, &w.tok(1, 1, 1).value)
				r, fail := e.expectRefreshed(x)
				if fail != nil {
					return fail
				}
				t, err := parseJWS(r.Token)
				if err != nil {
					return e.shapeFailure(x, "token: a JWT", []string{err.Error()})
				}
				var problems []string
				for _, c := range []struct{ name, want string }{
					{"sub", w.user(1).String()}, {"applicationId", w.app(1).String()}, {"sid", strings.ToLower(r.RefreshTokenID)},
				} {
					if got := claim(t.claims, c.name); strings.ToLower(got) != c.want {
						problems = append(problems, fmt.Sprintf("claim %s is %q, want %s", c.name, got, c.want))
					}
				}
				if len(problems) > 0 {
					return e.shapeFailure(x, "an access token with sub {u1}, applicationId {a1} and sid the answer's refreshTokenId", problems)
				}
				return nil
			}},
	)
	return cs
}

// exchangeRevoked revokes what pick selects with revoke in a world of 2 users ×
// 2 applications × 2 tokens, then checks that every token it revoked fails to
// exchange and that kept, which it spared, still exchanges.
func exchangeRevoked(pick func(w *world) selector, kept func(w *world) *token,
	revoke func(ctx context.Context, e *Env, s selector) *exchange) func(ctx context.Context, e *Env) *Failure {
	return func(ctx context.Context, e *Env) *Failure {
		w, fail := e.newWorld(ctx, 2, 2, 2)
		if fail != nil {
			return fail
		}
		sel := pick(w)
		x := revoke(ctx, e, sel)
		if fail := e.expectEmpty(x, http.StatusOK); fail != nil {
			fail.Note = w.layout()
			return fail
		}
		for _, t := range w.tokens {
			if !sel.gone(t) {
				continue
			}
			if fail := e.expectInvalidToken(e.refresh(ctx, &t.value)); fail != nil {
				fail.Note = fmt.Sprintf("%s was revoked by %s. %s", t.name, e.step(x), w.layout())
				return fail
			}
		}
		k := kept(w)
		if _, fail := e.expectRefreshed(e.refresh(ctx, &k.value)); fail != nil {
			fail.Note = fmt.Sprintf("%s was spared by %s. %s", k.name, e.step(x), w.layout())
			return fail
		}
		return nil
	}
}
