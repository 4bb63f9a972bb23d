package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"refreshd/internal/dbtest"
)

// TestClientLimits: the limits on each client, set by environment (the flags'
// fallbacks), hold in the server binary: oversized headers are refused (431), a
// trickled body is cut (408, connection closed), headers that never end close
// the connection unanswered, and a well-behaved request still works.
func TestClientLimits(t *testing.T) {
	key := "a-test-key-" + uuid.NewString()
	p := start(t, dbtest.NewDSN(t), key, "REFRESHD_HEADER_TIMEOUT=300ms", "REFRESHD_BODY_TIMEOUT=300ms",
		"REFRESHD_MAX_HEADER_BYTES=1024")
	addr := strings.TrimPrefix(p.url, "http://")
	dial := func(t *testing.T) (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn, bufio.NewReader(conn)
	}

	t.Run("oversized headers: 431", func(t *testing.T) {
		conn, r := dial(t)
		fmt.Fprintf(conn, "GET /api/status HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", strings.Repeat("a", 8<<10))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Fatalf("status %d, want 431", resp.StatusCode)
		}
	})
	t.Run("trickled body: 408", func(t *testing.T) {
		conn, r := dial(t)
		body := `{"userId":"` + uuid.NewString() + `","eventInfo":{"data":{"pad":"` + strings.Repeat("x", 300) + `"}}}`
		fmt.Fprintf(conn, "DELETE /api/jwt/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"+
			"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", key, len(body))
		sent := make(chan int, 1)
		go func() {
			n := 0
			for ; n < len(body); n++ {
				if _, err := conn.Write([]byte{body[n]}); err != nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			sent <- n
		}()
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
			t.Fatalf("status %d (close %v), want 408 closing the connection", resp.StatusCode, resp.Close)
		}
		if n := <-sent; n >= len(body) {
			t.Errorf("the whole body was taken before the 408")
		}
	})
	t.Run("headers that never end: closed unanswered", func(t *testing.T) {
		conn, r := dial(t)
		io.WriteString(conn, "GET /api/status HTTP/1.1\r\nHost: x\r\n") // and no blank line
		if b, err := r.ReadByte(); err == nil {
			t.Fatalf("got an answer (%q…), want the connection closed", b)
		}
	})
	if status := call(t, p, key, "GET", "/api/event", nil); status != 200 {
		t.Fatalf("a plain request: status %d", status)
	}
}
