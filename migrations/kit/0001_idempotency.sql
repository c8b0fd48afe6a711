-- Tables of the shared kit, created in every service's schema (tracked in _kit_migrations).

-- Request-id idempotency: the first response of every Create / transition, by request id.
CREATE TABLE idempotency_keys (
    method        text        NOT NULL,
    request_id    text        NOT NULL,
    request_hash  bytea       NOT NULL,
    response      bytea       NOT NULL,
    create_time   timestamptz NOT NULL,
    PRIMARY KEY (method, request_id)
);
CREATE INDEX idempotency_keys_create_time ON idempotency_keys (create_time);
