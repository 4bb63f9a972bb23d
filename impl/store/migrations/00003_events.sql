-- +goose Up
-- Webhooks receive events. lease_owner/lease_until let several dispatchers (in
-- several server processes) share the work without two delivering for one
-- webhook at once, which also keeps each webhook's events in order.
CREATE TABLE webhooks (
    id                  uuid PRIMARY KEY,
    url                 text NOT NULL,
    description         text NOT NULL DEFAULT '',
    events_enabled      text[] NOT NULL DEFAULT '{}',
    global              boolean NOT NULL DEFAULT false,
    tenant_ids          uuid[] NOT NULL DEFAULT '{}',
    connect_timeout_ms  integer NOT NULL,
    read_timeout_ms     integer NOT NULL,
    headers             jsonb NOT NULL DEFAULT '{}',
    signing_secret      bytea NOT NULL,
    insert_instant      bigint NOT NULL,
    last_update_instant bigint NOT NULL,
    lease_owner         uuid,
    lease_until         bigint
);

-- The outbox and the audit log: an event is written in the same transaction as
-- the change it reports. seq orders events for delivery.
CREATE TABLE events (
    seq            bigserial PRIMARY KEY,
    id             uuid NOT NULL UNIQUE,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type           text NOT NULL,
    create_instant bigint NOT NULL,
    user_id        uuid,
    application_id uuid,
    body           jsonb NOT NULL
);
CREATE INDEX events_create_instant_idx ON events (create_instant);
CREATE INDEX events_user_idx ON events (user_id, seq) WHERE user_id IS NOT NULL;

-- One row per (webhook, event) to deliver, made with the event.
CREATE TABLE deliveries (
    webhook_id      uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_seq       bigint NOT NULL REFERENCES events (seq) ON DELETE CASCADE,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    delivered_at    bigint,
    last_error      text,
    PRIMARY KEY (webhook_id, event_seq)
);
CREATE INDEX deliveries_pending_idx ON deliveries (webhook_id, event_seq) WHERE delivered_at IS NULL;
CREATE INDEX deliveries_event_idx ON deliveries (event_seq);

-- The access-token lifetime of an application: its own when its configuration is
-- enabled and sets one, else its tenant's, else 3,600 s. Mirrors impl/policy.go.
CREATE FUNCTION access_token_ttl(app_cfg jsonb, tenant_cfg jsonb) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN coalesce((app_cfg ->> 'enabled')::boolean, false)
             AND coalesce((app_cfg ->> 'timeToLiveInSeconds')::integer, 0) > 0
            THEN (app_cfg ->> 'timeToLiveInSeconds')::integer
        WHEN coalesce((tenant_cfg ->> 'timeToLiveInSeconds')::integer, 0) > 0
            THEN (tenant_cfg ->> 'timeToLiveInSeconds')::integer
        ELSE 3600
    END
$$;

-- record_event stores one event and a delivery for every webhook that wants it.
-- +goose StatementBegin
CREATE FUNCTION record_event(p_type text, p_tenant uuid, p_user uuid, p_app uuid, p_fields jsonb, p_info jsonb,
                             p_now bigint) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id  uuid := gen_random_uuid();
    v_seq bigint;
BEGIN
    INSERT INTO events (id, tenant_id, type, create_instant, user_id, application_id, body)
    VALUES (v_id, p_tenant, p_type, p_now, p_user, p_app,
            p_fields || jsonb_build_object('id', v_id, 'type', p_type, 'createInstant', p_now,
                                           'tenantId', p_tenant, 'info', coalesce(p_info, '{}'::jsonb)))
    RETURNING seq INTO v_seq;
    INSERT INTO deliveries (webhook_id, event_seq, next_attempt_at)
    SELECT w.id, v_seq, p_now FROM webhooks w
    WHERE p_type = ANY (w.events_enabled) AND (w.global OR p_tenant = ANY (w.tenant_ids));
    RETURN v_id;
END
$$;
-- +goose StatementEnd

-- The revocation of a single token (by hash or by id) and its event, in one call.
-- A given user or application must exist (user_ok/app_ok), and the token must
-- belong to them.
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_token(p_tenant uuid, p_user uuid, p_app uuid, p_hash bytea, p_id uuid, p_now bigint,
                                     p_info jsonb, OUT user_ok boolean, OUT app_ok boolean, OUT revoked bigint)
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

-- Bulk revocation, now with its event. See 00002 for the locking: the user (else
-- the application) is locked FOR UPDATE first, then the DELETE runs with a fresh
-- snapshot. Events: user + application and application always get one; user only
-- gets one when at least one live token was revoked, listing each application the
-- user had tokens for.
DROP FUNCTION revoke_refresh_tokens(uuid, uuid, uuid, bigint);
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_tokens(p_tenant uuid, p_user uuid, p_app uuid, p_now bigint, p_info jsonb,
                                      OUT user_ok boolean, OUT app_ok boolean, OUT revoked bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_user_tenant uuid;
    v_app_tenant  uuid;
    v_apps        uuid[];
    v_ttl         jsonb;
BEGIN
    user_ok := true;
    app_ok := true;
    revoked := 0;
    IF p_user IS NOT NULL THEN
        SELECT tenant_id INTO v_user_tenant FROM users
        WHERE id = p_user AND (p_tenant IS NULL OR tenant_id = p_tenant) FOR UPDATE;
        user_ok := FOUND;
        IF p_app IS NOT NULL THEN
            SELECT tenant_id INTO v_app_tenant FROM applications
            WHERE id = p_app AND (p_tenant IS NULL OR tenant_id = p_tenant);
            app_ok := FOUND;
        END IF;
    ELSIF p_app IS NOT NULL THEN
        SELECT tenant_id INTO v_app_tenant FROM applications
        WHERE id = p_app AND (p_tenant IS NULL OR tenant_id = p_tenant) FOR UPDATE;
        app_ok := FOUND;
    END IF;
    IF NOT (user_ok AND app_ok) THEN
        RETURN;
    END IF;

    IF p_user IS NOT NULL AND p_app IS NOT NULL THEN
        WITH del AS (DELETE FROM refresh_tokens WHERE user_id = p_user AND application_id = p_app RETURNING expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now) INTO revoked FROM del;
        v_apps := ARRAY[p_app];
    ELSIF p_user IS NOT NULL THEN
        WITH del AS (DELETE FROM refresh_tokens WHERE user_id = p_user RETURNING application_id, expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now),
               coalesce(array_agg(DISTINCT application_id) FILTER (WHERE expires_at > p_now), '{}')
        INTO revoked, v_apps FROM del;
        IF revoked = 0 THEN
            RETURN;
        END IF;
    ELSE
        WITH del AS (DELETE FROM refresh_tokens WHERE application_id = p_app RETURNING expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now) INTO revoked FROM del;
        v_apps := ARRAY[p_app];
    END IF;

    SELECT coalesce(jsonb_object_agg(a.id::text, access_token_ttl(a.jwt_configuration, tn.jwt_configuration)), '{}')
    INTO v_ttl
    FROM applications a JOIN tenants tn ON tn.id = a.tenant_id WHERE a.id = ANY (v_apps);
    PERFORM record_event('jwt.refresh-token.revoke', coalesce(v_user_tenant, v_app_tenant), p_user, p_app,
        jsonb_strip_nulls(jsonb_build_object('applicationId', p_app, 'userId', p_user))
            || jsonb_build_object('applicationTimeToLiveInSeconds', v_ttl),
        p_info, p_now);
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION revoke_refresh_tokens(uuid, uuid, uuid, bigint, jsonb);
DROP FUNCTION revoke_refresh_token(uuid, uuid, uuid, bytea, uuid, bigint, jsonb);
DROP FUNCTION record_event(text, uuid, uuid, uuid, jsonb, jsonb, bigint);
DROP FUNCTION access_token_ttl(jsonb, jsonb);
DROP TABLE deliveries;
DROP TABLE events;
DROP TABLE webhooks;
