-- When each customer's service plan (C-8) was last checked and its owner last reminded.
ALTER TABLE customers
    ADD COLUMN service_checked_on   date,
    ADD COLUMN service_reminded_on  date;
CREATE INDEX customers_service_check ON customers (service_checked_on NULLS FIRST, id)
    WHERE delete_time IS NULL AND stage = 'STAGE_SIGNED' AND owner_id <> '';
