-- Targets per rep and month, and forecast snapshots (P-6, P-7): amounts in yuan nanos, exact.

CREATE TABLE targets (
    owner_id     text        NOT NULL,
    year         integer     NOT NULL,
    month        integer     NOT NULL CHECK (month BETWEEN 1 AND 12),
    region       text        NOT NULL,
    amount_nanos numeric     NOT NULL CHECK (amount_nanos > 0),
    set_time     timestamptz NOT NULL,
    set_by       text        NOT NULL,
    PRIMARY KEY (owner_id, year, month)
);

-- the forecast as it stood on `taken_on`, per rep and month of expected close
CREATE TABLE forecast_snapshots (
    taken_on        date    NOT NULL,
    owner_id        text    NOT NULL,
    region          text    NOT NULL,
    year            integer NOT NULL,
    month           integer NOT NULL,
    open            integer NOT NULL,
    pipeline_nanos  numeric NOT NULL,
    weighted_nanos  numeric NOT NULL,
    PRIMARY KEY (taken_on, owner_id, region, year, month)
);
