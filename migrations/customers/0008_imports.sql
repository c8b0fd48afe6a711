-- Customer imports (C-2): each import, its per-row report and the duplicate keys seen in it.
CREATE TABLE imports (
    id           uuid        PRIMARY KEY,
    request_id   text        NOT NULL UNIQUE,
    file_name    text        NOT NULL,
    state        text        NOT NULL,
    encoding     text        NOT NULL,
    rows         bigint      NOT NULL DEFAULT 0,
    accepted     bigint      NOT NULL DEFAULT 0,
    rejected     bigint      NOT NULL DEFAULT 0,
    duplicates   bigint      NOT NULL DEFAULT 0,
    failure      text        NOT NULL DEFAULT '',
    create_time  timestamptz NOT NULL,
    created_by   text        NOT NULL
);

CREATE TABLE import_rows (
    import_id             uuid    NOT NULL REFERENCES imports (id),
    row_number            bigint  NOT NULL,
    status                text    NOT NULL,
    customer_id           uuid,
    column_name           text    NOT NULL,
    reason                text    NOT NULL,
    duplicate_of_row      bigint  NOT NULL,
    duplicate_of_customer uuid,
    PRIMARY KEY (import_id, row_number)
);

-- the keys of the rows accepted so far in an import: a later row with one is a duplicate
CREATE TABLE import_keys (
    import_id   uuid    NOT NULL REFERENCES imports (id),
    key         text    NOT NULL,
    row_number  bigint  NOT NULL,
    PRIMARY KEY (import_id, key)
);

-- duplicates against existing customers are found by the name without its legal form
ALTER TABLE customers ADD COLUMN dedup_name text NOT NULL DEFAULT '';
UPDATE customers SET dedup_name = name_key;   -- rows before imports: the normalised name
CREATE INDEX customers_dedup_name ON customers (dedup_name) WHERE delete_time IS NULL;
