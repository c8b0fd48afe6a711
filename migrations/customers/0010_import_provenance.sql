-- Which import, and which row of its file, created a customer. A later row of the same file
-- with one of its keys is a duplicate of that row: the import finds it with the batch's one
-- look-up of existing customers, so the per-import key table is no longer written.
ALTER TABLE customers ADD COLUMN import_id uuid, ADD COLUMN import_row bigint;
UPDATE customers c SET import_id = r.import_id, import_row = r.row_number
  FROM import_rows r WHERE r.customer_id = c.id AND r.status = 'IMPORT_ROW_STATUS_ACCEPTED';
DROP TABLE import_keys;
