-- +goose Up
-- Many single-token revocations in one transaction: group commit for concurrent
-- requests. Each element is revoked exactly as revoke_refresh_token would revoke
-- it alone, with its own scope, owners and event info; one element's outcome
-- never affects another's. Empty texts stand for absent ids. The caller sorts the
-- elements by hash, so that concurrent batches lock token rows in one order.
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_token_many(p_tenants text[], p_users text[], p_apps text[], p_hashes bytea[],
                                          p_infos text[], p_now bigint)
RETURNS TABLE (idx integer, user_ok boolean, app_ok boolean, revoked bigint)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_hashes, 1), 0) LOOP
        idx := i;
        SELECT r.user_ok, r.app_ok, r.revoked INTO user_ok, app_ok, revoked
        FROM revoke_refresh_token(nullif(p_tenants[i], '')::uuid, nullif(p_users[i], '')::uuid,
                                  nullif(p_apps[i], '')::uuid, p_hashes[i], NULL, p_now,
                                  nullif(p_infos[i], '')::jsonb) r;
        RETURN NEXT;
    END LOOP;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION revoke_refresh_token_many(text[], text[], text[], bytea[], text[], bigint);
