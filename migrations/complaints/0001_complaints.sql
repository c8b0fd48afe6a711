-- The complaints service schema (Q-1 … Q-7). Enum columns hold the protobuf value names without
-- their prefix (RECEIVED, PRODUCT, …). One row per cycle: a dissatisfied follow-up closes the
-- cycle (REOPENED) and starts the next with the same number.

CREATE SEQUENCE complaint_numbers;

CREATE TABLE complaints (
    id                   uuid        PRIMARY KEY,
    number               bigint      NOT NULL,
    cycle                integer     NOT NULL CHECK (cycle >= 1),
    state                text        NOT NULL,
    kind                 text        NOT NULL,
    channel              text        NOT NULL,
    customer_id          uuid        NOT NULL,
    contact_name         text        NOT NULL,
    contact_phone        text        NOT NULL,
    contact_email        text        NOT NULL,
    contact_language     text        NOT NULL,
    content              text        NOT NULL,
    staff_comment        text        NOT NULL,
    product_model        text        NOT NULL,
    serial_number        text        NOT NULL,
    ticket_id            text        NOT NULL,
    staff_id             text        NOT NULL,
    partner_id           text        NOT NULL,
    apology              text        NOT NULL,
    apologised_by        text        NOT NULL,
    apologised_time      timestamptz NOT NULL,
    committed_due        timestamptz NOT NULL,
    policy_judgement     text        NOT NULL DEFAULT '',
    policy_explanation   text        NOT NULL DEFAULT '',
    cause                text        NOT NULL DEFAULT '',
    department           text        NOT NULL DEFAULT '',
    plan                 text        NOT NULL DEFAULT '',
    compensation_kind    text        NOT NULL DEFAULT '',
    compensation_currency text       NOT NULL DEFAULT '',
    compensation_units   bigint      NOT NULL DEFAULT 0,
    compensation_nanos   integer     NOT NULL DEFAULT 0,
    plan_author          text        NOT NULL DEFAULT '',
    plan_approver        text        NOT NULL DEFAULT '',
    approval_due         timestamptz,
    resolution_due       timestamptz,
    resolution_left_us   bigint,        -- business microseconds left while paused
    resolve_time         timestamptz,
    satisfaction         integer     NOT NULL DEFAULT 0 CHECK (satisfaction BETWEEN 0 AND 5),
    previous_cycle_id    uuid        REFERENCES complaints (id),
    next_cycle_id        uuid        REFERENCES complaints (id),
    version              bigint      NOT NULL,
    create_time          timestamptz NOT NULL,
    created_by           text        NOT NULL,
    update_time          timestamptz NOT NULL,
    updated_by           text        NOT NULL,
    -- the approver is never the plan's author
    CONSTRAINT complaints_approver_not_author CHECK (plan_approver = '' OR plan_approver <> plan_author),
    -- compensation is exact and never negative
    CONSTRAINT complaints_compensation_positive CHECK (compensation_units >= 0 AND compensation_nanos >= 0)
);
-- a complaint's cycles share its number, one row per cycle
CREATE UNIQUE INDEX complaints_number_cycle ON complaints (number, cycle);
-- a cycle is reopened once
CREATE UNIQUE INDEX complaints_previous_cycle ON complaints (previous_cycle_id)
    WHERE previous_cycle_id IS NOT NULL;
-- open complaints by committed deadline (the officers' queue)
CREATE INDEX complaints_queue ON complaints (state, committed_due, id);
-- a partner's complaints about its centres
CREATE INDEX complaints_partner ON complaints (partner_id, committed_due, id) WHERE partner_id <> '';
-- the statistics: cycles received in a period
CREATE INDEX complaints_created ON complaints (create_time);

-- Missed deadlines, once each: (complaint, deadline, due time) is unique, so a timer fired
-- twice records one breach; a moved deadline's new due time can be missed again.
CREATE TABLE complaint_breaches (
    complaint_id  uuid        NOT NULL REFERENCES complaints (id),
    deadline      text        NOT NULL,
    due_time      timestamptz NOT NULL,
    breach_time   timestamptz NOT NULL,
    PRIMARY KEY (complaint_id, deadline, due_time)
);
