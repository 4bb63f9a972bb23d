-- +goose Up
-- Less contention and less planning per request; the guarantees are unchanged.
--
-- 1. events.tenant_id loses its foreign key. Its check locked the tenant's row
--    (FOR KEY SHARE) once per event: every concurrent revocation and exchange of
--    a tenant locked the same row, and PostgreSQL records several lockers of one
--    row as a multixact, rewriting the row's xmax (a heap write and a WAL record)
--    each time one joins. A trigger now deletes a tenant's events with it, at
--    commit: by then the foreign-key cascades have deleted the tenant's tokens,
--    users and applications, waiting for every concurrent transaction that held
--    one of them (a revocation, an exchange), so its query sees their events
--    committed. An event that still outlives its tenant (one that names no row of
--    it) is delivered and then pruned with the others at the end of retention.
--
-- 2. exchange_policy in plpgsql. A SQL function that cannot be inlined (it
--    returns a row) is parsed and planned again on each call; plpgsql keeps its
--    plans for the session, and its assignments are simple expressions. It now
--    treats a negative setting as unset, as impl/policy.go does.
--
-- 3. refresh_tokens keeps 15% of each new page free, so that an exchange that
--    changes no indexed column (a reusable token with a fixed lifetime: only the
--    device's last access changes) is a heap-only update, without an entry in
--    each of the table's five indexes. Existing pages keep their fill until they
--    are rewritten (VACUUM FULL or CLUSTER).
--
-- 4. exchange_refresh_token_many and revoke_refresh_tokens_many: concurrent
--    exchanges, and concurrent revocations of users' tokens, run in one statement
--    and commit together (impl/store/batch.go), each exactly as it runs alone,
--    with its own outcome.
ALTER TABLE events DROP CONSTRAINT events_tenant_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION delete_tenant_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM events WHERE tenant_id = OLD.id;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE CONSTRAINT TRIGGER tenant_events_go_with_it AFTER DELETE ON tenants
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION delete_tenant_events();

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION exchange_policy(app_cfg jsonb, tenant_cfg jsonb,
                                           OUT access_ttl integer, OUT refresh_minutes bigint, OUT expiration text,
                                           OUT usage text, OUT max_minutes bigint, OUT grace_seconds bigint)
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    app_on boolean := coalesce((app_cfg ->> 'enabled')::boolean, false);
BEGIN
    access_ttl := access_token_ttl(app_cfg, tenant_cfg);
    refresh_minutes := CASE
        WHEN app_on AND (app_cfg ->> 'refreshTokenTimeToLiveInMinutes')::bigint > 0
            THEN (app_cfg ->> 'refreshTokenTimeToLiveInMinutes')::bigint
        WHEN (tenant_cfg ->> 'refreshTokenTimeToLiveInMinutes')::bigint > 0
            THEN (tenant_cfg ->> 'refreshTokenTimeToLiveInMinutes')::bigint
        ELSE 43200 END;
    expiration := CASE
        WHEN app_on AND coalesce(app_cfg ->> 'refreshTokenExpirationPolicy', '') <> ''
            THEN app_cfg ->> 'refreshTokenExpirationPolicy'
        WHEN coalesce(tenant_cfg ->> 'refreshTokenExpirationPolicy', '') <> ''
            THEN tenant_cfg ->> 'refreshTokenExpirationPolicy'
        ELSE 'Fixed' END;
    usage := CASE
        WHEN app_on AND coalesce(app_cfg ->> 'refreshTokenUsagePolicy', '') <> ''
            THEN app_cfg ->> 'refreshTokenUsagePolicy'
        WHEN coalesce(tenant_cfg ->> 'refreshTokenUsagePolicy', '') <> ''
            THEN tenant_cfg ->> 'refreshTokenUsagePolicy'
        ELSE 'Reusable' END;
    max_minutes := CASE
        WHEN app_on AND (app_cfg ->> 'maximumTimeToLiveInMinutes')::bigint > 0
            THEN (app_cfg ->> 'maximumTimeToLiveInMinutes')::bigint
        WHEN (tenant_cfg ->> 'maximumTimeToLiveInMinutes')::bigint > 0
            THEN (tenant_cfg ->> 'maximumTimeToLiveInMinutes')::bigint
        ELSE 0 END;
    grace_seconds := CASE
        WHEN app_on AND (app_cfg ->> 'gracePeriodInSeconds')::bigint > 0
            THEN (app_cfg ->> 'gracePeriodInSeconds')::bigint
        WHEN (tenant_cfg ->> 'gracePeriodInSeconds')::bigint > 0
            THEN (tenant_cfg ->> 'gracePeriodInSeconds')::bigint
        ELSE 0 END;
END
$$;
-- +goose StatementEnd

ALTER TABLE refresh_tokens SET (fillfactor = 85);

-- +goose StatementBegin
CREATE FUNCTION exchange_refresh_token_many(p_hashes bytea[], p_nexts bytea[], p_nows bigint[], p_addrs text[],
                                            p_ttls integer[], p_infos text[], p_history integer)
RETURNS TABLE (idx integer, outcome text, token_id uuid, tenant_id uuid, user_id uuid, application_id uuid,
               expires_at bigint, answer_next boolean, app_jwt jsonb, tenant_jwt jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_hashes, 1), 0) LOOP
        idx := i;
        SELECT x.outcome, x.token_id, x.tenant_id, x.user_id, x.application_id, x.expires_at, x.answer_next,
               x.app_jwt, x.tenant_jwt
        INTO outcome, token_id, tenant_id, user_id, application_id, expires_at, answer_next, app_jwt, tenant_jwt
        FROM exchange_refresh_token(p_hashes[i], p_nexts[i], p_nows[i], p_addrs[i], nullif(p_ttls[i], 0),
                                    nullif(p_infos[i], '')::jsonb, p_history) x;
        RETURN NEXT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_tokens_many(p_tenants text[], p_users text[], p_apps text[], p_excepts text[],
                                           p_infos text[], p_receipts boolean[], p_now bigint)
RETURNS TABLE (idx integer, user_ok boolean, app_ok boolean, revoked bigint, ids uuid[])
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_users, 1), 0) LOOP
        idx := i;
        SELECT r.user_ok, r.app_ok, r.revoked, r.ids INTO user_ok, app_ok, revoked, ids
        FROM revoke_refresh_tokens(nullif(p_tenants[i], '')::uuid, nullif(p_users[i], '')::uuid,
                                   nullif(p_apps[i], '')::uuid, nullif(p_excepts[i], '')::uuid, p_now,
                                   nullif(p_infos[i], '')::jsonb, p_receipts[i]) r;
        RETURN NEXT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION revoke_refresh_tokens_many(text[], text[], text[], text[], text[], boolean[], bigint);
DROP FUNCTION exchange_refresh_token_many(bytea[], bytea[], bigint[], text[], integer[], text[], integer);
ALTER TABLE refresh_tokens RESET (fillfactor);
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION exchange_policy(app_cfg jsonb, tenant_cfg jsonb,
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
DROP TRIGGER tenant_events_go_with_it ON tenants;
DROP FUNCTION delete_tenant_events();
DELETE FROM events e WHERE NOT EXISTS (SELECT 1 FROM tenants t WHERE t.id = e.tenant_id);
ALTER TABLE events ADD CONSTRAINT events_tenant_id_fkey
    FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
