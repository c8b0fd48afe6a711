-- The stage, tier and owner histories move to the kit's history table (issue 15), with their
-- ids, so page tokens keep working; the old tables go.
INSERT INTO history (id, subject, kind, from_value, to_value, reason, via, actor, change_time)
SELECT id, 'customers/' || customer_id, 'stage', from_stage, to_stage, reason, '', actor, change_time
FROM stage_changes;
INSERT INTO history (id, subject, kind, from_value, to_value, reason, via, actor, change_time)
SELECT id, 'customers/' || customer_id, 'tier', from_tier, to_tier, reason,
       CASE WHEN override THEN 'override' ELSE '' END, actor, change_time
FROM tier_changes;
INSERT INTO history (id, subject, kind, from_value, to_value, reason, via, actor, change_time)
SELECT id, 'customers/' || customer_id, 'owner', from_owner_id, to_owner_id, reason, rule, actor, change_time
FROM owner_changes;
DROP TABLE stage_changes;
DROP TABLE tier_changes;
DROP TABLE owner_changes;
