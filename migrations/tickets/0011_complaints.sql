-- Service complaints back in the service flow (issue 17, Q-2): the complaint that opened or
-- reopened a ticket. A complaint opens at most one ticket, even if its event came twice.
ALTER TABLE tickets ADD COLUMN complaint_id text NOT NULL DEFAULT '';
CREATE UNIQUE INDEX tickets_opened_by_complaint ON tickets (complaint_id)
    WHERE channel = 'COMPLAINT';
