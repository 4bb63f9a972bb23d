-- +goose Up
-- Every row carries its tenant. Ids are global UUIDs; the composite keys make it
-- impossible for a refresh token to join a user and an application of different tenants.
CREATE TABLE tenants (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    is_default        boolean NOT NULL DEFAULT false,
    jwt_configuration jsonb NOT NULL DEFAULT '{}',
    insert_instant    bigint NOT NULL
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(name));
CREATE UNIQUE INDEX tenants_one_default ON tenants (is_default) WHERE is_default;

INSERT INTO tenants (id, name, is_default, insert_instant)
VALUES (gen_random_uuid(), 'Default', true, (extract(epoch FROM now()) * 1000)::bigint);

CREATE TABLE applications (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                text NOT NULL,
    active              boolean NOT NULL DEFAULT true,
    jwt_configuration   jsonb NOT NULL DEFAULT '{}',
    insert_instant      bigint NOT NULL,
    last_update_instant bigint NOT NULL,
    UNIQUE (tenant_id, id)
);

CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    tenant_id           uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email               text,
    username            text,
    first_name          text,
    last_name           text,
    full_name           text,
    data                jsonb,
    active              boolean NOT NULL DEFAULT true,
    insert_instant      bigint NOT NULL,
    last_update_instant bigint NOT NULL,
    UNIQUE (tenant_id, id),
    CHECK (email IS NOT NULL OR username IS NOT NULL)
);
CREATE UNIQUE INDEX users_email_key ON users (tenant_id, lower(email)) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX users_username_key ON users (tenant_id, lower(username)) WHERE username IS NOT NULL;

-- Refresh tokens are stored by the SHA-256 of their value only. expires_at is the
-- instant (epoch ms) from which the token counts as absent everywhere.
CREATE TABLE refresh_tokens (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL,
    user_id        uuid NOT NULL,
    application_id uuid NOT NULL,
    token_hash     bytea NOT NULL,
    start_instant  bigint NOT NULL,
    insert_instant bigint NOT NULL,
    expires_at     bigint NOT NULL,
    meta_data      jsonb,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, application_id) REFERENCES applications (tenant_id, id) ON DELETE CASCADE
);
-- Revoke by user and by user + application; listing by user.
CREATE INDEX refresh_tokens_user_app_idx ON refresh_tokens (user_id, application_id);
-- Revoke by application, and the cascade of an application's hard delete.
CREATE INDEX refresh_tokens_app_idx ON refresh_tokens (application_id);

CREATE TABLE api_keys (
    id             uuid PRIMARY KEY,
    key_hash       bytea NOT NULL UNIQUE,
    tenant_id      uuid REFERENCES tenants (id) ON DELETE CASCADE,
    permissions    jsonb NOT NULL DEFAULT '{}',
    description    text NOT NULL DEFAULT '',
    insert_instant bigint NOT NULL
);

-- +goose Down
DROP TABLE api_keys;
DROP TABLE refresh_tokens;
DROP TABLE users;
DROP TABLE applications;
DROP TABLE tenants;
