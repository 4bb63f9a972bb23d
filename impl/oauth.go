package impl

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

// The paths of this server's OAuth and discovery endpoints.
const (
	revocationPath = "/oauth2/revoke"
	jwksPath       = "/.well-known/jwks.json"
)

// clientAuthRequired is the client authentication policy (FusionAuth's name)
// under which a client must send its secret; the others let it send its id alone.
const clientAuthRequired = "Required"

type httpRequestKey struct{}

// requestFrom returns the HTTP request a handler serves, for the headers the
// contract cannot declare (Authorization, Host).
func requestFrom(ctx context.Context) *http.Request {
	r, _ := ctx.Value(httpRequestKey{}).(*http.Request)
	return r
}

// GetOpenIDConfiguration implements GET /.well-known/openid-configuration.
func (s *Server) GetOpenIDConfiguration(ctx context.Context, _ gen.GetOpenIDConfigurationRequestObject) (gen.GetOpenIDConfigurationResponseObject, error) {
	base := s.publicBase(requestFrom(ctx))
	algs := []string{"HS256", "RS256", "ES256"}
	return gen.GetOpenIDConfiguration200JSONResponse{
		Issuer:                                 s.issuer,
		JwksUri:                                base + jwksPath,
		RevocationEndpoint:                     base + revocationPath,
		RevocationEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
		IdTokenSigningAlgValuesSupported:       &algs,
	}, nil
}

// publicBase is the scheme and host a client reached this server by: the
// request's own, or what a trusted proxy says in X-Forwarded-Proto and -Host.
func (s *Server) publicBase(r *http.Request) string {
	if r == nil {
		return ""
	}
	scheme := "http"
	if isSecure(r, s.trustedProxies) {
		scheme = "https"
	}
	host := r.Host
	if fwd := r.Header.Get("X-Forwarded-Host"); fwd != "" && fromTrustedProxy(r, s.trustedProxies) {
		host, _, _ = strings.Cut(fwd, ",")
		host = strings.TrimSpace(host)
	}
	return scheme + "://" + host
}

// fromTrustedProxy reports whether the direct peer is one of the trusted proxies.
func fromTrustedProxy(r *http.Request, trusted []*net.IPNet) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	for _, n := range trusted {
		if ip != nil && n.Contains(ip) {
			return true
		}
	}
	return false
}

// oauthError is an error in OAuth's format (RFC 6749 §5.2), which RFC 7009
// answers with.
func oauthError(code gen.OAuth2ErrorError, description string) gen.OAuth2Error {
	return gen.OAuth2Error{Error: code, ErrorDescription: &description}
}

// RevokeOAuth2Token implements POST /oauth2/revoke (RFC 7009): the client
// authenticates as an application; a refresh token issued to that application is
// revoked with its event; any other token is left alone with the same answer.
func (s *Server) RevokeOAuth2Token(ctx context.Context, req gen.RevokeOAuth2TokenRequestObject) (gen.RevokeOAuth2TokenResponseObject, error) {
	if req.Body == nil || req.Body.Token == "" {
		return gen.RevokeOAuth2Token400JSONResponse(oauthError(gen.InvalidRequest, "The token to revoke is required.")), nil
	}
	r := requestFrom(ctx)
	clientID, secret, basic := basicCredentials(r)
	if basic && (req.Body.ClientId != nil || req.Body.ClientSecret != nil) {
		return gen.RevokeOAuth2Token400JSONResponse(oauthError(gen.InvalidRequest,
			"Authenticate the client one way: HTTP Basic or the form fields, not both.")), nil
	}
	if !basic {
		clientID, secret = deref(req.Body.ClientId), deref(req.Body.ClientSecret)
	}
	app, err := s.authenticateClient(ctx, clientID, secret)
	if errors.Is(err, errInvalidClient) {
		answer := gen.RevokeOAuth2Token401JSONResponse{Body: oauthError(gen.InvalidClient, "The client could not be authenticated.")}
		if basic {
			challenge := `Basic realm="` + revocationPath + `"`
			answer.Headers.WWWAuthenticate = &challenge
		}
		return answer, nil
	}
	if err != nil {
		return nil, err
	}
	info, err := eventInfo(ctx, nil)
	if err != nil {
		return nil, err
	}
	// The application scopes the revocation: another client's token is not found.
	res, err := s.store.RevokeByToken(ctx, store.Scope{TenantID: &app.TenantID}, hashToken(req.Body.Token), nil, &app.ID, info)
	if err != nil {
		return nil, err
	}
	s.metrics.revoked(formOAuth, res.Revoked, res.Revoked > 0)
	return gen.RevokeOAuth2Token200Response{}, nil
}

var errInvalidClient = errors.New("invalid client")

// basicCredentials reads HTTP Basic client credentials, whose parts RFC 6749
// §2.3.1 form-urlencodes.
func basicCredentials(r *http.Request) (id, secret string, ok bool) {
	if r == nil {
		return "", "", false
	}
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		return "", "", false
	}
	id, errID := url.QueryUnescape(rawID)
	secret, errSecret := url.QueryUnescape(rawSecret)
	if errID != nil || errSecret != nil {
		return rawID, rawSecret, true
	}
	return id, secret, true
}

// authenticateClient finds the active application with the client id and checks
// its secret, unless its policy lets it go without one. errInvalidClient when
// either fails.
func (s *Server) authenticateClient(ctx context.Context, clientID, secret string) (store.Application, error) {
	if clientID == "" {
		return store.Application{}, errInvalidClient
	}
	app, err := s.store.ApplicationByClientID(ctx, clientID)
	if errors.Is(err, store.ErrNotFound) {
		return app, errInvalidClient
	}
	if err != nil {
		return app, err
	}
	if !app.Active {
		return app, errInvalidClient
	}
	needsSecret := app.ClientAuthenticationPolicy == clientAuthRequired || app.ClientAuthenticationPolicy == ""
	if secret == "" && !needsSecret {
		return app, nil
	}
	if secret == "" || app.ClientSecretHash == nil ||
		subtle.ConstantTimeCompare(hashClientSecret(secret), app.ClientSecretHash) != 1 {
		return app, errInvalidClient
	}
	return app, nil
}

// hashClientSecret is how client secrets are stored: their SHA-256.
func hashClientSecret(secret string) []byte { return HashKey(secret) }

// ValidateJWT implements GET /api/jwt/validate: FusionAuth's signature and expiry
// check, and (ours) the access token's session must still be live.
func (s *Server) ValidateJWT(ctx context.Context, _ gen.ValidateJWTRequestObject) (gen.ValidateJWTResponseObject, error) {
	r := requestFrom(ctx)
	raw, ok := "", false
	if r != nil {
		raw, ok = bearer(r.Header.Get("Authorization"))
		if !ok {
			if c, err := r.Cookie(accessTokenCookie); err == nil && c.Value != "" {
				raw, ok = c.Value, true
			}
		}
	}
	if !ok {
		return gen.ValidateJWT401Response{}, nil
	}
	claims, err := s.verifyAccessToken(ctx, raw)
	if errors.Is(err, errInvalidAccessToken) {
		return gen.ValidateJWT401Response{}, nil
	}
	if err != nil {
		return nil, err
	}
	sid, _ := claims.all["sid"].(string)
	session, isID := parseUUID(sid)
	if !isID {
		return gen.ValidateJWT401Response{}, nil
	}
	live, err := s.store.SessionLive(ctx, claims.tenantID, session)
	if err != nil {
		return nil, err
	}
	if !live {
		return gen.ValidateJWT401Response{}, nil
	}
	return gen.ValidateJWT200JSONResponse{Jwt: claims.all}, nil
}

// clientIDFor is the client id an application gets when none is given: its id,
// as FusionAuth does.
func clientIDFor(id uuid.UUID) string { return id.String() }
