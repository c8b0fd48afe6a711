-- Recurring jobs (scheduled care, reminders): one row per job; the replica that locks it and
-- finds it due runs it and moves next_run on, in the transaction of the job's own writes.
CREATE TABLE scheduled_jobs (
    name       text        PRIMARY KEY,
    next_run   timestamptz NOT NULL,
    last_run   timestamptz,
    runs       bigint      NOT NULL DEFAULT 0
);
