-- The gateway's schema: internal users, partner API keys and login sessions (G-1).

CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    username       text        NOT NULL,
    display_name   text        NOT NULL,
    password_hash  text        NOT NULL,   -- argon2id PHC string
    roles          text[]      NOT NULL,
    region         text        NOT NULL,
    partner_id     text        NOT NULL,
    disabled       boolean     NOT NULL DEFAULT false,
    create_time    timestamptz NOT NULL,
    created_by     text        NOT NULL,
    update_time    timestamptz NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    name         text        NOT NULL,
    secret_hash  bytea       NOT NULL,   -- sha-256 of the random secret
    roles        text[]      NOT NULL,
    partner_id   text        NOT NULL,
    expire_time  timestamptz NOT NULL,
    revoke_time  timestamptz,
    create_time  timestamptz NOT NULL,
    created_by   text        NOT NULL
);

-- A login session: the refresh token's hash; revoking it ends the session.
CREATE TABLE sessions (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id),
    refresh_hash  bytea       NOT NULL,
    expire_time   timestamptz NOT NULL,
    revoke_time   timestamptz,
    create_time   timestamptz NOT NULL,
    peer          text        NOT NULL,
    user_agent    text        NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoke_time IS NULL;
