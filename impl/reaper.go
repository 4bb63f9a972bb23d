package impl

import (
	"context"
	"log/slog"
	"time"

	"refreshd/impl/store"
)

// reapBatch bounds each delete so that the reaper holds few row locks for a
// short time; expired rows are already invisible, so there is no hurry.
const reapBatch = 1000

// RunReaper deletes expired refresh tokens every interval until ctx ends, and
// counts them in m (which may be nil). A database outage is logged when it
// begins and when it ends, not at every try.
func RunReaper(ctx context.Context, st *store.Store, log *slog.Logger, m *Metrics, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	outage := &outageLog{log: log, name: "reaper"}
	for {
		n, err := ReapOnce(ctx, st)
		m.reapedTokens(n)
		switch {
		case err != nil && (ctx.Err() != nil || outage.failed(err)):
		case err != nil:
			log.Warn("reaper: delete expired refresh tokens", "error", err)
		default:
			outage.succeeded()
			if n > 0 {
				log.Debug("reaper: deleted expired refresh tokens", "count", n)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ReapOnce deletes every token expired by now, in batches, and says how many;
// then the rotated-away values remembered for tokens that are gone.
func ReapOnce(ctx context.Context, st *store.Store) (int64, error) {
	var total int64
	for {
		n, err := st.ReapExpired(ctx, store.NowMillis(), reapBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < reapBatch {
			break
		}
	}
	for {
		n, err := st.ReapForgotten(ctx, reapBatch)
		if err != nil || n < reapBatch {
			return total, err
		}
	}
}
