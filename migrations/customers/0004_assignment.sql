-- Assignment of customers to sales reps (C-3): the reps as the gateway announces them, and
-- every owner change.
CREATE TABLE sales_reps (
    user_id      text        PRIMARY KEY,
    region       text        NOT NULL,
    active       boolean     NOT NULL,   -- holds the sales_rep role now
    update_time  timestamptz NOT NULL
);
CREATE INDEX sales_reps_region ON sales_reps (region, user_id) WHERE active;

CREATE TABLE owner_changes (
    id             uuid        PRIMARY KEY,
    customer_id    uuid        NOT NULL REFERENCES customers (id),
    from_owner_id  text        NOT NULL,
    to_owner_id    text        NOT NULL,
    rule           text        NOT NULL,
    reason         text        NOT NULL,
    change_time    timestamptz NOT NULL,
    actor          text        NOT NULL
);
CREATE INDEX owner_changes_customer ON owner_changes (customer_id, id);

-- each rep's open customers in a region, counted when assigning fairly
CREATE INDEX customers_owner_region ON customers (owner_id, region)
    WHERE delete_time IS NULL;
