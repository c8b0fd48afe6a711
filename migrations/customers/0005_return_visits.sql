-- Return and satisfaction visits after signing (C-9), with their results.
CREATE TABLE return_visits (
    id              uuid        PRIMARY KEY,
    customer_id     uuid        NOT NULL REFERENCES customers (id),
    kind            text        NOT NULL,
    due_date        date        NOT NULL,
    owner_id        text        NOT NULL,   -- responsible when scheduled
    region          text        NOT NULL,
    done_time       timestamptz,
    done_date       date,
    score           integer     NOT NULL DEFAULT 0,
    refusal_reason  text        NOT NULL DEFAULT '',
    comments        text        NOT NULL DEFAULT '',
    recorded_by     text        NOT NULL DEFAULT '',
    UNIQUE (customer_id, kind)              -- scheduled once, at the first signing
);
CREATE INDEX return_visits_customer ON return_visits (customer_id, due_date, id);
CREATE INDEX return_visits_due ON return_visits (due_date);
