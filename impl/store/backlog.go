package store

import (
	"context"

	"github.com/google/uuid"
)

// WebhookBacklog is what waits for one webhook: its undelivered events and when
// the oldest of them was created.
type WebhookBacklog struct {
	WebhookID uuid.UUID `db:"webhook_id"`
	Pending   int64     `db:"pending"`
	// OldestCreateInstant is the createInstant of the oldest undelivered event, 0 when none waits.
	OldestCreateInstant int64 `db:"oldest"`
}

// webhookBacklog counts over the partial index of undelivered rows; the oldest
// is the lowest sequence number, whose event is found by its primary key.
const webhookBacklog = `
SELECT w.id AS webhook_id, p.pending, coalesce(e.create_instant, 0) AS oldest
FROM webhooks w
CROSS JOIN LATERAL (
    SELECT count(*) AS pending, min(d.event_seq) AS first
    FROM deliveries d WHERE d.webhook_id = w.id AND d.delivered_at IS NULL) p
LEFT JOIN events e ON e.seq = p.first
ORDER BY w.id`

// WebhookBacklog returns the backlog of every webhook, in id order.
func (s *Store) WebhookBacklog(ctx context.Context) ([]WebhookBacklog, error) {
	out := []WebhookBacklog{}
	err := s.db.SelectContext(ctx, &out, webhookBacklog)
	return out, err
}
