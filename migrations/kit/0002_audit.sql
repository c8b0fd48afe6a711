-- The audit trail (G-4): one row per change, written in the same transaction as the change.
-- Append-only for everyone: updates, deletes and truncation are refused by triggers.
CREATE TABLE audit_events (
    id              uuid        PRIMARY KEY,
    event_time      timestamptz NOT NULL,
    actor           text        NOT NULL,
    actor_kind      text        NOT NULL,
    method          text        NOT NULL,
    resource        text        NOT NULL,
    changed_fields  text[]      NOT NULL,
    outcome         text        NOT NULL,
    peer            text        NOT NULL,
    user_agent      text        NOT NULL,
    trace_id        text        NOT NULL
);
CREATE INDEX audit_events_time ON audit_events (event_time DESC, id DESC);
CREATE INDEX audit_events_actor ON audit_events (actor, event_time DESC, id DESC);
CREATE INDEX audit_events_resource ON audit_events (resource, event_time DESC, id DESC);
CREATE INDEX audit_events_method ON audit_events (method, event_time DESC, id DESC);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
