package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lib/pq"
)

// While PostgreSQL cannot be reached, every request that needs a new connection
// would wait for its own connection attempt to fail — up to the connect timeout
// each. The gate remembers the outage instead: after an attempt fails for want
// of a server, new connections are refused at once (requests answer 503 without
// waiting) and one probe keeps trying in the background; its first success opens
// the gate again. A refused connection shuts the gate at once; an attempt that
// only timed out (a server too busy to answer in time looks the same as one that
// is gone) shuts it only when the probe's own attempt fails too.

// defaultConnectTimeout bounds one connection attempt when the database URL does
// not set connect_timeout: a server that drops packets is an outage, not a wait.
const defaultConnectTimeout = 5 * time.Second

// probeInterval is how often the probe tries to connect during an outage.
const probeInterval = 500 * time.Millisecond

// errGateClosed is the cause of the errors the gate answers during an outage.
var errGateClosed = errors.New("no connection to PostgreSQL (outage in progress)")

type gate struct {
	inner driver.Connector

	down    atomic.Bool
	mu      sync.Mutex
	probing bool
	stopped bool
	stop    chan struct{}
}

func newGate(inner driver.Connector) *gate {
	return &gate{inner: inner, stop: make(chan struct{})}
}

// Connect implements driver.Connector.
func (g *gate) Connect(ctx context.Context) (driver.Conn, error) {
	if g.down.Load() {
		return nil, &UnavailableError{RetryAfter: outageRetryAfter, Err: errGateClosed}
	}
	c, err := g.inner.Connect(ctx)
	if err != nil && ctx.Err() == nil && connectFailed(err) {
		var netErr net.Error
		g.close(!(errors.As(err, &netErr) && netErr.Timeout()))
	}
	return c, err
}

// Driver implements driver.Connector.
func (g *gate) Driver() driver.Driver { return g.inner.Driver() }

// connectFailed reports a connection attempt that failed because the server is
// not there or will not take connections now — not, say, a wrong password.
func connectFailed(err error) bool {
	if pqErr := pq.As(err); pqErr != nil {
		var ue *UnavailableError
		return errors.As(classify(err), &ue) && !ue.Busy
	}
	return unreachable(err)
}

// close starts the probe, unless it runs already, and shuts the gate now when
// now is true; otherwise the probe shuts it if its first attempt fails too.
func (g *gate) close(now bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now {
		g.down.Store(true)
	}
	if g.probing || g.stopped {
		return
	}
	g.probing = true
	go g.probe()
}

// probe tries to connect until it succeeds, then opens the gate; each failure
// keeps it shut.
func (g *gate) probe() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), defaultConnectTimeout)
		c, err := g.inner.Connect(ctx)
		cancel()
		if err == nil {
			_ = c.Close()
			g.mu.Lock()
			g.probing = false
			g.down.Store(false)
			g.mu.Unlock()
			return
		}
		g.down.Store(true)
		select {
		case <-g.stop:
			return
		case <-time.After(probeInterval):
		}
	}
}

// shutdown stops the probe for good.
func (g *gate) shutdown() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.stopped {
		g.stopped = true
		close(g.stop)
	}
}

// available reports whether the gate is open.
func (g *gate) available() bool { return !g.down.Load() }
