-- Turnaround (R-5): a repair order's warning and breach, recorded once by the kit's timers,
-- and its priority, raised by a breach; the report counts orders due in a period per centre.
ALTER TABLE repair_orders
    ADD COLUMN priority text NOT NULL DEFAULT 'NORMAL' CHECK (priority IN ('NORMAL', 'HIGH')),
    ADD COLUMN warning_time timestamptz,
    ADD COLUMN breach_time timestamptz;
CREATE INDEX repair_orders_by_due ON repair_orders (due_time);
