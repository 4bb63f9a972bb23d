package store

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"
)

// Backlog is what a webhook has not received yet. Delivery is in event order, so
// the oldest undelivered event (the head) holds back the others: its attempts,
// next attempt and last error say why the backlog does not drain.
type Backlog struct {
	WebhookID            uuid.UUID `db:"webhook_id"`
	Pending              int64     `db:"pending"`
	OldestPendingInstant *int64    `db:"oldest_pending_instant"`
	HeadAttempts         *int32    `db:"head_attempts"`
	NextAttemptAt        *int64    `db:"next_attempt_at"`
	LastError            *string   `db:"last_error"`
}

// Both lateral subqueries read the partial index of undelivered deliveries.
const queryBacklogs = `
SELECT w.id AS webhook_id, p.pending, h.create_instant AS oldest_pending_instant, h.attempts AS head_attempts,
       h.next_attempt_at, h.last_error
FROM webhooks w
CROSS JOIN LATERAL (SELECT count(*) AS pending FROM deliveries d
                    WHERE d.webhook_id = w.id AND d.delivered_at IS NULL) p
LEFT JOIN LATERAL (SELECT e.create_instant, d.attempts, d.next_attempt_at, d.last_error
                   FROM deliveries d JOIN events e ON e.seq = d.event_seq
                   WHERE d.webhook_id = w.id AND d.delivered_at IS NULL
                   ORDER BY d.event_seq LIMIT 1) h ON true
WHERE $1::uuid IS NULL OR w.id = $1
ORDER BY w.insert_instant, w.id`

// Backlogs returns the backlog of one webhook, or with a nil id of every webhook
// (what a metrics collector reads), in the order webhooks are listed.
func (s *Store) Backlogs(ctx context.Context, webhookID *uuid.UUID) ([]Backlog, error) {
	out := []Backlog{}
	err := s.db.SelectContext(ctx, &out, queryBacklogs, webhookID)
	return out, err
}

// Dropped is what DropBacklog gave up on.
type Dropped struct {
	Count                   int64      `db:"dropped"`
	FirstEventID            *uuid.UUID `db:"first_event_id"`
	LastEventID             *uuid.UUID `db:"last_event_id"`
	FirstEventCreateInstant *int64     `db:"first_create_instant"`
	LastEventCreateInstant  *int64     `db:"last_create_instant"`
	// EventID is the webhook.backlog.drop event that records the drop; nil when
	// nothing was dropped.
	EventID *uuid.UUID `db:"-"`
}

// LIMIT NULL is no limit.
const dropBacklog = `
WITH gone AS (
    DELETE FROM deliveries d
    WHERE d.webhook_id = $1 AND d.delivered_at IS NULL
      AND d.event_seq IN (SELECT event_seq FROM deliveries
                          WHERE webhook_id = $1 AND delivered_at IS NULL
                          ORDER BY event_seq LIMIT $2)
    RETURNING d.event_seq)
SELECT count(*) AS dropped,
       (SELECT e.id FROM events e WHERE e.seq = min(gone.event_seq)) AS first_event_id,
       (SELECT e.id FROM events e WHERE e.seq = max(gone.event_seq)) AS last_event_id,
       (SELECT e.create_instant FROM events e WHERE e.seq = min(gone.event_seq)) AS first_create_instant,
       (SELECT e.create_instant FROM events e WHERE e.seq = max(gone.event_seq)) AS last_create_instant
FROM gone`

const recordDrop = `
SELECT record_event('webhook.backlog.drop', (SELECT id FROM tenants WHERE is_default), NULL, NULL, $1::jsonb, $2::jsonb, $3)`

// DropBacklog gives up delivering a webhook's oldest limit undelivered events
// (all of them when limit is nil) and, when it dropped any, records a
// webhook.backlog.drop event with info, in the default tenant, in the same
// transaction. ErrNotFound when there is no such webhook. A delivery already in
// flight may still arrive.
func (s *Store) DropBacklog(ctx context.Context, webhookID uuid.UUID, limit *int32, info json.RawMessage, now int64) (Dropped, error) {
	var out Dropped
	err := s.inTx(ctx, func(tx *sqlx.Tx) error {
		out = Dropped{}
		var id uuid.UUID
		if err := tx.GetContext(ctx, &id, `SELECT id FROM webhooks WHERE id = $1`, webhookID); err != nil {
			return classify(err)
		}
		if err := tx.GetContext(ctx, &out, dropBacklog, webhookID, limit); err != nil {
			return err
		}
		if out.Count == 0 {
			return nil
		}
		fields, err := json.Marshal(map[string]any{
			"webhookId": webhookID, "droppedCount": out.Count,
			"firstEventId": out.FirstEventID, "lastEventId": out.LastEventID,
			"firstEventCreateInstant": out.FirstEventCreateInstant, "lastEventCreateInstant": out.LastEventCreateInstant,
		})
		if err != nil {
			return err
		}
		var eventID uuid.UUID
		if err := tx.GetContext(ctx, &eventID, recordDrop, string(fields), string(info), now); err != nil {
			return err
		}
		out.EventID = &eventID
		return nil
	})
	return out, err
}
