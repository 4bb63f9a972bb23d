-- +goose Up
-- A refresh token's id is its session's identifier for the session's whole life:
-- a one-time-use token rotates its value in place (same row, same id), and
-- generation counts the rotations.
ALTER TABLE refresh_tokens ADD COLUMN generation integer NOT NULL DEFAULT 0;

-- Each tenant's secret for deriving a rotated token's next value from the value
-- it replaces (HMAC-SHA256), so that a reuse within the grace period can be
-- answered with the current value although only hashes of values are stored.
-- Two random UUIDs give 244 random bits from PostgreSQL's strong random source.
ALTER TABLE tenants ADD COLUMN rotation_secret bytea NOT NULL
    DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));

-- The values a session rotated away, by hash only: within grace_until a value of
-- the generation just before the current one still answers with the current
-- value; any remembered value presented later is a reuse. Rows go with their
-- token (revocation, expiry, a user's or an application's delete); the exchange
-- keeps only the last few generations of each session.
CREATE TABLE refresh_token_history (
    token_hash  bytea PRIMARY KEY,
    token_id    uuid NOT NULL REFERENCES refresh_tokens (id) ON DELETE CASCADE,
    generation  integer NOT NULL,
    grace_until bigint NOT NULL
);
CREATE INDEX refresh_token_history_token_idx ON refresh_token_history (token_id, generation);

-- The revocation of a single token now also checks, when revoking by id, that the
-- token belongs to the given user and application: a user revoking their own
-- token with an access token names themselves.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION revoke_refresh_token(p_tenant uuid, p_user uuid, p_app uuid, p_hash bytea, p_id uuid,
                                                p_now bigint, p_info jsonb,
                                                OUT user_ok boolean, OUT app_ok boolean, OUT revoked bigint)
LANGUAGE plpgsql AS $$
DECLARE
    t refresh_tokens;
    v_ttl jsonb;
BEGIN
    user_ok := p_user IS NULL OR EXISTS (
        SELECT 1 FROM users WHERE id = p_user AND (p_tenant IS NULL OR tenant_id = p_tenant));
    app_ok := p_app IS NULL OR EXISTS (
        SELECT 1 FROM applications WHERE id = p_app AND (p_tenant IS NULL OR tenant_id = p_tenant));
    revoked := 0;
    IF NOT (user_ok AND app_ok) THEN
        RETURN;
    END IF;
    IF p_hash IS NOT NULL THEN
        DELETE FROM refresh_tokens r
        WHERE r.token_hash = p_hash AND r.expires_at > p_now AND (p_tenant IS NULL OR r.tenant_id = p_tenant)
          AND (p_user IS NULL OR r.user_id = p_user) AND (p_app IS NULL OR r.application_id = p_app)
        RETURNING * INTO t;
    ELSE
        DELETE FROM refresh_tokens r
        WHERE r.id = p_id AND r.expires_at > p_now AND (p_tenant IS NULL OR r.tenant_id = p_tenant)
          AND (p_user IS NULL OR r.user_id = p_user) AND (p_app IS NULL OR r.application_id = p_app)
        RETURNING * INTO t;
    END IF;
    IF t.id IS NULL THEN
        RETURN;
    END IF;
    revoked := 1;
    SELECT jsonb_build_object(a.id::text, access_token_ttl(a.jwt_configuration, tn.jwt_configuration)) INTO v_ttl
    FROM applications a JOIN tenants tn ON tn.id = a.tenant_id WHERE a.id = t.application_id;
    PERFORM record_event('jwt.refresh-token.revoke', t.tenant_id, t.user_id, t.application_id,
        jsonb_build_object('applicationId', t.application_id, 'userId', t.user_id,
            'applicationTimeToLiveInSeconds', v_ttl,
            'refreshToken', jsonb_build_object('id', t.id, 'applicationId', t.application_id, 'userId', t.user_id,
                'tenantId', t.tenant_id, 'insertInstant', t.insert_instant, 'startInstant', t.start_instant,
                'metaData', coalesce(t.meta_data, '{}'::jsonb))),
        p_info, p_now);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP TABLE refresh_token_history;
ALTER TABLE tenants DROP COLUMN rotation_secret;
ALTER TABLE refresh_tokens DROP COLUMN generation;
