-- Tickets routed to a repair centre (issue 16, R-1): the centre a repair order for the ticket was
-- opened at, and that centre's partner organisation, whose users and API keys see the ticket.
ALTER TABLE tickets
    ADD COLUMN routed_centre_id text NOT NULL DEFAULT '',
    ADD COLUMN partner_id       text NOT NULL DEFAULT '';
-- a partner's queue: its routed tickets by state, earliest deadline first
CREATE INDEX tickets_partner_queue ON tickets (partner_id, state, next_due NULLS LAST, id)
    WHERE partner_id <> '';
