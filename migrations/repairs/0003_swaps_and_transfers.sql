-- Part swaps with serials (R-3): each swap is the removed unit's fault label (part, serial,
-- fault, order) and the installed unit; the removed unit is in transit to its return centre
-- until received. One row per known serial holds where it is: a serial installed or removed
-- as faulty is never installed again. Transfers move units between centres.

CREATE TABLE serials (
    part_id uuid NOT NULL REFERENCES parts (id),
    serial text NOT NULL,
    state text NOT NULL CHECK (state IN ('INSTALLED', 'FAULTY_IN_TRANSIT', 'FAULTY_RECEIVED')),
    update_time timestamptz NOT NULL,
    PRIMARY KEY (part_id, serial)
);

CREATE TABLE swaps (
    id uuid PRIMARY KEY,
    centre_id uuid NOT NULL REFERENCES centres (id),
    partner_id text NOT NULL,
    part_id uuid NOT NULL REFERENCES parts (id),
    order_id uuid REFERENCES repair_orders (id),
    ticket_id text NOT NULL DEFAULT '',
    removed_serial text NOT NULL,
    fault text NOT NULL,
    installed_serial text NOT NULL,
    return_centre_id uuid NOT NULL REFERENCES centres (id),
    swap_time timestamptz NOT NULL,
    swapped_by text NOT NULL,
    receive_time timestamptz,
    received_by text NOT NULL DEFAULT '',
    CONSTRAINT swaps_for_an_order_or_a_ticket CHECK (order_id IS NOT NULL OR ticket_id <> ''),
    CONSTRAINT swaps_two_units CHECK (removed_serial <> installed_serial)
);
CREATE INDEX swaps_by_installed ON swaps (part_id, installed_serial);
CREATE INDEX swaps_by_removed ON swaps (part_id, removed_serial);
CREATE INDEX swaps_by_centre ON swaps (centre_id, id);
CREATE INDEX swaps_in_transit ON swaps (partner_id, id) WHERE receive_time IS NULL;

CREATE TABLE transfers (
    id uuid PRIMARY KEY,
    from_centre_id uuid NOT NULL REFERENCES centres (id),
    to_centre_id uuid NOT NULL REFERENCES centres (id),
    part_id uuid NOT NULL REFERENCES parts (id),
    quantity integer NOT NULL CHECK (quantity > 0),
    state text NOT NULL CHECK (state IN ('IN_TRANSIT', 'RECEIVED')),
    note text NOT NULL DEFAULT '',
    send_time timestamptz NOT NULL,
    sent_by text NOT NULL,
    receive_time timestamptz,
    received_by text NOT NULL DEFAULT '',
    CONSTRAINT transfers_between_two_centres CHECK (from_centre_id <> to_centre_id)
);
CREATE INDEX transfers_from ON transfers (from_centre_id, id);
CREATE INDEX transfers_to ON transfers (to_centre_id, id);
