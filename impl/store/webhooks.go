package store

import (
	"context"
	"database/sql/driver"
	"fmt"

	"github.com/google/uuid"
	"github.com/lib/pq"
)

// Webhook receives the events it enables, for every tenant (Global) or for
// TenantIDs. Deliveries are signed with the Key Master key SigningKeyID when it
// is set, and with our own HMAC when SigningSecret is; HTTPAuthUsername turns on
// HTTP Basic authentication.
type Webhook struct {
	ID                uuid.UUID      `db:"id"`
	URL               string         `db:"url"`
	Description       string         `db:"description"`
	EventsEnabled     pq.StringArray `db:"events_enabled"`
	Global            bool           `db:"global"`
	TenantIDs         UUIDArray      `db:"tenant_ids"`
	ConnectTimeoutMs  int32          `db:"connect_timeout_ms"`
	ReadTimeoutMs     int32          `db:"read_timeout_ms"`
	Headers           Headers        `db:"headers"`
	SigningSecret     []byte         `db:"signing_secret"`
	SigningKeyID      *uuid.UUID     `db:"signing_key_id"`
	HTTPAuthUsername  *string        `db:"http_auth_username"`
	HTTPAuthPassword  *string        `db:"http_auth_password"`
	InsertInstant     int64          `db:"insert_instant"`
	LastUpdateInstant int64          `db:"last_update_instant"`
	// Kind is KindWebhook, or KindStream for a Shared Signals stream, which
	// delivers Security Event Tokens to its audience (see ssf.go).
	Kind               string         `db:"kind"`
	SSFAudience        pq.StringArray `db:"ssf_audience"`
	SSFEventsRequested pq.StringArray `db:"ssf_events_requested"`
}

// The kinds of webhooks.
const (
	KindWebhook = "webhook"
	KindStream  = "ssf"
)

// UUIDArray is a uuid[] column.
type UUIDArray []uuid.UUID

// Value stores the ids as a PostgreSQL array.
func (a UUIDArray) Value() (driver.Value, error) {
	out := make(pq.StringArray, len(a))
	for i, id := range a {
		out[i] = id.String()
	}
	return out.Value()
}

// Scan reads a PostgreSQL uuid array.
func (a *UUIDArray) Scan(src any) error {
	var texts pq.StringArray
	if err := texts.Scan(src); err != nil {
		return err
	}
	*a = make(UUIDArray, len(texts))
	for i, t := range texts {
		id, err := uuid.Parse(t)
		if err != nil {
			return err
		}
		(*a)[i] = id
	}
	return nil
}

// Headers are extra HTTP headers, stored as a JSON object.
type Headers map[string]string

// Value stores the headers as jsonb.
func (h Headers) Value() (driver.Value, error) {
	if h == nil {
		return "{}", nil
	}
	return jsonText(map[string]string(h))
}

// Scan reads the headers from jsonb.
func (h *Headers) Scan(src any) error { return scanJSON(src, h) }

const webhookColumns = `id, url, description, events_enabled, global, tenant_ids, connect_timeout_ms, read_timeout_ms,
       headers, signing_secret, signing_key_id, http_auth_username, http_auth_password, insert_instant, last_update_instant,
       kind, ssf_audience, ssf_events_requested`

// NULLIF: with binary parameters an absent secret arrives as an empty bytea.
const insertWebhook = `
INSERT INTO webhooks (id, url, description, events_enabled, global, tenant_ids, connect_timeout_ms, read_timeout_ms,
                      headers, signing_secret, signing_key_id, http_auth_username, http_auth_password,
                      insert_instant, last_update_instant)
VALUES (:id, :url, :description, :events_enabled, :global, :tenant_ids, :connect_timeout_ms, :read_timeout_ms,
        :headers, NULLIF(CAST(:signing_secret AS bytea), CAST('' AS bytea)), :signing_key_id, :http_auth_username, :http_auth_password,
        :insert_instant, :last_update_instant)`

// CreateWebhook stores a webhook; a taken id is a *ConstraintError on
// webhooks_pkey, a signing key that does not exist one on webhooks_signing_key_id_fkey.
func (s *Store) CreateWebhook(ctx context.Context, w Webhook) error {
	_, err := s.db.NamedExecContext(ctx, insertWebhook, w)
	return classify(err)
}

const updateWebhook = `
UPDATE webhooks SET url = :url, description = :description, events_enabled = :events_enabled, global = :global,
       tenant_ids = :tenant_ids, connect_timeout_ms = :connect_timeout_ms, read_timeout_ms = :read_timeout_ms,
       headers = :headers, signing_key_id = :signing_key_id, http_auth_username = :http_auth_username,
       last_update_instant = :last_update_instant %s
WHERE id = :id AND kind = 'webhook'`

// UpdateWebhook replaces a webhook's settings; a nil SigningSecret or
// HTTPAuthPassword keeps the old one. ErrNotFound when there is no such webhook;
// a signing key that does not exist is a *ConstraintError.
func (s *Store) UpdateWebhook(ctx context.Context, w Webhook) error {
	kept := ""
	if w.SigningSecret != nil {
		kept += ", signing_secret = :signing_secret"
	}
	if w.HTTPAuthPassword != nil {
		kept += ", http_auth_password = :http_auth_password"
	}
	return affectedOne(s.db.NamedExecContext(ctx, fmt.Sprintf(updateWebhook, kept), w))
}

// Webhook returns one webhook (not a stream), or ErrNotFound.
func (s *Store) Webhook(ctx context.Context, id uuid.UUID) (Webhook, error) {
	var w Webhook
	err := s.db.GetContext(ctx, &w, `SELECT `+webhookColumns+` FROM webhooks WHERE id = $1 AND kind = 'webhook'`, id)
	return w, classify(err)
}

// Webhooks returns every webhook (not the streams), oldest first.
func (s *Store) Webhooks(ctx context.Context) ([]Webhook, error) {
	out := []Webhook{}
	err := s.db.SelectContext(ctx, &out, `SELECT `+webhookColumns+` FROM webhooks WHERE kind = 'webhook'
		ORDER BY insert_instant, id`)
	return out, err
}

// DeleteWebhook deletes a webhook (not a stream) and its pending deliveries;
// ErrNotFound when absent.
func (s *Store) DeleteWebhook(ctx context.Context, id uuid.UUID) error {
	return affectedOne(s.db.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1 AND kind = 'webhook'`, id))
}

// ClaimWebhook leases one webhook whose oldest undelivered event is due, so that
// this dispatcher alone delivers for it until the lease ends. ok is false when no
// webhook has work.
const claimWebhook = `
UPDATE webhooks SET lease_owner = $1, lease_until = $2::bigint + $3::bigint
WHERE id = (
    SELECT w.id FROM webhooks w
    WHERE (w.lease_until IS NULL OR w.lease_until < $2)
      AND (SELECT d.next_attempt_at FROM deliveries d
           WHERE d.webhook_id = w.id AND d.delivered_at IS NULL
           ORDER BY d.event_seq LIMIT 1) <= $2
    ORDER BY w.lease_until NULLS FIRST
    LIMIT 1
    -- NO KEY UPDATE, not UPDATE: recording an event takes KEY SHARE on the
    -- webhook (the deliveries foreign key), which FOR UPDATE would skip, so
    -- under steady revocations no dispatcher could ever claim the webhook.
    FOR NO KEY UPDATE SKIP LOCKED)
RETURNING ` + webhookColumns

// ClaimWebhook leases a webhook with due work to owner for leaseMs.
func (s *Store) ClaimWebhook(ctx context.Context, owner uuid.UUID, now, leaseMs int64) (Webhook, bool, error) {
	var w Webhook
	err := s.db.GetContext(ctx, &w, claimWebhook, owner, now, leaseMs)
	if err = classify(err); err == ErrNotFound {
		return w, false, nil
	}
	return w, err == nil, err
}

// ExtendLease keeps a lease for leaseMs more; false when it is no longer owner's.
func (s *Store) ExtendLease(ctx context.Context, webhookID, owner uuid.UUID, now, leaseMs int64) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE webhooks SET lease_until = $3::bigint + $4::bigint WHERE id = $1 AND lease_owner = $2`,
		webhookID, owner, now, leaseMs)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseLease ends owner's lease on a webhook.
func (s *Store) ReleaseLease(ctx context.Context, webhookID, owner uuid.UUID) error {
	_, err := s.db.ExecContext(ctx, `UPDATE webhooks SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`,
		webhookID, owner)
	return err
}

// Delivery is one event to deliver to one webhook.
type Delivery struct {
	WebhookID     uuid.UUID `db:"webhook_id"`
	EventSeq      int64     `db:"event_seq"`
	EventID       uuid.UUID `db:"event_id"`
	Attempts      int32     `db:"attempts"`
	NextAttemptAt int64     `db:"next_attempt_at"`
	Body          []byte    `db:"body"`
}

const pendingDeliveries = `
SELECT d.webhook_id, d.event_seq, e.id AS event_id, d.attempts, d.next_attempt_at, e.body
FROM deliveries d JOIN events e ON e.seq = d.event_seq
WHERE d.webhook_id = $1 AND d.delivered_at IS NULL
ORDER BY d.event_seq
LIMIT $2`

// PendingDeliveries returns a webhook's undelivered events, oldest first.
func (s *Store) PendingDeliveries(ctx context.Context, webhookID uuid.UUID, limit int) ([]Delivery, error) {
	var out []Delivery
	err := s.db.SelectContext(ctx, &out, pendingDeliveries, webhookID, limit)
	return out, err
}

// MarkDelivered records a successful delivery.
func (s *Store) MarkDelivered(ctx context.Context, webhookID uuid.UUID, seq, now int64) error {
	_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET delivered_at = $3, attempts = attempts + 1, last_error = NULL
		WHERE webhook_id = $1 AND event_seq = $2`, webhookID, seq, now)
	return err
}

// MarkFailed records a failed attempt and when to try again.
func (s *Store) MarkFailed(ctx context.Context, webhookID uuid.UUID, seq, nextAt int64, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4
		WHERE webhook_id = $1 AND event_seq = $2`, webhookID, seq, nextAt, pgText(reason))
	return err
}

// pruneEvents deletes a batch of events older than the cut-off that no webhook
// still waits for; their delivered deliveries go with them.
const pruneEvents = `
DELETE FROM events WHERE seq IN (
    SELECT e.seq FROM events e
    WHERE e.create_instant < $1
      AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.delivered_at IS NULL)
    ORDER BY e.create_instant
    LIMIT $2
    FOR UPDATE SKIP LOCKED)`

// PruneEvents deletes up to limit delivered events created before cutoff.
func (s *Store) PruneEvents(ctx context.Context, cutoff int64, limit int) (int64, error) {
	res, err := s.db.ExecContext(ctx, pruneEvents, cutoff, limit)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// EventFilter selects events for the audit listing.
type EventFilter struct {
	Type          *string
	UserID        *uuid.UUID
	ApplicationID *uuid.UUID
	Start, End    *int64
	AfterSeq      int64
	Limit         int
}

// StoredEvent is an event as delivered, with its position.
type StoredEvent struct {
	Seq  int64  `db:"seq"`
	Body []byte `db:"body"`
}

const searchEvents = `
SELECT seq, body FROM events
WHERE seq > $1
  AND ($2::uuid IS NULL OR tenant_id = $2)
  AND ($3::text IS NULL OR type = $3)
  AND ($4::uuid IS NULL OR user_id = $4)
  AND ($5::uuid IS NULL OR application_id = $5)
  AND ($6::bigint IS NULL OR create_instant >= $6)
  AND ($7::bigint IS NULL OR create_instant < $7)
ORDER BY seq
LIMIT $8`

// Events returns events within the scope that match f, oldest first.
func (s *Store) Events(ctx context.Context, sc Scope, f EventFilter) ([]StoredEvent, error) {
	out := []StoredEvent{}
	err := s.db.SelectContext(ctx, &out, searchEvents, f.AfterSeq, sc.TenantID, f.Type, f.UserID, f.ApplicationID,
		f.Start, f.End, f.Limit)
	return out, err
}
