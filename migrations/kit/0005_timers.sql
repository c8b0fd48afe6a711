-- Timers (SLA deadlines, hand-offs, reminders): the durable truth of what is due when. Redis
-- holds the same schedule in a sorted set for fast claiming; it is rebuilt from here whenever
-- it is lost.
CREATE TABLE timers (
    id           uuid        PRIMARY KEY,
    kind         text        NOT NULL,   -- e.g. 'tickets.response_due'
    subject      text        NOT NULL,   -- what it is about, e.g. 'tickets/0192…'
    due_time     timestamptz NOT NULL,
    state        text        NOT NULL,   -- scheduled | fired | cancelled
    payload      jsonb       NOT NULL,
    create_time  timestamptz NOT NULL,
    fire_time    timestamptz,
    CONSTRAINT timers_state CHECK (state IN ('scheduled', 'fired', 'cancelled'))
);
CREATE INDEX timers_due ON timers (due_time) WHERE state = 'scheduled';
CREATE INDEX timers_subject ON timers (subject, kind) WHERE state = 'scheduled';
