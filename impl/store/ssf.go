package store

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
)

// Shared Signals streams (OpenID SSF 1.0) are webhooks of kind KindStream in one
// tenant: the store keeps them beside the webhooks so that the same outbox,
// leases and retries deliver their events. Each method scopes a stream by the
// request's tenant.

const insertStream = `
INSERT INTO webhooks (id, kind, url, description, events_enabled, global, tenant_ids, connect_timeout_ms,
                      read_timeout_ms, headers, signing_key_id, ssf_audience, ssf_events_requested,
                      insert_instant, last_update_instant)
VALUES (:id, 'ssf', :url, :description, :events_enabled, false, :tenant_ids, :connect_timeout_ms,
        :read_timeout_ms, :headers, :signing_key_id, :ssf_audience, :ssf_events_requested,
        :insert_instant, :last_update_instant)`

// CreateStream stores a stream; a signing key that does not exist is a
// *ConstraintError.
func (s *Store) CreateStream(ctx context.Context, w Webhook) error {
	_, err := s.db.NamedExecContext(ctx, insertStream, w)
	return classify(err)
}

const queryStreams = `SELECT ` + webhookColumns + ` FROM webhooks
WHERE kind = 'ssf' AND ($1::uuid IS NULL OR id = $1) AND ($2::uuid IS NULL OR $2 = ANY (tenant_ids))
ORDER BY insert_instant, id`

// Streams returns the streams within the scope (only the one with id, when
// given), oldest first.
func (s *Store) Streams(ctx context.Context, sc Scope, id *uuid.UUID) ([]Webhook, error) {
	out := []Webhook{}
	err := s.db.SelectContext(ctx, &out, queryStreams, id, sc.TenantID)
	return out, err
}

const updateStream = `
UPDATE webhooks SET url = :url, description = :description, events_enabled = :events_enabled, headers = :headers,
       signing_key_id = :signing_key_id, ssf_audience = :ssf_audience, ssf_events_requested = :ssf_events_requested,
       last_update_instant = :last_update_instant
WHERE id = :id AND kind = 'ssf' AND tenant_ids = :tenant_ids`

// UpdateStream replaces a stream's settings; its tenant (TenantIDs) must be the
// one it was made in. ErrNotFound when there is no such stream.
func (s *Store) UpdateStream(ctx context.Context, w Webhook) error {
	return affectedOne(s.db.NamedExecContext(ctx, updateStream, w))
}

// DeleteStream deletes a stream and its undelivered events; ErrNotFound when it
// is not within the scope.
func (s *Store) DeleteStream(ctx context.Context, sc Scope, id uuid.UUID) error {
	return affectedOne(s.db.ExecContext(ctx,
		`DELETE FROM webhooks WHERE id = $1 AND kind = 'ssf' AND ($2::uuid IS NULL OR $2 = ANY (tenant_ids))`, id, sc.TenantID))
}

// EventSSFVerification is the type of the event a stream's verification request
// records: delivered to that stream alone.
const EventSSFVerification = "ssf.verification"

const recordVerification = `
WITH stream AS (
    SELECT id, tenant_ids[1] AS tenant_id FROM webhooks
    WHERE id = $1 AND kind = 'ssf' AND ($2::uuid IS NULL OR $2 = ANY (tenant_ids))
), ev AS (
    INSERT INTO events (id, tenant_id, type, create_instant, body)
    SELECT $3, stream.tenant_id, 'ssf.verification', $4,
           $5::jsonb || jsonb_build_object('id', $3::uuid, 'type', 'ssf.verification', 'createInstant', $4::bigint,
                                           'tenantId', stream.tenant_id, 'streamId', stream.id)
    FROM stream
    RETURNING seq
)
INSERT INTO deliveries (webhook_id, event_seq, next_attempt_at)
SELECT $1, seq, $4 FROM ev`

// RecordVerification records a verification event for one stream, with the
// receiver's state when it gave one, and queues its delivery to that stream
// only, in one statement; ErrNotFound when the stream is not within the scope.
func (s *Store) RecordVerification(ctx context.Context, sc Scope, streamID uuid.UUID, state *string, now int64) error {
	fields := map[string]any{}
	if state != nil {
		fields["state"] = *state
	}
	b, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	return affectedOne(s.db.ExecContext(ctx, recordVerification, streamID, sc.TenantID, uuid.New(), now, jsonArg(b)))
}
