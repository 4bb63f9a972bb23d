package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scriptedConnector stands in for the network between the store and PostgreSQL:
// each attempt to connect fails with err (for the first failures attempts only,
// when failures > 0), or succeeds when err is nil.
type scriptedConnector struct {
	mu       sync.Mutex
	err      error
	failures int
	attempts int
}

func (c *scriptedConnector) set(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
}

func (c *scriptedConnector) Connect(context.Context) (driver.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts++
	if c.err != nil && (c.failures == 0 || c.attempts <= c.failures) {
		return nil, c.err
	}
	return fakeConn{}, nil
}

func (c *scriptedConnector) Driver() driver.Driver { return nil }

type fakeConn struct{ driver.Conn }

func (fakeConn) Close() error { return nil }

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("still not so: %s", what)
}

// TestGate: a refused connection shuts the gate at once, and new connections are
// then refused without an attempt, as an *UnavailableError; the probe reopens it
// once the server is back. A connection attempt that only timed out shuts it only
// when the probe cannot connect either.
func TestGate(t *testing.T) {
	ctx := context.Background()
	refused := &net.OpError{Op: "dial", Net: "unix", Err: syscall.ECONNREFUSED}
	timedOut := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutError{}}

	t.Run("refused", func(t *testing.T) {
		c := &scriptedConnector{err: refused}
		g := newGate(c)
		defer g.shutdown()
		if _, err := g.Connect(ctx); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("first attempt: %v", err)
		}
		if g.available() {
			t.Fatal("the gate is open after a refused connection")
		}
		_, err := g.Connect(ctx)
		var ue *UnavailableError
		if !errors.As(err, &ue) || ue.Busy {
			t.Fatalf("with the gate shut: %v, want an outage *UnavailableError", err)
		}
		c.set(nil)
		waitFor(t, "the probe reopens the gate", g.available)
		if conn, err := g.Connect(ctx); err != nil || conn == nil {
			t.Fatalf("after the outage: %v", err)
		}
	})
	t.Run("timed out, server alive", func(t *testing.T) {
		c := &scriptedConnector{err: timedOut, failures: 1} // later attempts, the probe's included, succeed
		g := newGate(c)
		defer g.shutdown()
		if _, err := g.Connect(ctx); err == nil {
			t.Fatal("the first attempt succeeded")
		}
		if _, err := g.Connect(ctx); err != nil {
			t.Fatalf("the next request: %v, want a connection (one timeout is no outage)", err)
		}
		waitFor(t, "the probe has run", func() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.attempts >= 3 })
		if !g.available() {
			t.Fatal("the gate shut though the server answers")
		}
	})
	t.Run("timed out, server gone", func(t *testing.T) {
		c := &scriptedConnector{err: timedOut}
		g := newGate(c)
		defer g.shutdown()
		_, _ = g.Connect(ctx)
		waitFor(t, "the probe shuts the gate", func() bool { return !g.available() })
		c.set(nil)
		waitFor(t, "the probe reopens the gate", g.available)
	})
	t.Run("wrong password does not shut it", func(t *testing.T) {
		c := &scriptedConnector{err: errors.New("pq: password authentication failed")}
		g := newGate(c)
		defer g.shutdown()
		_, _ = g.Connect(ctx)
		if !g.available() {
			t.Fatal("the gate shut for an error that is no outage")
		}
	})
}
