-- +goose Up
-- Applications as OAuth clients (RFC 7009 revocation): a unique client id, the
-- SHA-256 of the client secret (never the secret), and the authentication policy.
ALTER TABLE applications ADD COLUMN client_id text;
UPDATE applications SET client_id = id::text;
ALTER TABLE applications ALTER COLUMN client_id SET NOT NULL;
ALTER TABLE applications ADD COLUMN client_secret_hash bytea;
ALTER TABLE applications ADD COLUMN client_authentication_policy text NOT NULL DEFAULT 'Required';
CREATE UNIQUE INDEX applications_client_id_key ON applications (client_id);

-- Revocation with receipts: each revoke form also returns the ids of the live
-- tokens it revoked (a bulk form only when asked, and at most 1,000 of them),
-- and a bulk form can spare one token of the user (p_except).
DROP FUNCTION revoke_refresh_token(uuid, uuid, uuid, bytea, uuid, bigint, jsonb);
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_token(p_tenant uuid, p_user uuid, p_app uuid, p_hash bytea, p_id uuid, p_now bigint,
                                     p_info jsonb, OUT user_ok boolean, OUT app_ok boolean, OUT revoked bigint,
                                     OUT ids uuid[])
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
    ids := '{}';
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
    ids := ARRAY[t.id];
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

-- Bulk revocation: see 00002 for the locking (the user, else the application,
-- FOR UPDATE first; then the DELETE with a fresh snapshot) and 00003 for the
-- events. p_except spares one token; p_receipt collects up to 1,000 ids.
DROP FUNCTION revoke_refresh_tokens(uuid, uuid, uuid, bigint, jsonb);
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_tokens(p_tenant uuid, p_user uuid, p_app uuid, p_except uuid, p_now bigint,
                                      p_info jsonb, p_receipt boolean,
                                      OUT user_ok boolean, OUT app_ok boolean, OUT revoked bigint, OUT ids uuid[])
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
    ids := '{}';
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
    ids := coalesce(ids, '{}');

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

-- The batch of single-token revocations returns each one's ids as well.
DROP FUNCTION revoke_refresh_token_many(text[], text[], text[], bytea[], text[], bigint);
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_token_many(p_tenants text[], p_users text[], p_apps text[], p_hashes bytea[],
                                          p_infos text[], p_now bigint)
RETURNS TABLE (idx integer, user_ok boolean, app_ok boolean, revoked bigint, ids uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_hashes, 1), 0) LOOP
        idx := i;
        SELECT r.user_ok, r.app_ok, r.revoked, r.ids INTO user_ok, app_ok, revoked, ids
        FROM revoke_refresh_token(nullif(p_tenants[i], '')::uuid, nullif(p_users[i], '')::uuid,
                                  nullif(p_apps[i], '')::uuid, p_hashes[i], NULL, p_now,
                                  nullif(p_infos[i], '')::jsonb) r;
        RETURN NEXT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION revoke_refresh_tokens(uuid, uuid, uuid, uuid, bigint, jsonb, boolean);
DROP INDEX applications_client_id_key;
ALTER TABLE applications DROP COLUMN client_authentication_policy;
ALTER TABLE applications DROP COLUMN client_secret_hash;
ALTER TABLE applications DROP COLUMN client_id;
