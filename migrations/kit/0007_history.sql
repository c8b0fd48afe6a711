-- Who changed what, when, why, from → to (issue 15): one table for the histories of every
-- service (customers' stages, tiers and owners, tickets' lifecycle, and the new services'),
-- written and paged by crm_kit::history. Each service's own history tables move here in its
-- migrations.
CREATE TABLE history (
    id           uuid        PRIMARY KEY,           -- a v7 uuid: pages are keyed by it
    subject      text        NOT NULL,              -- the resource: customers/<id>, tickets/<id>
    kind         text        NOT NULL,              -- what changed: stage, tier, owner, lifecycle
    from_value   text        NOT NULL,
    to_value     text        NOT NULL,
    reason       text        NOT NULL,
    via          text        NOT NULL,              -- how: the transition, the rule, "override"
    actor        text        NOT NULL,
    change_time  timestamptz NOT NULL
);
CREATE INDEX history_subject ON history (subject, kind, id);
