package impl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	oapimw "github.com/oapi-codegen/echo-middleware"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

const tenantHeader = "X-FusionAuth-TenantId"

// principal is who is calling: the API key and the tenant scope of the request,
// or, for the operations that accept one, a user's access token (user is set,
// and key is a stand-in that is locked to the token's tenant and allows nothing
// else, so that no check of key rights can mistake it for an API key).
type principal struct {
	key   store.APIKey
	scope store.Scope
	user  *uuid.UUID
}

type principalKey struct{}

const principalEchoKey = "refreshd.principal"

func errInvalidTenant() *apiError {
	return generalError("[invalid]tenantId", "The "+tenantHeader+" header does not name an existing tenant.")
}

// HashKey is how API keys are stored: the SHA-256 of the raw key.
func HashKey(raw string) []byte {
	sum := sha256.Sum256([]byte(raw))
	return sum[:]
}

// The security schemes of the contract.
const (
	schemeAPIKey            = "ApiKey"
	schemeAccessToken       = "AccessToken"
	schemeAccessTokenCookie = "AccessTokenCookie"
)

// authenticate is kin-openapi's AuthenticationFunc: it runs for exactly the
// operations the contract protects, once for each scheme the operation accepts
// until one succeeds, and leaves the principal on the Echo context for the
// handlers.
func (s *Server) authenticate(ctx context.Context, in *openapi3filter.AuthenticationInput) error {
	c := oapimw.GetEchoContext(ctx)
	if c == nil {
		return errors.New("authenticate: no echo context")
	}
	switch in.SecuritySchemeName {
	case schemeAPIKey:
		return s.authenticateKey(ctx, c)
	case schemeAccessToken:
		raw, ok := bearer(c.Request().Header.Get(echo.HeaderAuthorization))
		if !ok {
			return errUnauthorized
		}
		return s.authenticateAccessToken(ctx, c, raw)
	case schemeAccessTokenCookie:
		cookie, err := c.Cookie(accessTokenCookie)
		if err != nil || cookie.Value == "" {
			return errUnauthorized
		}
		return s.authenticateAccessToken(ctx, c, cookie.Value)
	}
	return fmt.Errorf("authenticate: unknown security scheme %q", in.SecuritySchemeName)
}

// bearer returns the credential of an "Authorization: Bearer …" header.
func bearer(header string) (string, bool) {
	const prefix = "Bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(header[len(prefix):]), true
}

// authenticateAccessToken accepts a user's own access token: it must verify with
// a signing key of its tenant and must not have expired. A tenant header, if
// any, must name the token's tenant.
func (s *Server) authenticateAccessToken(ctx context.Context, c echo.Context, raw string) error {
	claims, err := s.verifyAccessToken(ctx, raw)
	if errors.Is(err, errInvalidAccessToken) {
		return errUnauthorized
	}
	if err != nil {
		return err
	}
	if headers := c.Request().Header.Values(tenantHeader); len(headers) > 0 {
		if id, ok := parseUUID(headers[0]); len(headers) > 1 || !ok || id != claims.tenantID {
			return errUnauthorized
		}
	}
	tenant, user := claims.tenantID, claims.userID
	c.Set(principalEchoKey, &principal{
		key:   store.APIKey{TenantID: &tenant, Permissions: store.Permissions{Endpoints: map[string][]string{}}},
		scope: store.Scope{TenantID: &tenant},
		user:  &user,
	})
	return nil
}

// authenticateKey checks an API key, its endpoint permissions and the tenant
// header.
func (s *Server) authenticateKey(ctx context.Context, c echo.Context) error {
	req := c.Request()
	raw := req.Header.Get(echo.HeaderAuthorization)
	if _, isBearer := bearer(raw); raw == "" || isBearer {
		return errUnauthorized // an access token is never an API key: no lookup
	}
	var tenantID *uuid.UUID
	headerTenants := req.Header.Values(tenantHeader)
	malformedTenant := len(headerTenants) > 1
	if len(headerTenants) == 1 {
		id, ok := parseUUID(headerTenants[0])
		if ok {
			tenantID = &id
		} else {
			malformedTenant = true
		}
	}
	key, tenantExists, err := s.keyCache.authenticate(ctx, s.store, HashKey(raw), tenantID)
	if errors.Is(err, store.ErrNotFound) {
		return errUnauthorized
	}
	if err != nil {
		return err
	}
	if !key.Allows(endpointOf(c.Path()), req.Method) {
		return errUnauthorized
	}
	if malformedTenant || !tenantExists {
		return errInvalidTenant()
	}
	scope := store.Scope{TenantID: key.TenantID}
	if tenantID != nil {
		if key.TenantID != nil && *key.TenantID != *tenantID {
			return errUnauthorized
		}
		scope.TenantID = tenantID
	}
	c.Set(principalEchoKey, &principal{key: key, scope: scope})
	return nil
}

// endpointOf turns an Echo route template into the endpoint a key's permissions
// name: "/api/jwt/refresh/:tokenId" → "/api/jwt/refresh".
func endpointOf(route string) string {
	for {
		i := strings.LastIndexByte(route, '/')
		if i < 0 || !strings.HasPrefix(route[i+1:], ":") {
			return route
		}
		route = route[:i]
	}
}

type clientIPKey struct{}

// withRequestContext moves what handlers need from the Echo context into their
// context.Context: the principal, the caller's address (the direct peer, or
// X-Forwarded-For when the peer is a trusted proxy), and the request itself.
func (s *Server) withRequestContext(f gen.StrictHandlerFunc, _ string) gen.StrictHandlerFunc {
	return func(c echo.Context, request any) (any, error) {
		ctx := context.WithValue(c.Request().Context(), clientIPKey{}, c.RealIP())
		ctx = context.WithValue(ctx, httpRequestKey{}, c.Request())
		if p, ok := c.Get(principalEchoKey).(*principal); ok {
			ctx = context.WithValue(ctx, principalKey{}, p)
		}
		c.SetRequest(c.Request().WithContext(ctx))
		return f(c, request)
	}
}

func clientIP(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey{}).(string)
	return ip
}

// principalFrom returns the caller. Without one (an operation the contract leaves
// unprotected) it fails closed: the scope is a tenant that cannot exist, and the
// key is locked to it.
func principalFrom(ctx context.Context) *principal {
	if p, ok := ctx.Value(principalKey{}).(*principal); ok {
		return p
	}
	return &principal{scope: store.Scope{TenantID: &uuid.Nil}, key: store.APIKey{TenantID: &uuid.Nil}}
}

// parseUUID accepts exactly the 8-4-4-4-12 hex form.
func parseUUID(s string) (uuid.UUID, bool) {
	if !uuidRE.MatchString(s) {
		return uuid.UUID{}, false
	}
	id, err := uuid.Parse(s)
	return id, err == nil
}

// keyCacheTTL bounds how long a key found valid is believed without asking the
// database again. A key deleted through this process stops working at once; one
// deleted through another process sharing the database, within this time.
const keyCacheTTL = 5 * time.Second

// keyCache remembers successful key lookups (with the tenant header they came
// with) so that a request costs one database statement, not two.
type keyCache struct {
	mu      sync.Mutex
	entries map[string]keyCacheEntry
}

type keyCacheEntry struct {
	key          store.APIKey
	tenantExists bool
	until        time.Time
}

func (kc *keyCache) authenticate(ctx context.Context, st *store.Store, hash []byte, tenantID *uuid.UUID) (store.APIKey, bool, error) {
	id := string(hash)
	if tenantID != nil {
		id += tenantID.String()
	}
	now := time.Now()
	kc.mu.Lock()
	e, ok := kc.entries[id]
	kc.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.key, e.tenantExists, nil
	}
	key, tenantExists, err := st.Authenticate(ctx, hash, tenantID)
	if err != nil {
		return key, tenantExists, err
	}
	kc.mu.Lock()
	if kc.entries == nil || len(kc.entries) > 10_000 {
		kc.entries = map[string]keyCacheEntry{} // bounded: start over rather than grow
	}
	kc.entries[id] = keyCacheEntry{key: key, tenantExists: tenantExists, until: now.Add(keyCacheTTL)}
	kc.mu.Unlock()
	return key, tenantExists, nil
}

// forget drops every cached lookup, after a key was deleted.
func (kc *keyCache) forget() {
	kc.mu.Lock()
	kc.entries = nil
	kc.mu.Unlock()
}
