-- The tickets' lifecycle history moves to the kit's history table (issue 15), with its ids,
-- so page tokens keep working; the old table goes.
INSERT INTO history (id, subject, kind, from_value, to_value, reason, via, actor, change_time)
SELECT id, 'tickets/' || ticket_id, 'lifecycle', from_state, to_state, reason, transition, actor, change_time
FROM ticket_history;
DROP TABLE ticket_history;
