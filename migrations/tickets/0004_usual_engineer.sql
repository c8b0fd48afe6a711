-- The customer's usual engineer (its tech-support partner, from the customers service's events):
-- VIP and core tickets are dispatched to them first (T-6).
ALTER TABLE customer_tiers ADD COLUMN usual_engineer text NOT NULL DEFAULT '';
