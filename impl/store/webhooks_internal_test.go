package store

import (
	"context"
	"testing"

	"github.com/google/uuid"
)

// newTestWebhook stores a global webhook for revocation events.
func newTestWebhook(t *testing.T, s *Store) Webhook {
	t.Helper()
	hook := Webhook{ID: uuid.New(), URL: "http://127.0.0.1:1/", EventsEnabled: []string{"jwt.refresh-token.revoke"},
		Global: true, ConnectTimeoutMs: 1000, ReadTimeoutMs: 1000, SigningSecret: []byte("s")}
	if err := s.CreateWebhook(context.Background(), hook); err != nil {
		t.Fatal(err)
	}
	return hook
}

// TestPruneEvents: delivered events past the cut-off go, in batches; events a
// webhook still waits for stay, however old.
func TestPruneEvents(t *testing.T) {
	ctx := context.Background()
	s, tenant := openTestStore(t)
	hook := newTestWebhook(t, s)
	record := func(at int64) (seq int64) {
		t.Helper()
		if _, err := s.db.Exec(`SELECT record_event('jwt.refresh-token.revoke', $1, NULL, NULL, '{}', '{}', $2)`, tenant.ID, at); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Get(&seq, `SELECT max(seq) FROM events`); err != nil {
			t.Fatal(err)
		}
		return seq
	}
	for i := 0; i < 5; i++ { // old and delivered: pruned
		seq := record(1000 + int64(i))
		if err := s.MarkDelivered(ctx, hook.ID, seq, 2000); err != nil {
			t.Fatal(err)
		}
	}
	record(1500)                 // old but undelivered: kept
	fresh := record(NowMillis()) // delivered but recent: kept
	if err := s.MarkDelivered(ctx, hook.ID, fresh, NowMillis()); err != nil {
		t.Fatal(err)
	}
	var total int64
	for {
		n, err := s.PruneEvents(ctx, NowMillis()-60_000, 2)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n < 2 {
			break
		}
	}
	var left int
	if err := s.db.Get(&left, `SELECT count(*) FROM events`); err != nil {
		t.Fatal(err)
	}
	if total != 5 || left != 2 {
		t.Fatalf("pruned %d, left %d; want 5 and 2", total, left)
	}
}

// TestClaimWhileEventsAreRecorded: a transaction recording an event holds KEY
// SHARE on the webhook (the deliveries foreign key). Under steady revocations one
// always does, so claiming must not skip a webhook that is merely key-shared.
func TestClaimWhileEventsAreRecorded(t *testing.T) {
	ctx := context.Background()
	s, tenant := openTestStore(t)
	hook := newTestWebhook(t, s)
	if _, err := s.db.Exec(`SELECT record_event('jwt.refresh-token.revoke', $1, NULL, NULL, '{}', '{}', 1)`, tenant.ID); err != nil {
		t.Fatal(err)
	}
	// An event being recorded right now, not yet committed.
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`SELECT record_event('jwt.refresh-token.revoke', $1, NULL, NULL, '{}', '{}', 2)`, tenant.ID); err != nil {
		t.Fatal(err)
	}
	w, ok, err := s.ClaimWebhook(ctx, uuid.New(), NowMillis(), 30_000)
	if err != nil || !ok || w.ID != hook.ID {
		t.Fatalf("claim while an event is being recorded: ok %v, err %v", ok, err)
	}
}
