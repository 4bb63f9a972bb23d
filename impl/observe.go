package impl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"
)

// RequestIDHeader carries a request's id: the caller's when it sends a usable one,
// else one the server makes. The answer echoes it, and every log line written
// while serving the request names it.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// usableRequestID accepts what a proxy or client typically sends (a UUID, a
// trace id) and nothing that could forge or break a log line.
func usableRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

func newRequestID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}

// requestIDHandler adds the request id of the record's context to every record,
// so that a line logged anywhere while serving a request can be tied to it.
type requestIDHandler struct{ slog.Handler }

// WithRequestID wraps h so that records logged with a request's context carry
// its request_id.
func WithRequestID(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// observe is the outermost middleware: it gives the request its id, turns the
// handler's error into the answer (so the status is known), then writes the one
// log line of the request and counts it. Only the route template is logged and
// counted, never the path, query or body, which may carry token values.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		req := c.Request()
		id := req.Header.Get(RequestIDHeader)
		if !usableRequestID(id) {
			id = newRequestID()
		}
		c.Response().Header().Set(RequestIDHeader, id)
		ctx := context.WithValue(req.Context(), requestIDKey{}, id)
		c.SetRequest(req.WithContext(ctx))

		if err := next(c); err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" || route == "/*" {
			route = "unmatched" // no route: its path is the caller's text, not ours
		}
		status := c.Response().Status
		elapsed := time.Since(start)
		s.metrics.request(route, req.Method, status, elapsed)
		if s.log.Enabled(ctx, s.requestLevel) {
			s.log.Log(ctx, s.requestLevel, "request", "method", req.Method, "route", route, "status", status,
				"duration_ms", float64(elapsed.Microseconds())/1000, "bytes", c.Response().Size, "client", c.RealIP())
		}
		return nil
	}
}
