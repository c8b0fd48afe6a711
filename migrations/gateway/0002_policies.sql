-- Per-role policies changed through the admin API; they override the configured defaults.
CREATE TABLE role_policies (
    role         text        PRIMARY KEY,
    methods      text[]      NOT NULL,
    update_time  timestamptz NOT NULL,
    updated_by   text        NOT NULL
);
