package impl

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

// ExchangeRefreshTokenForJWT implements POST /api/jwt/refresh. The database runs
// the whole exchange in one statement that holds the token's row lock, so it
// cannot interleave with a revocation of it; the access token is signed after,
// outside the transaction.
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
	secret, err := s.store.RotationSecret(ctx)
	if err != nil {
		return nil, err
	}
	next := nextValue(secret, *value)
	now := store.NowMillis()
	x := store.Exchange{Hash: hashToken(*value), NextHash: hashToken(next), Now: now, Address: clientIP(ctx), Info: info}
	if ttl != nil {
		x.TTLSeconds = *ttl
	}
	res, err := s.store.ExchangeRefreshToken(ctx, x)
	if err != nil {
		return nil, err
	}
	switch res.Outcome {
	case store.ExchangeOK:
	case store.ExchangeUserGone:
		return gen.ExchangeRefreshTokenForJWT404Response{}, nil
	case store.ExchangeBadTTL:
		return nil, errInvalidTTL()
	case store.ExchangeReuseRevoked:
		s.log.Warn("refresh token reuse detected: session revoked", "refreshTokenId", res.TokenID,
			"userId", res.UserID, "applicationId", res.ApplicationID)
		return nil, errInvalidRefreshToken()
	default: // not found, refused
		return nil, errInvalidRefreshToken()
	}
	pol := effectivePolicy(res.AppJWT, res.TenantJWT)
	lifetime := pol.accessTTLSeconds
	if ttl != nil {
		lifetime = int64(*ttl)
	}
	refreshValue := *value
	if res.AnswerNext {
		refreshValue = next
	}
	token := store.RefreshToken{ID: res.TokenID, TenantID: res.TenantID, UserID: res.UserID, ApplicationID: res.ApplicationID}
	signed, err := s.signAccessToken(ctx, token, pol, now, lifetime)
	if err != nil {
		return nil, err
	}
	secure := s.requestIsSecure(ctx)
	return exchanged{
		body: gen.ExchangeRefreshTokenForJWT200JSONResponse{Body: gen.JWTRefreshResponse{
			Token: signed, RefreshToken: refreshValue, RefreshTokenId: res.TokenID}},
		cookies: []*http.Cookie{
			sessionCookie(accessTokenCookie, signed, lifetime, secure),
			sessionCookie(refreshTokenCookie, refreshValue, (res.ExpiresAt-now)/1000, secure),
		},
	}, nil
}

func errInvalidTTL() *apiError {
	return fieldError("timeToLiveInSeconds", "[invalid]timeToLiveInSeconds",
		"The lifetime must be between 1 second and the application's access-token lifetime.")
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

// nextValue derives the value a one-time-use token rotates to from the value it
// replaces: HMAC-SHA256 keyed with the installation's rotation secret. Only the
// holder of the value (and the server) can compute it, so a reuse within the
// grace period can be answered with the current value although the server
// stores only hashes; values are unique, and so are the values they derive.
func nextValue(secret []byte, previous string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("refreshd rotation v2\x00"))
	mac.Write([]byte(previous))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
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
