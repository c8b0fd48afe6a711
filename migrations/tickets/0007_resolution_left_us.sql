-- The resolution time left while a ticket waits for the customer, in business microseconds:
-- whole seconds lost up to a second at every pause (issue 14).
ALTER TABLE tickets ADD COLUMN resolution_left_us bigint;
UPDATE tickets SET resolution_left_us = resolution_left_s * 1000000 WHERE resolution_left_s IS NOT NULL;
ALTER TABLE tickets DROP COLUMN resolution_left_s;
