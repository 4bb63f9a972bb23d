package impl

import "refreshd/impl/store"

// Defaults used when neither the application (with an enabled jwtConfiguration)
// nor its tenant sets a value.
const (
	defaultAccessTokenTTLSeconds  = 3600
	defaultRefreshTokenTTLMinutes = 43200
	defaultSigningAlgorithm       = "HS256"

	policySlidingWindow             = "SlidingWindow"
	policySlidingWindowWithMaxLimit = "SlidingWindowWithMaximumLifetime"
	policyOneTimeUse                = "OneTimeUse"
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
	return policy{
		accessTTLSeconds:   pick(app.TimeToLiveInSeconds, tenant.TimeToLiveInSeconds, defaultAccessTokenTTLSeconds),
		refreshTTLMinutes:  pick(app.RefreshTokenTimeToLiveInMinutes, tenant.RefreshTokenTimeToLiveInMinutes, defaultRefreshTokenTTLMinutes),
		expiration:         pickText(app.RefreshTokenExpirationPolicy, tenant.RefreshTokenExpirationPolicy, "Fixed"),
		usage:              pickText(app.RefreshTokenUsagePolicy, tenant.RefreshTokenUsagePolicy, "Reusable"),
		maxLifetimeMinutes: pick(app.MaximumTimeToLiveInMinutes, tenant.MaximumTimeToLiveInMinutes, 0),
		graceSeconds:       pick(app.GracePeriodInSeconds, tenant.GracePeriodInSeconds, 0),
		algorithm:          pickText(app.AccessTokenSigningAlgorithm, tenant.AccessTokenSigningAlgorithm, defaultSigningAlgorithm),
	}
}

// sliding reports whether each use moves the token's start to now.
func (p policy) sliding() bool {
	return p.expiration == policySlidingWindow || p.expiration == policySlidingWindowWithMaxLimit
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
