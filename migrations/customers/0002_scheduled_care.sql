-- Scheduled care (N-5): when each customer's next care message is due (NULL: at the next scan
-- once the customer is in a care stage), and which next-contact date its owner was last
-- reminded of (C-6), so each overdue date is reminded once.
ALTER TABLE customers
    ADD COLUMN next_care_date       date,
    ADD COLUMN contact_reminded_for date;
CREATE INDEX customers_care_due ON customers (stage, next_care_date NULLS FIRST)
    WHERE delete_time IS NULL;
CREATE INDEX customers_next_contact ON customers (next_contact_date)
    WHERE delete_time IS NULL AND next_contact_date IS NOT NULL;
