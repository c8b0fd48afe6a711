-- The tickets service schema (T-1 … T-5). Enum columns hold the protobuf enum value names.

CREATE TABLE tickets (
    id                    uuid        PRIMARY KEY,
    channel               text        NOT NULL,
    customer_id           uuid        NOT NULL,
    tier                  text        NOT NULL,
    region                text        NOT NULL,
    contact_name          text        NOT NULL,
    contact_phone         text        NOT NULL,
    product_model         text        NOT NULL,
    serial_number         text        NOT NULL,
    symptom               text        NOT NULL,
    warranty              text        NOT NULL,
    service_mode          text        NOT NULL,
    price_policy_told     boolean     NOT NULL,
    quote_currency        text        NOT NULL,
    quote_units           bigint      NOT NULL,
    quote_nanos           integer     NOT NULL,
    state                 text        NOT NULL,
    priority              text        NOT NULL,
    assignee_id           text        NOT NULL,
    response_due          timestamptz,
    handoff_due           timestamptz,
    resolution_due        timestamptz,
    resolution_left_s     bigint,        -- business seconds left while paused
    next_due              timestamptz,   -- the earliest running deadline: queues sort by it
    satisfaction          integer     NOT NULL,
    satisfaction_refusal  text        NOT NULL,
    version               bigint      NOT NULL,
    create_time           timestamptz NOT NULL,
    created_by            text        NOT NULL,
    update_time           timestamptz NOT NULL,
    updated_by            text        NOT NULL
);
-- queues: by state (and region / assignee), earliest deadline first
CREATE INDEX tickets_queue ON tickets (state, next_due NULLS LAST, id);
CREATE INDEX tickets_region_queue ON tickets (region, state, next_due NULLS LAST, id);
CREATE INDEX tickets_assignee_queue ON tickets (assignee_id, state, next_due NULLS LAST, id)
    WHERE assignee_id <> '';

CREATE TABLE ticket_breaches (
    id           uuid        PRIMARY KEY,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id),
    deadline     text        NOT NULL,
    due_time     timestamptz NOT NULL,
    breach_time  timestamptz NOT NULL
);
CREATE INDEX ticket_breaches_ticket ON ticket_breaches (ticket_id, breach_time);

-- every transition, warning and breach: who, when, why
CREATE TABLE ticket_history (
    id           uuid        PRIMARY KEY,
    ticket_id    uuid        NOT NULL REFERENCES tickets (id),
    transition   text        NOT NULL,
    from_state   text        NOT NULL,
    to_state     text        NOT NULL,
    reason       text        NOT NULL,
    change_time  timestamptz NOT NULL,
    actor        text        NOT NULL
);
CREATE INDEX ticket_history_ticket ON ticket_history (ticket_id, id);

-- the customers' tiers, from the customers service's events
CREATE TABLE customer_tiers (
    customer_id  uuid        PRIMARY KEY,
    tier         text        NOT NULL,
    update_time  timestamptz NOT NULL
);
