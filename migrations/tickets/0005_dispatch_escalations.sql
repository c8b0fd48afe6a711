-- Dispatch with spare parts, contact and arrival (T-6), the engineers' directory for dispatch
-- by region and load, and escalations of hard problems (T-8).
ALTER TABLE tickets
    ADD COLUMN parts_to_prepare jsonb       NOT NULL DEFAULT '[]',  -- [["part", quantity], …]
    ADD COLUMN contact_time     timestamptz,
    ADD COLUMN arrival_time     timestamptz,
    ADD COLUMN escalation_due   timestamptz;                       -- the open escalation's limit

-- engineers as the gateway announces its users (gateway.user_changed)
CREATE TABLE engineers (
    user_id      text        PRIMARY KEY,
    region       text        NOT NULL,
    active       boolean     NOT NULL,   -- holds the engineer role now
    update_time  timestamptz NOT NULL
);
CREATE INDEX engineers_region ON engineers (region, user_id) WHERE active;

CREATE TABLE escalations (
    id             uuid        PRIMARY KEY,
    ticket_id      uuid        NOT NULL REFERENCES tickets (id),
    kind           text        NOT NULL,
    state          text        NOT NULL,
    customer_id    uuid        NOT NULL,   -- the form as applied for: customer and product
    product_model  text        NOT NULL,
    serial_number  text        NOT NULL,
    symptom        text        NOT NULL,
    batch_failure  boolean     NOT NULL,
    due_time       timestamptz NOT NULL,
    routed_to      text        NOT NULL,
    reason         text        NOT NULL,
    review_note    text        NOT NULL,
    resolution     text        NOT NULL,
    overdue        boolean     NOT NULL,
    version        bigint      NOT NULL,
    request_time   timestamptz NOT NULL,
    requested_by   text        NOT NULL,
    update_time    timestamptz NOT NULL,
    updated_by     text        NOT NULL
);
-- one open escalation per ticket
CREATE UNIQUE INDEX escalations_open ON escalations (ticket_id)
    WHERE state IN ('ESCALATION_STATE_REQUESTED', 'ESCALATION_STATE_ROUTED');
CREATE INDEX escalations_ticket ON escalations (ticket_id, id);
CREATE INDEX escalations_queue ON escalations (due_time, id);

CREATE TABLE escalation_progress (
    id             uuid        PRIMARY KEY,
    escalation_id  uuid        NOT NULL REFERENCES escalations (id),
    note           text        NOT NULL,
    record_time    timestamptz NOT NULL,
    recorded_by    text        NOT NULL
);
CREATE INDEX escalation_progress_of ON escalation_progress (escalation_id, id);
