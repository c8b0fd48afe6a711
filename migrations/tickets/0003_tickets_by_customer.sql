-- A customer's open tickets, found when its tier changes (their deadlines are recomputed).
CREATE INDEX tickets_customer ON tickets (customer_id, state);
