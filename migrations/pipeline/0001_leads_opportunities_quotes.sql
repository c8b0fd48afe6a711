-- The pipeline service schema (P-1 … P-3, P-7). Enum columns hold the protobuf value names
-- without their prefix. Money is exact: currency, whole units and nanos.

CREATE TABLE leads (
    id              uuid        PRIMARY KEY,
    name            text        NOT NULL,
    contact_name    text        NOT NULL,
    contact_phone   text        NOT NULL,
    contact_email   text        NOT NULL,
    source          text        NOT NULL,
    source_ref      text        NOT NULL,
    region          text        NOT NULL,
    owner_id        text        NOT NULL,
    interest        text        NOT NULL,
    state           text        NOT NULL,
    reason          text        NOT NULL,
    customer_id     text        NOT NULL,
    opportunity_id  text        NOT NULL,
    version         bigint      NOT NULL,
    create_time     timestamptz NOT NULL,
    created_by      text        NOT NULL,
    update_time     timestamptz NOT NULL,
    updated_by      text        NOT NULL
);
CREATE INDEX leads_owner ON leads (owner_id, create_time DESC, id DESC);
CREATE INDEX leads_region ON leads (region, create_time DESC, id DESC);
CREATE INDEX leads_time ON leads (create_time DESC, id DESC);

CREATE TABLE opportunities (
    id                   uuid        PRIMARY KEY,
    name                 text        NOT NULL,
    type                 text        NOT NULL,
    customer_id          uuid        NOT NULL,
    region               text        NOT NULL,
    owner_id             text        NOT NULL,
    amount_currency      text        NOT NULL,
    amount_units         bigint      NOT NULL CHECK (amount_units >= 0),
    amount_nanos         integer     NOT NULL CHECK (amount_nanos >= 0),
    expected_close_date  date        NOT NULL,
    probability          integer     NOT NULL CHECK (probability BETWEEN 0 AND 100),
    stage                text        NOT NULL,
    lost_reason          text        NOT NULL,
    lead_id              text        NOT NULL,
    version              bigint      NOT NULL,
    create_time          timestamptz NOT NULL,
    created_by           text        NOT NULL,
    update_time          timestamptz NOT NULL,
    updated_by           text        NOT NULL,
    -- won is 100 %, lost is 0 % with a reason
    CONSTRAINT opportunities_won_certain CHECK (stage <> 'WON' OR probability = 100),
    CONSTRAINT opportunities_lost_none CHECK (stage <> 'LOST' OR (probability = 0 AND lost_reason <> ''))
);
CREATE INDEX opportunities_owner ON opportunities (owner_id, expected_close_date, id);
CREATE INDEX opportunities_region ON opportunities (region, expected_close_date, id);
CREATE INDEX opportunities_close ON opportunities (expected_close_date, id);
-- a lead converts to one opportunity
CREATE UNIQUE INDEX opportunities_lead ON opportunities (lead_id) WHERE lead_id <> '';

CREATE TABLE follow_ups (
    id                   uuid        PRIMARY KEY,
    opportunity_id       uuid        NOT NULL REFERENCES opportunities (id),
    next_step            text        NOT NULL,
    not_in_hurry_reason  text        NOT NULL,
    plan                 text        NOT NULL,
    create_time          timestamptz NOT NULL,
    created_by           text        NOT NULL
);
CREATE INDEX follow_ups_opportunity ON follow_ups (opportunity_id, id);

CREATE TABLE quotes (
    id               uuid        PRIMARY KEY,
    opportunity_id   uuid        NOT NULL REFERENCES opportunities (id),
    lines            jsonb       NOT NULL,
    currency         text        NOT NULL,
    total_units      bigint      NOT NULL,
    total_nanos      integer     NOT NULL,
    max_discount_bp  integer     NOT NULL CHECK (max_discount_bp BETWEEN 0 AND 10000),
    needs_approval   boolean     NOT NULL,
    -- the SHA-256 of the lines as saved, and of the lines an approval was given to: an approval
    -- holds only while the two are equal
    digest           bytea       NOT NULL,
    approved_digest  bytea,
    state            text        NOT NULL,
    revision         integer     NOT NULL,
    requested_by     text        NOT NULL,
    request_reason   text        NOT NULL,
    decided_by       text        NOT NULL,
    decision_reason  text        NOT NULL,
    copied_from      text        NOT NULL,
    version          bigint      NOT NULL,
    create_time      timestamptz NOT NULL,
    created_by       text        NOT NULL,
    update_time      timestamptz NOT NULL,
    updated_by       text        NOT NULL,
    -- the requester never decides
    CONSTRAINT quotes_decider_not_requester CHECK (decided_by = '' OR decided_by <> requested_by),
    -- an approved or sent quote above the limit carries an approval of exactly its lines
    CONSTRAINT quotes_approved_exactly CHECK (
        NOT needs_approval OR state NOT IN ('APPROVED', 'SENT') OR approved_digest = digest)
);
CREATE INDEX quotes_opportunity ON quotes (opportunity_id, create_time, id);
