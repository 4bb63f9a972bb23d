package impl

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// The cookies FusionAuth uses for a browser session: the exchange sets them,
// logout clears them, and each may carry its credential into a request.
const (
	accessTokenCookie  = "access_token"
	refreshTokenCookie = "refresh_token"
)

// sessionCookie is an HttpOnly, same-site cookie for maxAge seconds, Secure when
// the request came over HTTPS.
func sessionCookie(name, value string, maxAge int64, secure bool) *http.Cookie {
	if maxAge < 1 {
		maxAge = 1
	}
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: int(maxAge), HttpOnly: true,
		Secure: secure, SameSite: http.SameSiteStrictMode}
}

// clearedCookie tells the browser to drop a session cookie now.
func clearedCookie(name string, secure bool) *http.Cookie {
	return &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure,
		SameSite: http.SameSiteStrictMode}
}

// requestIsSecure reports whether the request reached us over HTTPS: directly
// over TLS, or through a trusted proxy whose X-Forwarded-Proto says https.
// Decided only by the operations that set cookies, not for every request.
func (s *Server) requestIsSecure(ctx context.Context) bool {
	r := requestFrom(ctx)
	return r != nil && isSecure(r, s.trustedProxies)
}

// isSecure decides requestIsSecure for a request: X-Forwarded-Proto counts only
// when the direct peer is one of the trusted proxies.
func isSecure(r *http.Request, trusted []*net.IPNet) bool {
	if r.TLS != nil {
		return true
	}
	if len(trusted) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	for _, n := range trusted {
		if ip != nil && n.Contains(ip) {
			proto, _, _ := strings.Cut(r.Header.Get("X-Forwarded-Proto"), ",")
			return strings.EqualFold(strings.TrimSpace(proto), "https")
		}
	}
	return false
}
