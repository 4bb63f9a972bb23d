package impl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/lib/pq"

	"refreshd/impl/store"
)

// TestErrorClasses: what the database says, by SQLSTATE class, becomes the
// answer the contract gives it: a value it cannot hold 400, an outage or a
// conflict lost on every retry 503 with Retry-After, only the rest 500 — logged
// with the route and the SQLSTATE.
func TestErrorClasses(t *testing.T) {
	pqErr := func(code string) error {
		return fmt.Errorf("store: %w", &pq.Error{Code: pq.ErrorCode(code), Message: "m"})
	}
	cases := []struct {
		name       string
		err        error
		status     int
		retryAfter string
		logged     bool
	}{
		{"invalid byte sequence (NUL in text)", pqErr("22021"), 400, "", false},
		{"unsupported unicode escape (NUL in jsonb)", pqErr("22P05"), 400, "", false},
		{"numeric out of range", pqErr("22003"), 400, "", false},
		{"not null violation", pqErr("23502"), 400, "", false},
		{"check violation", pqErr("23514"), 400, "", false},
		{"unique violation no handler mapped", pqErr("23505"), 400, "", false},
		{"jsonb too large", pqErr("54000"), 400, "", false},
		{"serialization failure", pqErr("40001"), 503, "1", false},
		{"deadlock", pqErr("40P01"), 503, "1", false},
		{"lock not available", pqErr("55P03"), 503, "1", false},
		{"webhook deleted under an event, on every retry", &pq.Error{Code: "23503", Constraint: "deliveries_webhook_id_fkey"},
			503, "1", false},
		{"another missing reference no handler mapped", &pq.Error{Code: "23503", Constraint: "refresh_tokens_user_fkey"},
			400, "", false},
		{"connection failure", pqErr("08006"), 503, "5", false},
		{"admin shutdown", pqErr("57P01"), 503, "5", false},
		{"cannot connect now", pqErr("57P03"), 503, "5", false},
		{"too many connections", pqErr("53300"), 503, "1", false},
		{"out of memory", pqErr("53200"), 503, "5", false},
		{"connection refused", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, 503, "5", false},
		{"connection lost mid-answer", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), 503, "5", false},
		{"undefined column: our bug", pqErr("42703"), 500, "", true},
		{"internal error", pqErr("XX000"), 500, "", true},
		{"not a database error", errors.New("boom"), 500, "", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
			e := echo.New()
			rec := httptest.NewRecorder()
			ctx := e.NewContext(httptest.NewRequest(http.MethodDelete, "/api/jwt/refresh", nil), rec)
			ctx.SetPath("/api/jwt/refresh")
			s.handleError(c.err, ctx)
			if rec.Code != c.status {
				t.Fatalf("status %d, want %d", rec.Code, c.status)
			}
			if got := rec.Header().Get("Retry-After"); got != c.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, c.retryAfter)
			}
			if c.status == 400 && !strings.Contains(rec.Body.String(), `"code":"[invalid]"`) {
				t.Errorf("400 body %s, want a general [invalid]", rec.Body)
			}
			if c.status != 400 && rec.Body.Len() != 0 {
				t.Errorf("%d with body %q, want empty", c.status, rec.Body)
			}
			logged := strings.Contains(logs.String(), "request failed")
			if logged != c.logged {
				t.Errorf("logged %v, want %v: %s", logged, c.logged, logs.String())
			}
			if logged && !strings.Contains(logs.String(), "route=/api/jwt/refresh") {
				t.Errorf("the log line lacks the route: %s", logs.String())
			}
			if code := store.SQLState(c.err); logged && code != "" && !strings.Contains(logs.String(), "sqlstate="+code) {
				t.Errorf("the log line lacks the SQLSTATE %s: %s", code, logs.String())
			}
		})
	}
}

// TestDataErrorNamesTheField: when PostgreSQL names the column, the 400 names
// the field it came from.
func TestDataErrorNamesTheField(t *testing.T) {
	err := &pq.Error{Code: "22001", Table: "users", Column: "first_name"}
	s := &Server{log: slog.New(slog.DiscardHandler)}
	rec := httptest.NewRecorder()
	s.handleError(err, echo.New().NewContext(httptest.NewRequest(http.MethodPost, "/api/user", nil), rec))
	if rec.Code != 400 || !strings.Contains(rec.Body.String(), `"user.firstName":[{"code":"[invalid]user.firstName"`) {
		t.Fatalf("got %d %s, want 400 on user.firstName", rec.Code, rec.Body)
	}
}

// TestAbandonedRequestIsNotAnOutage: a client that went away is not answered
// 503 nor logged as a failure.
func TestAbandonedRequestIsNotAnOutage(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec := httptest.NewRecorder()
	s.handleError(fmt.Errorf("query: %w", context.Canceled),
		echo.New().NewContext(httptest.NewRequest(http.MethodGet, "/api/event", nil).WithContext(ctx), rec))
	if logs.Len() != 0 {
		t.Errorf("logged: %s", logs.String())
	}
}
