package impl_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"refreshd/impl"
	"refreshd/internal/testserver"
)

// rawConn is one client connection written byte by byte, for what a well-behaved
// HTTP client never does.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, url string) *rawConn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawConn{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawConn) write(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// trickle sends body one byte at a time, a pause between bytes, until it is all
// sent or the server stops taking it; it reports how many bytes went out.
func (c *rawConn) trickle(body string, pause time.Duration) <-chan int {
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < len(body); n++ {
			if _, err := c.conn.Write([]byte{body[n]}); err != nil {
				break
			}
			time.Sleep(pause)
		}
		sent <- n
	}()
	return sent
}

func (c *rawConn) response() *http.Response {
	c.t.Helper()
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(body) != 0 && resp.StatusCode != 200 && resp.StatusCode != 400 {
		c.t.Errorf("status %d with body %q, want empty", resp.StatusCode, body)
	}
	return resp
}

// TestSlowClients: a request body must arrive within the body timeout, counted
// from the end of the headers; an operation that needs an API key checks it
// before reading any body; and a handler that runs longer than the body timeout,
// its body read, is not cut short.
func TestSlowClients(t *testing.T) {
	const timeout = 300 * time.Millisecond
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := testserver.StartWith(t, impl.Config{Logger: quiet, BodyTimeout: timeout})
	s := &testServer{t: t, URL: srv.URL, Key: srv.Key, Store: srv.Store}
	w := s.seed(1, 1, 2)
	user := w.users[0]
	head := func(method, path, key string, length int) string {
		h := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", method, path, length)
		if key != "" {
			h += "Authorization: " + key + "\r\n"
		}
		return h + "\r\n"
	}
	// Longer than any timeout here, so a server that waited for all of it
	// would answer something else than the status the test wants.
	slowBody := `{"userId":"` + user.String() + `","eventInfo":{"data":{"pad":"` + strings.Repeat("x", 200) + `"}}}`

	// A server that waits an hour for a body: one that read the body before
	// checking the key would not answer these within the test's lifetime.
	patient := testserver.StartWith(t, impl.Config{Logger: quiet, BodyTimeout: time.Hour})
	for _, c := range []struct {
		name string
		key  string
	}{{"no key", ""}, {"unknown key", "not-a-key"}} {
		t.Run(c.name+": 401 without reading the body", func(t *testing.T) {
			conn := dialRaw(t, patient.URL)
			conn.write(head("POST", "/api/user/refresh-token/import", c.key, 1000)) // and no body at all
			// Not a timing assertion: a bound on waiting for an answer due at
			// once, where the failure would otherwise be a hang.
			_ = conn.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			if resp := conn.response(); resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401 before any body", resp.StatusCode)
			}
		})
	}
	for _, c := range []struct{ name, method, path, key string }{
		{"with a key", "DELETE", "/api/jwt/refresh", srv.Key},
		{"anonymous exchange", "POST", "/api/jwt/refresh", ""},
	} {
		t.Run(c.name+": a trickled body is cut with 408", func(t *testing.T) {
			conn := dialRaw(t, srv.URL)
			conn.write(head(c.method, c.path, c.key, len(slowBody)))
			sent := conn.trickle(slowBody, 20*time.Millisecond)
			resp := conn.response()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d, want 408", resp.StatusCode)
			}
			if !resp.Close {
				t.Errorf("the 408 does not close the connection")
			}
			if n := <-sent; n >= len(slowBody) {
				t.Errorf("the whole body (%d bytes) was taken before the 408", n)
			}
		})
	}
	s.expectRemaining(w, none)

	t.Run("a handler slower than the body timeout completes", func(t *testing.T) {
		s.t = t
		// Hold the user's row: the revocation waits for it past the body timeout.
		tx, err := s.Store.DB().Beginx()
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.Exec(`SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, user); err != nil {
			t.Fatal(err)
		}
		done := make(chan response, 1)
		go func() {
			done <- s.do(req{method: "DELETE", path: "/api/jwt/refresh", body: map[string]any{"userId": user}})
		}()
		time.Sleep(3 * timeout)
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
		if resp := <-done; resp.Status != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.Status)
		}
		s.expectRemaining(w, func(pair) int { return 2 })
	})
}
