-- How far each opportunity got on the ladder (1 qualification … 5 won; lost keeps where it
-- was), kept on the row at every stage move so the conversion report is one grouped scan
-- instead of a history look-up per opportunity (issue 18 bench: 5.3 s of a 7.4 s report over a
-- million opportunities). Backfilled from the stage history.
ALTER TABLE opportunities ADD COLUMN furthest integer NOT NULL DEFAULT 1;
UPDATE opportunities o SET furthest = greatest(1, h.reached)
FROM (
    SELECT substr(subject, length('opportunities/') + 1)::uuid AS id,
           max(CASE to_value WHEN 'QUALIFICATION' THEN 1 WHEN 'NEEDS_ANALYSIS' THEN 2
               WHEN 'PROPOSAL' THEN 3 WHEN 'NEGOTIATION' THEN 4 WHEN 'WON' THEN 5 ELSE 0 END) AS reached
    FROM history WHERE kind = 'changes' AND via = 'stage' AND subject LIKE 'opportunities/%'
    GROUP BY 1
) h
WHERE h.id = o.id;
