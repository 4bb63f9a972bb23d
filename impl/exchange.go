package impl

import (
	"context"
	"errors"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

func errInvalidRefreshToken() *apiError {
	return fieldError("refreshToken", "[invalid]refreshToken", "The refresh token is unknown, revoked or expired.")
}

// ExchangeRefreshTokenForJWT implements POST /api/jwt/refresh. The store runs the
// exchange in one transaction that holds the token's row lock (and KEY SHARE on
// its user and application), so it cannot interleave with a revocation of it.
func (s *Server) ExchangeRefreshTokenForJWT(ctx context.Context, req gen.ExchangeRefreshTokenForJWTRequestObject) (gen.ExchangeRefreshTokenForJWTResponseObject, error) {
	var value *string
	var ttl *int32
	var bodyInfo *gen.EventInfo
	if b := req.Body; b != nil {
		value, ttl, bodyInfo = bodyText(b.RefreshToken), b.TimeToLiveInSeconds, b.EventInfo
	}
	if value == nil {
		value = bodyText(req.Params.RefreshToken)
	}
	if value == nil {
		return nil, fieldError("refreshToken", "[missing]refreshToken", "Give the refresh token in the body or the refresh_token cookie.")
	}
	info, err := eventInfo(ctx, bodyInfo)
	if err != nil {
		return nil, err
	}
	now := store.NowMillis()
	var successor string
	var pol policy
	decide := func(st store.ExchangeState) (store.ExchangePlan, error) {
		if !st.Application.Active || !st.UserActive {
			return store.ExchangePlan{}, store.ErrExchangeRefused
		}
		pol = effectivePolicy(st.Application.JWT, st.Tenant.JWT)
		if ttl != nil && (*ttl <= 0 || int64(*ttl) > pol.accessTTLSeconds) {
			return store.ExchangePlan{}, fieldError("timeToLiveInSeconds", "[invalid]timeToLiveInSeconds",
				"The lifetime must be between 1 second and the application's access-token lifetime.")
		}
		used := st.Token
		plan := store.ExchangePlan{StartInstant: used.StartInstant, ExpiresAt: used.ExpiresAt}
		if pol.sliding() {
			plan.StartInstant = now
			plan.ExpiresAt = pol.expiresAt(now, used.InsertInstant)
		}
		if pol.usage == policyOneTimeUse {
			successor = NewKeyValue()
			next := used
			next.ID = uuid.New()
			next.TokenHash = hashToken(successor)
			next.StartInstant, next.ExpiresAt = plan.StartInstant, plan.ExpiresAt
			plan.Successor = &next
			if pol.graceSeconds > 0 {
				plan.RetireAt = now + pol.graceSeconds*1000
			}
		}
		return plan, nil
	}
	state, plan, err := s.store.ExchangeRefreshToken(ctx, hashToken(*value), now, info, decide)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExchangeRefused):
		return nil, errInvalidRefreshToken()
	case err != nil:
		return nil, err
	}
	current, refreshValue := state.Token, *value
	if plan.Successor != nil {
		current, refreshValue = *plan.Successor, successor
	}
	lifetime := pol.accessTTLSeconds
	if ttl != nil {
		lifetime = int64(*ttl)
	}
	signed, err := s.signAccessToken(ctx, current, pol, now, lifetime)
	if err != nil {
		return nil, err
	}
	return gen.ExchangeRefreshTokenForJWT200JSONResponse{Token: signed, RefreshToken: refreshValue, RefreshTokenId: current.ID}, nil
}

// signAccessToken makes the access token for a refresh token: its user, its
// application, its tenant, and sid naming the refresh token itself.
func (s *Server) signAccessToken(ctx context.Context, rt store.RefreshToken, pol policy, now, lifetime int64) (string, error) {
	key, err := s.keys.accessTokenKey(ctx, rt.TenantID, pol)
	if err != nil {
		return "", err
	}
	issued := time.UnixMilli(now)
	claims := jwt.MapClaims{
		"iss":           s.issuer,
		"sub":           rt.UserID.String(),
		"aud":           rt.ApplicationID.String(),
		"applicationId": rt.ApplicationID.String(),
		"iat":           issued.Unix(),
		"exp":           issued.Unix() + lifetime,
		"jti":           uuid.NewString(),
		"tid":           rt.TenantID.String(),
		"sid":           rt.ID.String(),
	}
	tok := jwt.NewWithClaims(key.method, claims)
	tok.Header["kid"] = key.kid
	return tok.SignedString(key.key)
}
