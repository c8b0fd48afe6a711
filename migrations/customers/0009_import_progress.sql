-- When an import last made progress: one left PROCESSING without progress (its process was
-- killed) is marked FAILED by the customers.imports_interrupted job.
ALTER TABLE imports ADD COLUMN update_time timestamptz;
UPDATE imports SET update_time = create_time;
ALTER TABLE imports ALTER COLUMN update_time SET NOT NULL;
CREATE INDEX imports_processing ON imports (update_time) WHERE state = 'IMPORT_STATE_PROCESSING';
