-- +goose Up
-- Access-token signing keys, one per tenant and algorithm. secret is the HMAC
-- secret (HS256) or the PKCS#8 DER private key (RS256, ES256); it never leaves
-- the server except as a public key in /.well-known/jwks.json.
CREATE TABLE signing_keys (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    algorithm      text NOT NULL CHECK (algorithm IN ('HS256', 'RS256', 'ES256')),
    secret         bytea NOT NULL,
    insert_instant bigint NOT NULL,
    UNIQUE (tenant_id, algorithm)
);

-- The reaper finds expired tokens by this index.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Bulk revocation. It first locks the one owner that decides the race with
-- exchanges — the user when one is named, else the application — FOR UPDATE, which
-- conflicts with the KEY SHARE an exchange holds on both owners while it may mint
-- a successor token. Then the DELETE runs as a separate statement, with a fresh
-- snapshot: a token minted by an exchange that overlapped the revocation is either
-- visible to it, or minted after the revocation committed and then from a token
-- that is gone, which the exchange refuses. Locking one owner only (never user then
-- application) keeps revocations from deadlocking with imports, whose foreign-key
-- checks take KEY SHARE locks on users and applications in batch order.
-- +goose StatementBegin
CREATE FUNCTION revoke_refresh_tokens(p_tenant uuid, p_user uuid, p_app uuid, p_now bigint,
                                      OUT user_ok boolean, OUT app_ok boolean, OUT revoked bigint)
LANGUAGE plpgsql AS $$
BEGIN
    user_ok := true;
    app_ok := true;
    revoked := 0;
    IF p_user IS NOT NULL THEN
        PERFORM 1 FROM users WHERE id = p_user AND (p_tenant IS NULL OR tenant_id = p_tenant) FOR UPDATE;
        user_ok := FOUND;
        IF p_app IS NOT NULL THEN
            PERFORM 1 FROM applications WHERE id = p_app AND (p_tenant IS NULL OR tenant_id = p_tenant);
            app_ok := FOUND;
        END IF;
    ELSIF p_app IS NOT NULL THEN
        PERFORM 1 FROM applications WHERE id = p_app AND (p_tenant IS NULL OR tenant_id = p_tenant) FOR UPDATE;
        app_ok := FOUND;
    END IF;
    IF NOT (user_ok AND app_ok) THEN
        RETURN;
    END IF;
    IF p_user IS NOT NULL AND p_app IS NOT NULL THEN
        WITH del AS (DELETE FROM refresh_tokens WHERE user_id = p_user AND application_id = p_app RETURNING expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now) INTO revoked FROM del;
    ELSIF p_user IS NOT NULL THEN
        WITH del AS (DELETE FROM refresh_tokens WHERE user_id = p_user RETURNING expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now) INTO revoked FROM del;
    ELSIF p_app IS NOT NULL THEN
        WITH del AS (DELETE FROM refresh_tokens WHERE application_id = p_app RETURNING expires_at)
        SELECT count(*) FILTER (WHERE expires_at > p_now) INTO revoked FROM del;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION revoke_refresh_tokens(uuid, uuid, uuid, bigint);
DROP INDEX refresh_tokens_expires_idx;
DROP TABLE signing_keys;
