package impl

import (
	"github.com/google/uuid"

	"refreshd/impl/store"
)

// Defaults used when neither the application (with an enabled jwtConfiguration)
// nor its tenant sets a value.
const (
	defaultAccessTokenTTLSeconds  = 3600
	defaultRefreshTokenTTLMinutes = 43200
	defaultSigningAlgorithm       = "HS256"

	policySlidingWindowWithMaxLimit = "SlidingWindowWithMaximumLifetime"
)

// policy is the token configuration in force for one application: each value is
// the application's when its jwtConfiguration is enabled and sets it, else the
// tenant's, else the default.
type policy struct {
	accessTTLSeconds   int64
	refreshTTLMinutes  int64
	expiration         string
	usage              string
	maxLifetimeMinutes int64
	graceSeconds       int64
	algorithm          string
	keyID              uuid.UUID // the Key Master key that signs access tokens; uuid.Nil: the built-in key for algorithm
}

func effectivePolicy(app, tenant store.JWTConfig) policy {
	pick := func(a, t, def int32) int64 {
		if app.Enabled && a > 0 {
			return int64(a)
		}
		if t > 0 {
			return int64(t)
		}
		return int64(def)
	}
	pickText := func(a, t, def string) string {
		if app.Enabled && a != "" {
			return a
		}
		if t != "" {
			return t
		}
		return def
	}
	p := policy{
		accessTTLSeconds:   pick(app.TimeToLiveInSeconds, tenant.TimeToLiveInSeconds, defaultAccessTokenTTLSeconds),
		refreshTTLMinutes:  pick(app.RefreshTokenTimeToLiveInMinutes, tenant.RefreshTokenTimeToLiveInMinutes, defaultRefreshTokenTTLMinutes),
		expiration:         pickText(app.RefreshTokenExpirationPolicy, tenant.RefreshTokenExpirationPolicy, "Fixed"),
		usage:              pickText(app.RefreshTokenUsagePolicy, tenant.RefreshTokenUsagePolicy, "Reusable"),
		maxLifetimeMinutes: pick(app.MaximumTimeToLiveInMinutes, tenant.MaximumTimeToLiveInMinutes, 0),
		graceSeconds:       pick(app.GracePeriodInSeconds, tenant.GracePeriodInSeconds, 0),
	}
	p.keyID, p.algorithm = signingChoice(app, tenant)
	return p
}

// signingChoice says what signs access tokens: the first that is set of the
// application's key, the application's algorithm (when its configuration is
// enabled), the tenant's key and the tenant's algorithm; else the built-in key
// for the default algorithm. A key id is a Key Master key; an algorithm the
// tenant's built-in key for it.
func signingChoice(app, tenant store.JWTConfig) (uuid.UUID, string) {
	key := func(text string) uuid.UUID {
		id, _ := uuid.Parse(text) // checked when stored
		return id
	}
	switch {
	case app.Enabled && app.AccessTokenKeyID != "":
		return key(app.AccessTokenKeyID), defaultSigningAlgorithm
	case app.Enabled && app.AccessTokenSigningAlgorithm != "":
		return uuid.Nil, app.AccessTokenSigningAlgorithm
	case tenant.AccessTokenKeyID != "":
		return key(tenant.AccessTokenKeyID), defaultSigningAlgorithm
	case tenant.AccessTokenSigningAlgorithm != "":
		return uuid.Nil, tenant.AccessTokenSigningAlgorithm
	}
	return uuid.Nil, defaultSigningAlgorithm
}

// expiresAt is the instant a token stops existing: start + TTL, and under the
// maximum-lifetime policy no later than insert + maximum.
func (p policy) expiresAt(start, insert int64) int64 {
	exp := start + p.refreshTTLMinutes*60_000
	if p.expiration == policySlidingWindowWithMaxLimit && p.maxLifetimeMinutes > 0 {
		exp = min(exp, insert+p.maxLifetimeMinutes*60_000)
	}
	return exp
}
