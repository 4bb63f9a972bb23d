package impl

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	gen "refreshd/generated"
	"refreshd/impl/store"
)

func errInvalidRefreshToken() *apiError {
	return fieldError("refreshToken", "[invalid]refreshToken", "The refresh token is unknown, revoked or expired.")
}

// errReuseDetected ends an exchange whose decision was to revoke the session: the
// store commits the revocation, and the caller answers [invalid]refreshToken.
var errReuseDetected = errors.New("a rotated-away refresh token was reused")

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
	if cookie := bodyText(req.Params.RefreshToken); cookie != nil {
		value = cookie // FusionAuth: the cookie wins over the body
	}
	if value == nil {
		return nil, fieldError("refreshToken", "[missing]refreshToken", "Give the refresh token in the body or the refresh_token cookie.")
	}
	info, err := eventInfo(ctx, bodyInfo)
	if err != nil {
		return nil, err
	}
	now := store.NowMillis()
	var refreshValue string
	var pol policy
	decide := func(st store.ExchangeState) (store.ExchangePlan, error) {
		if st.Presented == store.PresentedRetired {
			if reuseRevokes(st.Tenant.JWT) {
				return store.ExchangePlan{Revoke: true}, nil
			}
			return store.ExchangePlan{}, store.ErrExchangeRefused
		}
		if !st.Application.Active || !st.UserActive {
			return store.ExchangePlan{}, store.ErrExchangeRefused
		}
		pol = effectivePolicy(st.Application.JWT, st.Tenant.JWT)
		if ttl != nil && (*ttl <= 0 || int64(*ttl) > pol.accessTTLSeconds) {
			return store.ExchangePlan{}, fieldError("timeToLiveInSeconds", "[invalid]timeToLiveInSeconds",
				"The lifetime must be between 1 second and the application's access-token lifetime.")
		}
		used := st.Token
		plan := store.ExchangePlan{StartInstant: used.StartInstant, ExpiresAt: used.ExpiresAt,
			LastAccessedAddress: clientIP(ctx)}
		if pol.sliding() {
			plan.StartInstant = now
			plan.ExpiresAt = pol.expiresAt(now, used.InsertInstant)
		}
		switch {
		case st.Presented == store.PresentedPrevious:
			// Within the grace period of the last rotation: answer with the current
			// value, which the value presented derives, and do not rotate again.
			current := nextValue(st.RotationSecret, used.ID, used.Generation, *value)
			if !hmac.Equal(hashToken(current), used.TokenHash) {
				return store.ExchangePlan{}, store.ErrExchangeRefused
			}
			refreshValue = current
		case pol.usage == policyOneTimeUse:
			refreshValue = nextValue(st.RotationSecret, used.ID, used.Generation+1, *value)
			plan.NextHash = hashToken(refreshValue)
			if pol.graceSeconds > 0 { // else no grace at all, even for an exchange that started earlier
				plan.GraceUntil = now + pol.graceSeconds*1000
			}
		default:
			refreshValue = *value
		}
		return plan, nil
	}
	state, plan, err := s.store.ExchangeRefreshToken(ctx, hashToken(*value), now, info, decide)
	switch {
	case errors.Is(err, store.ErrUserGone):
		return gen.ExchangeRefreshTokenForJWT404Response{}, nil
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExchangeRefused):
		return nil, errInvalidRefreshToken()
	case err != nil:
		return nil, err
	case plan.Revoke:
		s.log.Warn("refresh token reuse detected: session revoked", "refreshTokenId", state.Token.ID,
			"userId", state.Token.UserID, "applicationId", state.Token.ApplicationID)
		return nil, errInvalidRefreshToken()
	}
	lifetime := pol.accessTTLSeconds
	if ttl != nil {
		lifetime = int64(*ttl)
	}
	signed, err := s.signAccessToken(ctx, state.Token, pol, now, lifetime)
	if err != nil {
		return nil, err
	}
	secure := requestIsSecure(ctx)
	return exchanged{
		body: gen.ExchangeRefreshTokenForJWT200JSONResponse{Body: gen.JWTRefreshResponse{
			Token: signed, RefreshToken: refreshValue, RefreshTokenId: state.Token.ID}},
		cookies: []*http.Cookie{
			sessionCookie(accessTokenCookie, signed, lifetime, secure),
			sessionCookie(refreshTokenCookie, refreshValue, (plan.ExpiresAt-now)/1000, secure),
		},
	}, nil
}

// exchanged is a successful exchange: the generated answer, plus the cookies
// FusionAuth sets with it (the generated type can carry one Set-Cookie only).
type exchanged struct {
	body    gen.ExchangeRefreshTokenForJWT200JSONResponse
	cookies []*http.Cookie
}

// VisitExchangeRefreshTokenForJWTResponse writes the cookies, then the answer.
func (r exchanged) VisitExchangeRefreshTokenForJWTResponse(w http.ResponseWriter) error {
	for _, c := range r.cookies {
		http.SetCookie(w, c)
	}
	return r.body.VisitExchangeRefreshTokenForJWTResponse(w)
}

// nextValue derives the value a one-time-use token takes at a generation from
// the value it replaces: HMAC-SHA256 keyed with the tenant's rotation secret,
// over the token's id, the generation and the previous value. Only the holder of
// the previous value (and the server) can compute it, so a grace-period reuse
// can be answered with the current value although the server stores only hashes.
func nextValue(secret []byte, id uuid.UUID, generation int32, previous string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("refreshd rotation v1\x00"))
	mac.Write(id[:])
	var g [4]byte
	binary.BigEndian.PutUint32(g[:], uint32(generation))
	mac.Write(g[:])
	mac.Write([]byte(previous))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// reuseRevokes reports whether a reuse of a rotated-away value revokes its
// session: the tenant's policy decides, as in FusionAuth. The application's
// copy is never read: FusionAuth's Go client always sends it as false.
func reuseRevokes(tenant store.JWTConfig) bool {
	return tenant.RevocationPolicy != nil && tenant.RevocationPolicy.OnOneTimeTokenReuse
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
