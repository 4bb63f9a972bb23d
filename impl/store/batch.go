package store

import (
	"bytes"
	"context"
	"sort"
	"sync"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Group commit for single-token revocations. Under load many requests each
// revoke one token; committing each alone costs a WAL flush and a round trip per
// request. A few workers each take the first waiting request and whatever else is
// already waiting (never waiting for more), and run them all in one statement and
// one transaction. A lone request therefore goes out at once, as it would
// without batching; each request is answered only after its batch committed,
// with its own outcome.

const (
	batchWorkers = 8
	batchMax     = 64
)

const revokeMany = `SELECT idx, user_ok, app_ok, revoked, ids FROM revoke_refresh_token_many($1, $2, $3, $4, $5, $6)`

type revokeRequest struct {
	sc            Scope
	userID, appID *uuid.UUID
	hash          []byte
	info          []byte
	done          chan revokeOutcome // buffered: the worker never blocks on it
}

type revokeOutcome struct {
	res RevokeResult
	err error
}

type batcher struct {
	store    *Store
	requests chan *revokeRequest
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newBatcher(s *Store) *batcher {
	b := &batcher{store: s, requests: make(chan *revokeRequest), stop: make(chan struct{})}
	for i := 0; i < batchWorkers; i++ {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

func (b *batcher) close() {
	close(b.stop)
	b.wg.Wait()
}

// revoke queues one revocation and waits for its outcome.
func (b *batcher) revoke(ctx context.Context, r *revokeRequest) (RevokeResult, error) {
	r.done = make(chan revokeOutcome, 1)
	select {
	case b.requests <- r:
	case <-ctx.Done():
		return RevokeResult{}, ctx.Err()
	case <-b.stop:
		return RevokeResult{}, errStoreClosed
	}
	select {
	case out := <-r.done:
		return out.res, out.err
	case <-ctx.Done():
		// The batch may still revoke it; the caller has gone anyway.
		return RevokeResult{}, ctx.Err()
	}
}

func (b *batcher) work() {
	defer b.wg.Done()
	for {
		var first *revokeRequest
		select {
		case first = <-b.requests:
		case <-b.stop:
			return
		}
		batch := []*revokeRequest{first}
	drain:
		for len(batch) < batchMax {
			select {
			case r := <-b.requests:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		b.run(batch)
	}
}

// run revokes a batch in one statement. Its context is not any one request's:
// the batch serves them all.
func (b *batcher) run(batch []*revokeRequest) {
	if len(batch) == 1 {
		r := batch[0]
		query, args := RevokeByTokenStatement(r.sc, r.hash, r.userID, r.appID, r.info)
		res, err := b.store.revoke(context.Background(), query, args...)
		r.done <- revokeOutcome{res, err}
		return
	}
	batch = append([]*revokeRequest(nil), batch...) // sorted copy; the caller's order stays
	sort.Slice(batch, func(i, j int) bool { return bytes.Compare(batch[i].hash, batch[j].hash) < 0 })
	n := len(batch)
	tenants, users, apps, infos := make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n)
	hashes := make(pq.ByteaArray, n)
	text := func(id *uuid.UUID) string {
		if id == nil {
			return ""
		}
		return id.String()
	}
	for i, r := range batch {
		tenants[i], users[i], apps[i] = text(r.sc.TenantID), text(r.userID), text(r.appID)
		hashes[i], infos[i] = r.hash, string(pgJSON(r.info))
	}
	results := make([]RevokeResult, n)
	err := retry(func() error {
		rows, err := b.store.db.Query(revokeMany, tenants, users, apps, hashes, infos, NowMillis())
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var idx int
			var res RevokeResult
			var ids UUIDArray
			if err := rows.Scan(&idx, &res.UserFound, &res.ApplicationFound, &res.Revoked, &ids); err != nil {
				return err
			}
			res.IDs = ids
			results[idx-1] = res
		}
		return rows.Err()
	})
	for i, r := range batch {
		r.done <- revokeOutcome{results[i], classify(err)}
	}
}
