-- The customers service schema (C-1, C-4, C-5, C-6, C-10). Enum columns hold the protobuf
-- enum value names (e.g. 'STAGE_TRIAL') so rows read the same as the API.

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

CREATE TABLE customers (
    id                 uuid        PRIMARY KEY,
    display_name       text        NOT NULL,
    name_key           text        NOT NULL,   -- normalised name for search and duplicates
    industry           text        NOT NULL,
    region             text        NOT NULL,
    address            text        NOT NULL,
    source_channel     text        NOT NULL,
    tags               text[]      NOT NULL,
    owner_id           text        NOT NULL,
    tech_partner_id    text        NOT NULL,
    tier               text        NOT NULL,
    stage              text        NOT NULL,
    credit_rating      text        NOT NULL,
    blacklisted        boolean     NOT NULL,
    blacklist_reason   text        NOT NULL,
    validity           text        NOT NULL,
    invalid_reason     text        NOT NULL,
    next_contact_date  date,
    version            bigint      NOT NULL,
    create_time        timestamptz NOT NULL,
    created_by         text        NOT NULL,
    update_time        timestamptz NOT NULL,
    updated_by         text        NOT NULL,
    delete_time        timestamptz,
    deleted_by         text,
    CONSTRAINT customers_blacklist_reason CHECK (NOT blacklisted OR blacklist_reason <> ''),
    CONSTRAINT customers_invalid_reason
        CHECK ((validity = 'VALIDITY_INVALID') = (invalid_reason <> 'INVALID_REASON_UNSPECIFIED'))
);

-- Search (C-10): every filter has an index; lists are keyset-paginated on id (UUIDv7, so in
-- creation order).
CREATE INDEX customers_name_key_trgm ON customers USING gin (name_key gin_trgm_ops) WHERE delete_time IS NULL;
CREATE INDEX customers_region ON customers (region, id) WHERE delete_time IS NULL;
CREATE INDEX customers_owner ON customers (owner_id, id) WHERE delete_time IS NULL;
CREATE INDEX customers_tier ON customers (tier, id) WHERE delete_time IS NULL;
CREATE INDEX customers_stage ON customers (stage, id) WHERE delete_time IS NULL;
CREATE INDEX customers_tags ON customers USING gin (tags) WHERE delete_time IS NULL;
-- Overdue next contacts per owner (C-6).
CREATE INDEX customers_owner_next_contact ON customers (owner_id, next_contact_date, id)
    WHERE delete_time IS NULL AND next_contact_date IS NOT NULL;

CREATE TABLE contacts (
    customer_id  uuid    NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    position     integer NOT NULL,
    name         text    NOT NULL,
    phone        text    NOT NULL,
    phone_key    text    NOT NULL,   -- digits only, without a +86 / 0086 prefix
    email        text    NOT NULL,
    email_key    text    NOT NULL,   -- lowercased
    role         text    NOT NULL,
    PRIMARY KEY (customer_id, position)
);
CREATE INDEX contacts_phone_key ON contacts (phone_key) WHERE phone_key <> '';
CREATE INDEX contacts_email_key ON contacts (email_key) WHERE email_key <> '';

-- Maturity-stage history (C-4): who, when, why.
CREATE TABLE stage_changes (
    id           uuid        PRIMARY KEY,
    customer_id  uuid        NOT NULL REFERENCES customers (id),
    from_stage   text        NOT NULL,
    to_stage     text        NOT NULL,
    reason       text        NOT NULL,
    actor        text        NOT NULL,
    change_time  timestamptz NOT NULL
);
CREATE INDEX stage_changes_customer ON stage_changes (customer_id, id);

-- Tech-support partner requests (C-5).
CREATE TABLE partner_changes (
    id                   uuid        PRIMARY KEY,
    customer_id          uuid        NOT NULL REFERENCES customers (id),
    current_partner_id   text        NOT NULL,
    proposed_partner_id  text        NOT NULL,
    reason               text        NOT NULL,
    state                text        NOT NULL,
    requested_by         text        NOT NULL,
    request_time         timestamptz NOT NULL,
    decided_by           text,
    decision_time        timestamptz,
    decision_reason      text        NOT NULL DEFAULT ''
);
CREATE INDEX partner_changes_customer ON partner_changes (customer_id, id);
CREATE INDEX partner_changes_state ON partner_changes (state, id);
-- At most one pending request per customer.
CREATE UNIQUE INDEX partner_changes_one_pending ON partner_changes (customer_id)
    WHERE state = 'PARTNER_CHANGE_STATE_PENDING';

-- Communication log (C-6).
CREATE TABLE communications (
    id                 uuid        PRIMARY KEY,
    customer_id        uuid        NOT NULL REFERENCES customers (id),
    kind               text        NOT NULL,
    occur_time         timestamptz NOT NULL,
    summary            text        NOT NULL,
    needs              text        NOT NULL,
    concerns           text        NOT NULL,
    next_contact_date  date        NOT NULL,
    care_plan_step     text        NOT NULL,
    created_by         text        NOT NULL,
    create_time        timestamptz NOT NULL
);
CREATE INDEX communications_customer ON communications (customer_id, occur_time DESC, id DESC);
