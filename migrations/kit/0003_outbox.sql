-- Events (X-1): the outbox, written in the same transaction as the change it describes, and the
-- ids each consumer has acted on.
CREATE TABLE outbox (
    seq           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- commit order
    id            uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    aggregate     text        NOT NULL,
    envelope      bytea       NOT NULL,   -- encoded crm.events.v1.Event
    create_time   timestamptz NOT NULL,
    publish_time  timestamptz             -- set once the relay has added it to its stream
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE publish_time IS NULL;
CREATE INDEX outbox_create_time ON outbox (create_time);

CREATE TABLE processed_events (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    process_time  timestamptz NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
