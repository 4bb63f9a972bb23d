-- +goose Up
-- Less work per request for the same guarantees.
--
-- 1. No owner locks. A bulk revocation locked its user (or application) FOR
--    UPDATE, and an exchange took KEY SHARE on both, because an exchange used to
--    insert a successor token: the lock made sure a revocation saw it. Rotation
--    now happens in place, so an exchange inserts nothing: it updates the one row
--    it holds FOR UPDATE, which a revocation's DELETE waits for and then deletes
--    (or finds deleted). Each lock was a heap write and a WAL record per request.
--
-- 2. The values a session rotated away lose their foreign key: its ON DELETE
--    CASCADE ran a query per revoked token, a million for an application's million
--    tokens. A value whose token is gone is never found (every lookup joins the
--    live token), and the reaper deletes such rows in batches.
--
-- 3. events.id is no longer a unique index: nothing looks an event up by it (the
--    outbox goes by seq), and a random UUID is unique without one. One random
--    B-tree insert per event fewer.
--
-- 4. The exchange is one function call: one round trip and one statement plan,
--    where it was six statements. The application's settings decide as before
--    (exchange_policy mirrors impl/policy.go); the next value of a rotating token
--    is derived by the caller (HMAC of the value it sent, keyed with the
--    installation's rotation secret) and only its hash comes here.
ALTER TABLE refresh_token_history DROP CONSTRAINT refresh_token_history_token_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_id_key;

-- The key that derives a rotated token's next value, one per installation (so
-- that the caller can derive it before it knows the token's tenant).
CREATE TABLE server_secrets (
    name   text PRIMARY KEY,
    secret bytea NOT NULL
);
INSERT INTO server_secrets (name, secret)
VALUES ('rotation', uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
ALTER TABLE tenants DROP COLUMN rotation_secret;

-- Bulk revocation without owner locks; the user it names goes into the event as
-- it is, so that record_event need not look it up again.
DROP FUNCTION revoke_refresh_tokens(uuid, uuid, uuid, uuid, bigint, jsonb, boolean);
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_tokens(p_tenant uuid, p_user uuid, p_app uuid, p_except uuid, p_now bigint,
                                      p_info jsonb, p_receipt boolean,
                                      OUT user_ok boolean, OUT app_ok boolean, OUT revoked bigint, OUT ids uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    v_user        users;
    v_app_tenant  uuid;
    v_apps        uuid[];
    v_ttl         jsonb;
    v_fields      jsonb;
BEGIN
    user_ok := true;
    app_ok := true;
    revoked := 0;
    ids := '{}';
    IF p_user IS NOT NULL THEN
        SELECT * INTO v_user FROM users WHERE id = p_user AND (p_tenant IS NULL OR tenant_id = p_tenant);
        user_ok := FOUND;
    END IF;
    IF p_app IS NOT NULL THEN
        SELECT tenant_id INTO v_app_tenant FROM applications
        WHERE id = p_app AND (p_tenant IS NULL OR tenant_id = p_tenant);
        app_ok := FOUND;
    END IF;
    IF NOT (user_ok AND app_ok) THEN
        RETURN;
    END IF;

    IF p_user IS NOT NULL AND p_app IS NOT NULL THEN
        WITH del AS (DELETE FROM refresh_tokens
                     WHERE user_id = p_user AND application_id = p_app AND (p_except IS NULL OR id <> p_except)
                     RETURNING id, expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now),
               CASE WHEN p_receipt THEN coalesce((SELECT array_agg(d.id) FROM (SELECT id FROM del WHERE expires_at > p_now LIMIT 1000) d), '{}') ELSE '{}' END
        INTO revoked, ids FROM del;
        v_apps := ARRAY[p_app];
    ELSIF p_user IS NOT NULL THEN
        WITH del AS (DELETE FROM refresh_tokens WHERE user_id = p_user AND (p_except IS NULL OR id <> p_except)
                     RETURNING id, application_id, expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now),
               coalesce(array_agg(DISTINCT application_id) FILTER (WHERE expires_at > p_now), '{}'),
               CASE WHEN p_receipt THEN coalesce((SELECT array_agg(d.id) FROM (SELECT id FROM del WHERE expires_at > p_now LIMIT 1000) d), '{}') ELSE '{}' END
        INTO revoked, v_apps, ids FROM del;
        IF revoked = 0 THEN
            RETURN;
        END IF;
    ELSE
        WITH del AS (DELETE FROM refresh_tokens WHERE application_id = p_app RETURNING id, expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now),
               CASE WHEN p_receipt THEN coalesce((SELECT array_agg(d.id) FROM (SELECT id FROM del WHERE expires_at > p_now LIMIT 1000) d), '{}') ELSE '{}' END
        INTO revoked, ids FROM del;
        v_apps := ARRAY[p_app];
    END IF;

    SELECT coalesce(jsonb_object_agg(a.id::text, access_token_ttl(a.jwt_configuration, tn.jwt_configuration)), '{}')
    INTO v_ttl
    FROM applications a JOIN tenants tn ON tn.id = a.tenant_id WHERE a.id = ANY (v_apps);
    v_fields := jsonb_strip_nulls(jsonb_build_object('applicationId', p_app, 'userId', p_user))
        || jsonb_build_object('applicationTimeToLiveInSeconds', v_ttl);
    IF p_user IS NOT NULL THEN
        v_fields := v_fields || jsonb_build_object('user', user_json(v_user));
    END IF;
    PERFORM record_event('jwt.refresh-token.revoke', coalesce(v_user.tenant_id, v_app_tenant), p_user, p_app,
        v_fields, p_info, p_now);
END
$$;
-- +goose StatementEnd

-- The configuration in force for an application, as impl/policy.go decides it:
-- each value the application's when its jwtConfiguration is enabled and sets it,
-- else the tenant's, else the default.
-- +goose StatementBegin
CREATE FUNCTION exchange_policy(app_cfg jsonb, tenant_cfg jsonb,
                                OUT access_ttl integer, OUT refresh_minutes bigint, OUT expiration text,
                                OUT usage text, OUT max_minutes bigint, OUT grace_seconds bigint)
LANGUAGE sql IMMUTABLE AS $$
    SELECT access_token_ttl(app_cfg, tenant_cfg),
           coalesce(CASE WHEN app.on THEN nullif((app_cfg ->> 'refreshTokenTimeToLiveInMinutes')::bigint, 0) END,
                    nullif((tenant_cfg ->> 'refreshTokenTimeToLiveInMinutes')::bigint, 0), 43200),
           coalesce(CASE WHEN app.on THEN nullif(app_cfg ->> 'refreshTokenExpirationPolicy', '') END,
                    nullif(tenant_cfg ->> 'refreshTokenExpirationPolicy', ''), 'Fixed'),
           coalesce(CASE WHEN app.on THEN nullif(app_cfg ->> 'refreshTokenUsagePolicy', '') END,
                    nullif(tenant_cfg ->> 'refreshTokenUsagePolicy', ''), 'Reusable'),
           coalesce(CASE WHEN app.on THEN nullif((app_cfg ->> 'maximumTimeToLiveInMinutes')::bigint, 0) END,
                    nullif((tenant_cfg ->> 'maximumTimeToLiveInMinutes')::bigint, 0), 0),
           coalesce(CASE WHEN app.on THEN nullif((app_cfg ->> 'gracePeriodInSeconds')::bigint, 0) END,
                    nullif((tenant_cfg ->> 'gracePeriodInSeconds')::bigint, 0), 0)
    FROM (SELECT coalesce((app_cfg ->> 'enabled')::boolean, false) AS on) app
$$;
-- +goose StatementEnd

-- One exchange of the token a value names (by hash: its current value, or one
-- it rotated away), in one call. outcome: ok; not-found (no live token has or
-- had the value); user-gone (the token went with its user meanwhile); refused
-- (inactive, or a rotated-away value without the tenant's reuse policy);
-- reuse-revoked (the same, with it: the session is revoked, with its event);
-- bad-ttl (p_ttl outside 1 .. the access-token lifetime). answer_next says the
-- answer carries the next value (a rotation, or a reuse within grace) rather than
-- the value sent. See 00005 for the history and 00002 for the locking.
-- +goose StatementBegin
CREATE FUNCTION exchange_refresh_token(p_hash bytea, p_next bytea, p_now bigint, p_addr text, p_ttl integer,
                                       p_info jsonb, p_history integer,
                                       OUT outcome text, OUT token_id uuid, OUT tenant_id uuid, OUT user_id uuid,
                                       OUT application_id uuid, OUT expires_at bigint, OUT answer_next boolean,
                                       OUT app_jwt jsonb, OUT tenant_jwt jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    v_id        uuid;
    v_user      uuid;
    t           refresh_tokens;
    h           refresh_token_history;
    v_current   boolean;
    v_active    boolean;
    v_app_on    boolean;
    pol         record;
    v_start     bigint;
    v_expires   bigint;
    v_rotate    boolean := false;
BEGIN
    outcome := 'not-found';
    answer_next := false;
    SELECT r.id, r.user_id INTO v_id, v_user FROM refresh_tokens r WHERE r.token_hash = p_hash AND r.expires_at > p_now;
    IF NOT FOUND THEN
        SELECT r.id, r.user_id INTO v_id, v_user
        FROM refresh_token_history x JOIN refresh_tokens r ON r.id = x.token_id
        WHERE x.token_hash = p_hash AND r.expires_at > p_now;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    -- The row lock serialises exchanges of one session (one-time use: exactly one
    -- rotates) and makes a concurrent revocation wait for the outcome. A rotation
    -- committed while this waited is seen: the row comes back as it is now.
    SELECT * INTO t FROM refresh_tokens r WHERE r.id = v_id AND r.expires_at > p_now FOR UPDATE;
    IF NOT FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM users WHERE id = v_user) THEN
            outcome := 'user-gone';
        END IF;
        RETURN;
    END IF;
    token_id := t.id;
    tenant_id := t.tenant_id;
    user_id := t.user_id;
    application_id := t.application_id;
    v_current := t.token_hash = p_hash;
    IF NOT v_current THEN
        -- A separate statement: it sees a rotation committed while the lock waited.
        SELECT * INTO h FROM refresh_token_history x WHERE x.token_hash = p_hash AND x.token_id = t.id;
        IF NOT FOUND THEN
            RETURN;
        END IF;
    END IF;
    SELECT u.active INTO v_active FROM users u WHERE u.id = t.user_id;
    SELECT a.jwt_configuration, a.active AND coalesce(v_active, false) INTO app_jwt, v_app_on
    FROM applications a WHERE a.id = t.application_id;
    SELECT tn.jwt_configuration INTO tenant_jwt FROM tenants tn WHERE tn.id = t.tenant_id;

    IF NOT v_current AND NOT (h.generation = t.generation - 1 AND p_now < h.grace_until) THEN
        -- A rotated-away value after its grace period: a reuse.
        IF coalesce((tenant_jwt #>> '{refreshTokenRevocationPolicy,onOneTimeTokenReuse}')::boolean, false) THEN
            PERFORM revoke_refresh_token(NULL, NULL, NULL, NULL, t.id, p_now, p_info);
            outcome := 'reuse-revoked';
        ELSE
            outcome := 'refused';
        END IF;
        RETURN;
    END IF;
    IF NOT v_app_on THEN
        outcome := 'refused';
        RETURN;
    END IF;
    SELECT * INTO pol FROM exchange_policy(app_jwt, tenant_jwt);
    IF p_ttl IS NOT NULL AND (p_ttl <= 0 OR p_ttl > pol.access_ttl) THEN
        outcome := 'bad-ttl';
        RETURN;
    END IF;
    v_start := t.start_instant;
    v_expires := t.expires_at;
    IF pol.expiration IN ('SlidingWindow', 'SlidingWindowWithMaximumLifetime') THEN
        v_start := p_now;
        v_expires := p_now + pol.refresh_minutes * 60000;
        IF pol.expiration = 'SlidingWindowWithMaximumLifetime' AND pol.max_minutes > 0 THEN
            v_expires := least(v_expires, t.insert_instant + pol.max_minutes * 60000);
        END IF;
    END IF;
    IF NOT v_current THEN
        -- Within the grace period of the last rotation: the answer is the current
        -- value, which the value sent derives; nothing rotates again.
        IF t.token_hash <> p_next THEN
            outcome := 'refused';
            RETURN;
        END IF;
        answer_next := true;
    ELSIF pol.usage = 'OneTimeUse' THEN
        v_rotate := true;
        answer_next := true;
    END IF;

    UPDATE refresh_tokens r SET
        start_instant = v_start, expires_at = v_expires,
        token_hash = CASE WHEN v_rotate THEN p_next ELSE r.token_hash END,
        generation = r.generation + CASE WHEN v_rotate THEN 1 ELSE 0 END,
        meta_data = coalesce(r.meta_data, '{}'::jsonb) || jsonb_build_object('device',
            CASE WHEN jsonb_typeof(r.meta_data -> 'device') = 'object' THEN r.meta_data -> 'device' ELSE '{}'::jsonb END
            || jsonb_strip_nulls(jsonb_build_object('lastAccessedInstant', p_now, 'lastAccessedAddress', nullif(p_addr, ''))))
    WHERE r.id = t.id;
    IF v_rotate THEN
        INSERT INTO refresh_token_history (token_hash, token_id, generation, grace_until)
        VALUES (t.token_hash, t.id, t.generation,
                CASE WHEN pol.grace_seconds > 0 THEN p_now + pol.grace_seconds * 1000 ELSE 0 END)
        ON CONFLICT (token_hash) DO UPDATE
            SET token_id = EXCLUDED.token_id, generation = EXCLUDED.generation, grace_until = EXCLUDED.grace_until;
        DELETE FROM refresh_token_history x WHERE x.token_id = t.id AND x.generation <= t.generation - p_history;
    END IF;
    PERFORM record_event('jwt.refresh', t.tenant_id, t.user_id, t.application_id,
        jsonb_build_object('applicationId', t.application_id, 'userId', t.user_id, 'refreshTokenId', t.id),
        p_info, p_now);
    expires_at := v_expires;
    outcome := 'ok';
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION exchange_refresh_token(bytea, bytea, bigint, text, integer, jsonb, integer);
DROP FUNCTION exchange_policy(jsonb, jsonb);
ALTER TABLE tenants ADD COLUMN rotation_secret bytea NOT NULL
    DEFAULT (uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()));
DROP TABLE server_secrets;
ALTER TABLE events ADD CONSTRAINT events_id_key UNIQUE (id);
DELETE FROM refresh_token_history x WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.id = x.token_id);
ALTER TABLE refresh_token_history ADD CONSTRAINT refresh_token_history_token_id_fkey
    FOREIGN KEY (token_id) REFERENCES refresh_tokens (id) ON DELETE CASCADE;
