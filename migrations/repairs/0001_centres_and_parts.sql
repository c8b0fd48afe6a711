-- The repairs service (R-1, R-3): repair centres, the parts catalogue, stock per centre and
-- part, and part requests. A partner centre's rows carry its partner organisation
-- (partner_id), which the scope rule filters on in every query.

CREATE TABLE centres (
    id uuid PRIMARY KEY,
    code text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('HQ', 'BRANCH', 'PARTNER', 'AGENT')),
    region text NOT NULL,
    address text NOT NULL,
    opening_hours text NOT NULL,
    partner_id text NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL,
    created_by text NOT NULL,
    CONSTRAINT centres_code_key UNIQUE (code),
    -- partner centres and agents belong to a partner organisation; HQ and branches to none
    CONSTRAINT centres_partner_organisation CHECK ((kind IN ('PARTNER', 'AGENT')) = (partner_id <> ''))
);
CREATE INDEX centres_by_partner ON centres (partner_id, code) WHERE partner_id <> '';

CREATE TABLE parts (
    id uuid PRIMARY KEY,
    part_number text NOT NULL,
    name text NOT NULL,
    serialised boolean NOT NULL,
    minimum_stock integer NOT NULL CHECK (minimum_stock >= 0),
    create_time timestamptz NOT NULL,
    created_by text NOT NULL,
    CONSTRAINT parts_part_number_key UNIQUE (part_number)
);

CREATE TABLE stock (
    centre_id uuid NOT NULL REFERENCES centres (id),
    part_id uuid NOT NULL REFERENCES parts (id),
    -- the centre's partner organisation, copied so scope filters without a join
    partner_id text NOT NULL,
    on_hand integer NOT NULL CHECK (on_hand >= 0),
    reserved integer NOT NULL CHECK (reserved >= 0),
    in_transit integer NOT NULL DEFAULT 0 CHECK (in_transit >= 0),
    minimum integer NOT NULL CHECK (minimum >= 0),
    -- whether the centre was told the stock is low (told once per fall below the minimum)
    low boolean NOT NULL DEFAULT false,
    update_time timestamptz NOT NULL,
    PRIMARY KEY (centre_id, part_id),
    -- R-3: never oversold, whatever the application does
    CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand)
);
CREATE INDEX stock_by_partner ON stock (partner_id, centre_id, part_id) WHERE partner_id <> '';

CREATE TABLE part_requests (
    id uuid PRIMARY KEY,
    centre_id uuid NOT NULL REFERENCES centres (id),
    part_id uuid NOT NULL REFERENCES parts (id),
    partner_id text NOT NULL,
    quantity integer NOT NULL CHECK (quantity > 0),
    state text NOT NULL CHECK (state IN ('RESERVED', 'ISSUED', 'SETTLED', 'CANCELLED')),
    ticket_id text NOT NULL DEFAULT '',
    note text NOT NULL DEFAULT '',
    used integer NOT NULL DEFAULT 0 CHECK (used >= 0),
    returned integer NOT NULL DEFAULT 0 CHECK (returned >= 0),
    request_time timestamptz NOT NULL,
    requested_by text NOT NULL,
    issue_time timestamptz,
    issued_by text NOT NULL DEFAULT '',
    close_time timestamptz,
    closed_by text NOT NULL DEFAULT '',
    cancel_reason text NOT NULL DEFAULT '',
    -- a settled request accounts for every unit: used or returned
    CONSTRAINT part_requests_settled_in_full CHECK (state <> 'SETTLED' OR used + returned = quantity)
);
CREATE INDEX part_requests_by_centre ON part_requests (centre_id, id);
CREATE INDEX part_requests_outstanding ON part_requests (partner_id, id) WHERE state = 'ISSUED';
