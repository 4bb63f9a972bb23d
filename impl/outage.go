package impl

import (
	"errors"
	"log/slog"
	"sync"
	"time"

	"refreshd/impl/store"
)

// outageLog tells of a database outage once when it begins and once when it
// ends, however often the loops that share it retry in between: the dispatcher
// polls every half second per worker and would otherwise log an outage several
// times a second.
type outageLog struct {
	log  *slog.Logger
	name string

	mu    sync.Mutex
	since time.Time // zero while the database answers
}

// failed logs err as the start of an outage when it is one and none is known yet,
// and says whether it was one (then the caller logs nothing more).
func (o *outageLog) failed(err error) bool {
	var ue *store.UnavailableError
	if !errors.As(store.Classify(err), &ue) || ue.Busy {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		o.since = time.Now()
		o.log.Warn(o.name+": database unavailable; retrying until it is back", "error", err)
	}
	return true
}

// succeeded ends the outage, if one was logged.
func (o *outageLog) succeeded() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.since.IsZero() {
		o.log.Info(o.name+": database available again", "outage", time.Since(o.since).Round(time.Millisecond))
		o.since = time.Time{}
	}
}
