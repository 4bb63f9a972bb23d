package impl

import (
	"context"
	"net/http"

	gen "refreshd/generated"
)

// Logout implements POST /api/logout: anonymous, the refresh token is the
// credential. It revokes the token's session (or, with global, every token of
// its user) with the same events as DELETE /api/jwt/refresh, clears the session
// cookies, and answers 200 whether or not the token named a live session.
func (s *Server) Logout(ctx context.Context, req gen.LogoutRequestObject) (gen.LogoutResponseObject, error) {
	value := queryText(req.Params.RefreshToken)
	global := req.Params.Global != nil && *req.Params.Global
	var bodyInfo *gen.EventInfo
	if b := req.Body; b != nil {
		if v := bodyText(b.RefreshToken); v != nil {
			value = v
		}
		if b.Global != nil {
			global = *b.Global
		}
		bodyInfo = b.EventInfo
	}
	if value == nil {
		value = bodyText(req.Params.RefreshTokenCookie)
	}
	if value != nil {
		info, err := eventInfo(ctx, bodyInfo)
		if err != nil {
			return nil, err
		}
		n, err := s.store.EndSession(ctx, hashToken(*value), global, info)
		if err != nil {
			return nil, err
		}
		s.metrics.revoked(logoutForm(global), n, n > 0)
	}
	secure := s.requestIsSecure(ctx)
	return loggedOut{cookies: []*http.Cookie{clearedCookie(accessTokenCookie, secure), clearedCookie(refreshTokenCookie, secure)}}, nil
}

// loggedOut is a logout's answer: 200, empty, clearing both cookies (the
// generated type can carry one Set-Cookie only).
type loggedOut struct{ cookies []*http.Cookie }

// VisitLogoutResponse writes the cookies and the empty 200.
func (r loggedOut) VisitLogoutResponse(w http.ResponseWriter) error {
	for _, c := range r.cookies {
		http.SetCookie(w, c)
	}
	return gen.Logout200Response{}.VisitLogoutResponse(w)
}
