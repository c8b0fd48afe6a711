-- Returns and exchanges (R-4): the deliveries they are checked against, and the requests with
-- their diagnosis, technical judgement, decision and exchange. One open request per serial is a
-- unique index, so two concurrent requests on one unit cannot both be made.

CREATE TABLE deliveries (
    id uuid PRIMARY KEY,
    customer_id text NOT NULL,
    product_model text NOT NULL,
    serial_number text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    create_time timestamptz NOT NULL,
    created_by text NOT NULL,
    CONSTRAINT deliveries_serial_key UNIQUE (serial_number)
);

CREATE TABLE rmas (
    id uuid PRIMARY KEY,
    centre_id uuid NOT NULL REFERENCES centres (id),
    partner_id text NOT NULL,
    customer_id text NOT NULL,
    serial_number text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    reason text NOT NULL,
    state text NOT NULL,
    request_time timestamptz NOT NULL,
    requested_by text NOT NULL,
    fault_cause text NOT NULL DEFAULT '',
    customer_situation text NOT NULL DEFAULT '',
    return_reason text NOT NULL DEFAULT '',
    qualifies boolean NOT NULL DEFAULT false,
    diagnosis_time timestamptz,
    diagnosed_by text NOT NULL DEFAULT '',
    judgement text NOT NULL DEFAULT '',
    recommended text NOT NULL DEFAULT '',
    judge_time timestamptz,
    judged_by text NOT NULL DEFAULT '',
    outcome text NOT NULL DEFAULT '',
    decision_reason text NOT NULL DEFAULT '',
    decision_time timestamptz,
    decided_by text NOT NULL DEFAULT '',
    replacement_part_id uuid REFERENCES parts (id),
    carrier text NOT NULL DEFAULT '',
    tracking_number text NOT NULL DEFAULT '',
    return_due_time timestamptz,
    faulty_received_time timestamptz,
    return_overdue boolean NOT NULL DEFAULT false,
    close_time timestamptz,
    -- the diagnosis is a report with its cause, or none at all
    CONSTRAINT rmas_diagnosis_has_a_cause CHECK (diagnosis_time IS NULL OR fault_cause <> ''),
    -- the approver is never the requester
    CONSTRAINT rmas_approver_is_not_the_requester CHECK (decided_by = '' OR decided_by <> requested_by)
);
CREATE UNIQUE INDEX rmas_one_open_per_serial ON rmas (serial_number) WHERE close_time IS NULL;
CREATE INDEX rmas_by_partner ON rmas (partner_id, id);
