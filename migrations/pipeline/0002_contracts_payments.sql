-- Contracts and payments (P-4, P-5). A contract number comes from its series' counter of the
-- year, taken under the counter row's lock in the signing transaction: numbers are unique and
-- consecutive, and a signing that fails gives its number back with the rollback.

CREATE TABLE contract_series (
    series  text    NOT NULL,
    year    integer NOT NULL,
    last    bigint  NOT NULL,
    PRIMARY KEY (series, year)
);

CREATE TABLE contracts (
    id              uuid        PRIMARY KEY,
    number          text        NOT NULL UNIQUE,
    opportunity_id  uuid        NOT NULL UNIQUE REFERENCES opportunities (id),
    customer_id     uuid        NOT NULL,
    owner_id        text        NOT NULL,
    region          text        NOT NULL,
    currency        text        NOT NULL,
    amount_units    bigint      NOT NULL,
    amount_nanos    integer     NOT NULL,
    fee_units       bigint      NOT NULL,
    fee_nanos       integer     NOT NULL,
    term_months     integer     NOT NULL CHECK (term_months BETWEEN 1 AND 120),
    start_date      date        NOT NULL,
    instalments     jsonb       NOT NULL,
    version         integer     NOT NULL,
    sign_time       timestamptz NOT NULL,
    signed_by       text        NOT NULL,
    update_time     timestamptz NOT NULL,
    updated_by      text        NOT NULL,
    CONSTRAINT contracts_amount_positive CHECK (amount_units > 0 OR (amount_units = 0 AND amount_nanos > 0))
);
CREATE INDEX contracts_owner ON contracts (owner_id, sign_time);
CREATE INDEX contracts_region ON contracts (region, sign_time);

-- every version of a contract as it was, the first at signing
CREATE TABLE contract_versions (
    contract_id  uuid        NOT NULL REFERENCES contracts (id),
    version      integer     NOT NULL,
    snapshot     bytea       NOT NULL,   -- the encoded crm.pipeline.v1.Contract
    reason       text        NOT NULL,
    change_time  timestamptz NOT NULL,
    actor        text        NOT NULL,
    PRIMARY KEY (contract_id, version)
);

CREATE TABLE payments (
    id            uuid        PRIMARY KEY,
    contract_id   uuid        NOT NULL REFERENCES contracts (id),
    amount_units  bigint      NOT NULL,
    amount_nanos  integer     NOT NULL,
    paid_on       date        NOT NULL,
    reference     text        NOT NULL,
    voided        boolean     NOT NULL DEFAULT false,
    void_reason   text        NOT NULL DEFAULT '',
    record_time   timestamptz NOT NULL,
    recorded_by   text        NOT NULL,
    void_time     timestamptz,
    voided_by     text        NOT NULL DEFAULT '',
    CONSTRAINT payments_positive CHECK (amount_units > 0 OR (amount_units = 0 AND amount_nanos > 0)),
    CONSTRAINT payments_void_reason CHECK (NOT voided OR void_reason <> '')
);
CREATE INDEX payments_contract ON payments (contract_id, record_time, id);
