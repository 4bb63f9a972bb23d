package store

import (
	"bytes"
	"context"
	"sort"
	"sync"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Group commit for single-token revocations, revocations of a user's tokens and
// exchanges. Under load many requests each touch a token or a few; committing
// each alone costs a WAL flush, a round trip and a transaction per request. A few workers each take the first
// waiting request and whatever else is already waiting (never waiting for more),
// and run them all in one statement and one transaction. A lone request
// therefore goes out at once, as it would without batching; each request is
// answered only after its batch committed, with its own outcome. A batch runs
// with no request's context (it serves them all): a caller that gives up stops
// waiting, but its request may still be carried out. Two batches that share
// rows may deadlock; PostgreSQL aborts one and retry runs it again whole.

// batchMax bounds a batch: a batch holds its tokens' row locks until it commits.
const batchMax = 64

// groupCommit queues requests of one kind for a few workers that run them in
// batches.
type groupCommit[R any] struct {
	requests chan R
	stop     chan struct{}
	wg       sync.WaitGroup
}

func newGroupCommit[R any](workers int, run func([]R)) *groupCommit[R] {
	g := &groupCommit[R]{requests: make(chan R), stop: make(chan struct{})}
	for i := 0; i < workers; i++ {
		g.wg.Add(1)
		go g.work(run)
	}
	return g
}

func (g *groupCommit[R]) close() {
	close(g.stop)
	g.wg.Wait()
}

// submit hands one request to a worker.
func (g *groupCommit[R]) submit(ctx context.Context, r R) error {
	select {
	case g.requests <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-g.stop:
		return errStoreClosed
	}
}

func (g *groupCommit[R]) work(run func([]R)) {
	defer g.wg.Done()
	for {
		var first R
		select {
		case first = <-g.requests:
		case <-g.stop:
			return
		}
		batch := []R{first}
	drain:
		for len(batch) < batchMax {
			select {
			case r := <-g.requests:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		run(batch)
	}
}

// outcome is what a batch sends back for one of its requests.
type outcome[T any] struct {
	res T
	err error
}

// call hands r to a worker and waits for the outcome its batch sends on done
// (buffered: the worker never blocks on it). The batch may still carry the
// request out after its caller has gone.
func call[R, T any](ctx context.Context, g *groupCommit[R], r R, done <-chan outcome[T]) (T, error) {
	var zero T
	if err := g.submit(ctx, r); err != nil {
		return zero, err
	}
	select {
	case out := <-done:
		return out.res, out.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

const revokeMany = `SELECT idx, user_ok, app_ok, revoked, ids FROM revoke_refresh_token_many($1, $2, $3, $4, $5, $6)`

type revokeRequest struct {
	sc            Scope
	userID, appID *uuid.UUID
	hash          []byte
	info          []byte
	done          chan revokeOutcome // buffered: the worker never blocks on it
}

type revokeOutcome = outcome[RevokeResult]

// batcher runs single-token revocations, revocations of a user's tokens and
// exchanges in batches, each kind with its own workers.
type batcher struct {
	store     *Store
	revokes   *groupCommit[*revokeRequest]
	users     *groupCommit[*bulkRequest]
	exchanges *groupCommit[*exchangeRequest]
}

func newBatcher(s *Store, workers int) *batcher {
	b := &batcher{store: s}
	b.revokes = newGroupCommit(workers, b.run)
	b.users = newGroupCommit(workers, b.runUsers)
	b.exchanges = newGroupCommit(workers, b.runExchanges)
	return b
}

func (b *batcher) close() {
	b.revokes.close()
	b.users.close()
	b.exchanges.close()
}

// bulkRequest is a revocation of a user's tokens (of one application, or all).
type bulkRequest struct {
	sc   Scope
	b    Bulk
	info []byte
	done chan revokeOutcome // buffered: the worker never blocks on it
}

// revokeUser queues one revocation of a user's tokens and waits for its outcome.
func (b *batcher) revokeUser(ctx context.Context, r *bulkRequest) (RevokeResult, error) {
	r.done = make(chan revokeOutcome, 1)
	return call(ctx, b.users, r, r.done)
}

const revokeUsersMany = `SELECT idx, user_ok, app_ok, revoked, ids FROM revoke_refresh_tokens_many($1, $2, $3, $4, $5, $6, $7)`

// runUsers revokes a batch of users' tokens in one statement, in the order of
// the users' ids, so that two batches lock the rows of users they share in the
// same order.
func (b *batcher) runUsers(batch []*bulkRequest) {
	if len(batch) == 1 {
		r := batch[0]
		query, args := RevokeBulkStatement(r.sc, r.b, r.info)
		res, err := b.store.revoke(context.Background(), query, args...)
		r.done <- revokeOutcome{res, err}
		return
	}
	batch = append([]*bulkRequest(nil), batch...) // sorted copy; the caller's order stays
	sort.SliceStable(batch, func(i, j int) bool {
		return bytes.Compare(batch[i].b.UserID[:], batch[j].b.UserID[:]) < 0
	})
	n := len(batch)
	tenants, users, apps, excepts := make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n)
	infos, receipts := make(pq.StringArray, n), make(pq.BoolArray, n)
	for i, r := range batch {
		tenants[i], users[i], apps[i], excepts[i] = idText(r.sc.TenantID), idText(r.b.UserID), idText(r.b.ApplicationID), idText(r.b.Except)
		infos[i], receipts[i] = string(pgJSON(r.info)), r.b.Receipt
	}
	results, err := b.store.revokeMany(len(batch), revokeUsersMany, tenants, users, apps, excepts, infos, receipts, NowMillis())
	for i, r := range batch {
		r.done <- revokeOutcome{results[i], classify(err)}
	}
}

func idText(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// revokeMany runs a batch function of revocations, whose rows say, by idx, each
// revocation's outcome.
func (s *Store) revokeMany(n int, query string, args ...any) ([]RevokeResult, error) {
	results := make([]RevokeResult, n)
	err := retry(func() error {
		rows, err := s.db.Query(query, args...)
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
	return results, err
}

// revoke queues one revocation and waits for its outcome.
func (b *batcher) revoke(ctx context.Context, r *revokeRequest) (RevokeResult, error) {
	r.done = make(chan revokeOutcome, 1)
	return call(ctx, b.revokes, r, r.done)
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
	sort.SliceStable(batch, func(i, j int) bool { return bytes.Compare(batch[i].hash, batch[j].hash) < 0 })
	n := len(batch)
	tenants, users, apps, infos := make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n), make(pq.StringArray, n)
	hashes := make(pq.ByteaArray, n)
	for i, r := range batch {
		tenants[i], users[i], apps[i] = idText(r.sc.TenantID), idText(r.userID), idText(r.appID)
		hashes[i], infos[i] = r.hash, string(pgJSON(r.info))
	}
	results, err := b.store.revokeMany(n, revokeMany, tenants, users, apps, hashes, infos, NowMillis())
	for i, r := range batch {
		r.done <- revokeOutcome{results[i], classify(err)}
	}
}
