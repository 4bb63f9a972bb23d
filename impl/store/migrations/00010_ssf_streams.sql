-- +goose Up
-- Shared Signals streams are webhooks of another kind: they share the outbox, the
-- leases and the retries, so their events are never lost and arrive in order.
-- A stream belongs to one tenant (tenant_ids holds it), receives the
-- jwt.refresh-token.revoke events as CAEP session-revoked Security Event Tokens,
-- and its audience is the aud of those tokens.
ALTER TABLE webhooks
    ADD COLUMN kind text NOT NULL DEFAULT 'webhook' CHECK (kind IN ('webhook', 'ssf')),
    ADD COLUMN ssf_audience text[] NOT NULL DEFAULT '{}',
    ADD COLUMN ssf_events_requested text[] NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE webhooks DROP COLUMN ssf_events_requested, DROP COLUMN ssf_audience, DROP COLUMN kind;
