-- Repair orders (R-2, R-6): carry-in and mail-in units at a centre, each step a named
-- transition (kit history). The partner organisation of the centre is copied for scope; open
-- orders are listed by turnaround deadline from an index.

CREATE TABLE repair_orders (
    id uuid PRIMARY KEY,
    number bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    kind text NOT NULL CHECK (kind IN ('CARRY_IN', 'MAIL_IN')),
    centre_id uuid NOT NULL REFERENCES centres (id),
    partner_id text NOT NULL,
    state text NOT NULL,
    ticket_id text NOT NULL DEFAULT '',
    customer_id text NOT NULL DEFAULT '',
    contact_name text NOT NULL,
    contact_phone text NOT NULL,
    product_model text NOT NULL,
    serial_number text NOT NULL,
    fault_description text NOT NULL,
    fault_reproduced boolean NOT NULL DEFAULT false,
    configuration text NOT NULL DEFAULT '',
    accessories text[] NOT NULL DEFAULT '{}',
    quote_currency text NOT NULL DEFAULT '',
    quote_units bigint NOT NULL DEFAULT 0,
    quote_nanos integer NOT NULL DEFAULT 0,
    paid boolean NOT NULL DEFAULT false,
    service_record text NOT NULL DEFAULT '',
    inbound_carrier text NOT NULL DEFAULT '',
    inbound_tracking text NOT NULL DEFAULT '',
    outbound_carrier text NOT NULL DEFAULT '',
    outbound_tracking text NOT NULL DEFAULT '',
    signed_by text NOT NULL DEFAULT '',
    -- carry-in: the customer at the counter; repaired while they waited; how long they waited
    arrival_time timestamptz,
    repaired_while_waiting boolean NOT NULL DEFAULT false,
    counter_wait_s bigint NOT NULL DEFAULT 0 CHECK (counter_wait_s >= 0),
    -- the pickup receipt's code, as a SHA-256 digest (the code itself is shown once)
    receipt_digest bytea,
    due_time timestamptz NOT NULL,
    create_time timestamptz NOT NULL,
    created_by text NOT NULL,
    update_time timestamptz NOT NULL,
    updated_by text NOT NULL,
    close_time timestamptz
);
CREATE INDEX repair_orders_open_by_due ON repair_orders (due_time, id) WHERE close_time IS NULL;
CREATE INDEX repair_orders_open_by_partner ON repair_orders (partner_id, due_time, id)
    WHERE close_time IS NULL AND partner_id <> '';
CREATE INDEX repair_orders_by_centre ON repair_orders (centre_id, due_time, id);
