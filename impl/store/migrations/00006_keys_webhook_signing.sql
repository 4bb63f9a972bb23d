-- +goose Up
-- The Key Master: keys that sign access tokens and webhook deliveries, in
-- FusionAuth's shape. secret holds what signs — the HMAC secret (the UTF-8 bytes
-- of its text) or the PKCS#8 DER private key, as in signing_keys — and is NULL for
-- an imported public key, which only verifies. A NULL tenant_id is a global key.
-- kid is unique across the Key Master; the built-in keys of signing_keys use their
-- id as kid, which the store refuses for a Key Master key.
CREATE TABLE keys (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kid                 text NOT NULL,
    name                text NOT NULL,
    algorithm           text NOT NULL CHECK (algorithm IN ('RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512',
                                                           'HS256', 'HS384', 'HS512')),
    type                text NOT NULL CHECK (type IN ('RSA', 'EC', 'HMAC')),
    length              integer,
    issuer              text,
    certificate         text,
    public_key          text,
    secret              bytea,
    expiration_instant  bigint,
    insert_instant      bigint NOT NULL,
    last_update_instant bigint NOT NULL,
    CONSTRAINT keys_kid_key UNIQUE (kid),
    CHECK ((type = 'HMAC') = (public_key IS NULL)),
    CHECK (type <> 'HMAC' OR secret IS NOT NULL)
);
CREATE INDEX keys_tenant_idx ON keys (tenant_id);

-- A webhook signs with a Key Master key (FusionAuth's X-FusionAuth-Signature-JWT)
-- when signing_key_id is set; the key API refuses to delete a key in use. Only a
-- tenant's delete takes its keys from under a webhook, which then covers only a
-- tenant that is gone and so receives nothing more. Our own HMAC signature
-- becomes optional: no secret, no header.
ALTER TABLE webhooks
    ALTER COLUMN signing_secret DROP NOT NULL,
    ADD COLUMN signing_key_id uuid REFERENCES keys (id) ON DELETE SET NULL,
    ADD COLUMN http_auth_username text,
    ADD COLUMN http_auth_password text;
CREATE INDEX webhooks_signing_key_idx ON webhooks (signing_key_id) WHERE signing_key_id IS NOT NULL;

-- The user as GET /api/user/{id} returns it: the same fields, those without a
-- value left out (its data as stored, nulls inside it included). Mirrors
-- userOut in impl/user.go. Plain expressions, so that it inlines into its caller.
-- +goose StatementBegin
CREATE FUNCTION user_json(u users) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
               'id', u.id, 'tenantId', u.tenant_id, 'email', u.email, 'username', u.username,
               'firstName', u.first_name, 'lastName', u.last_name, 'fullName', u.full_name,
               'active', u.active, 'insertInstant', u.insert_instant, 'lastUpdateInstant', u.last_update_instant))
        || CASE WHEN u.data IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('data', u.data) END
$$;
-- +goose StatementEnd

-- record_event as in 00003, and a revoke event that names a user also carries
-- that user (unless the caller put one in, e.g. a snapshot taken before the user
-- was deleted) and linkedObjectId, as FusionAuth's receivers read them.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION record_event(p_type text, p_tenant uuid, p_user uuid, p_app uuid, p_fields jsonb, p_info jsonb,
                                        p_now bigint) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_id     uuid := gen_random_uuid();
    v_seq    bigint;
    v_fields jsonb := p_fields;
    v_user   users;
BEGIN
    IF p_type = 'jwt.refresh-token.revoke' AND p_user IS NOT NULL THEN
        IF NOT v_fields ? 'user' THEN
            SELECT * INTO v_user FROM users WHERE id = p_user;
            IF FOUND THEN
                v_fields := v_fields || jsonb_build_object('user', user_json(v_user));
            END IF;
        END IF;
        v_fields := v_fields || jsonb_build_object('linkedObjectId', p_user);
    END IF;
    INSERT INTO events (id, tenant_id, type, create_instant, user_id, application_id, body)
    VALUES (v_id, p_tenant, p_type, p_now, p_user, p_app,
            v_fields || jsonb_build_object('id', v_id, 'type', p_type, 'createInstant', p_now,
                                           'tenantId', p_tenant, 'info', coalesce(p_info, '{}'::jsonb)))
    RETURNING seq INTO v_seq;
    INSERT INTO deliveries (webhook_id, event_seq, next_attempt_at)
    SELECT w.id, v_seq, p_now FROM webhooks w
    WHERE p_type = ANY (w.events_enabled) AND (w.global OR p_tenant = ANY (w.tenant_ids));
    RETURN v_id;
END
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION record_event(p_type text, p_tenant uuid, p_user uuid, p_app uuid, p_fields jsonb, p_info jsonb,
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
DROP FUNCTION user_json(users);
DROP INDEX webhooks_signing_key_idx;
ALTER TABLE webhooks
    DROP COLUMN http_auth_password,
    DROP COLUMN http_auth_username,
    DROP COLUMN signing_key_id;
UPDATE webhooks SET signing_secret = ''::bytea WHERE signing_secret IS NULL;
ALTER TABLE webhooks ALTER COLUMN signing_secret SET NOT NULL;
DROP TABLE keys;
