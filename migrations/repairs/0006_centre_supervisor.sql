-- A centre's supervisor (R-5): its turnaround breaches go to them; empty means the supervisors of
-- the centre's region.
ALTER TABLE centres ADD COLUMN supervisor_id text NOT NULL DEFAULT '';
