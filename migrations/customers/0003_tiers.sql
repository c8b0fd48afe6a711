-- Tiers computed from their inputs (C-7), a manager's override, and every change of the tier
-- in force.
ALTER TABLE customers
    ADD COLUMN investment_cny          bigint      NOT NULL DEFAULT 0,
    ADD COLUMN annual_service_fee_cny  bigint      NOT NULL DEFAULT 0,
    ADD COLUMN reference_account       boolean     NOT NULL DEFAULT false,
    ADD COLUMN potential_flag          boolean     NOT NULL DEFAULT false,
    ADD COLUMN computed_tier           text        NOT NULL DEFAULT 'TIER_ORDINARY',
    ADD COLUMN tier_override           text        NOT NULL DEFAULT '',   -- '' when none
    ADD COLUMN tier_override_reason    text        NOT NULL DEFAULT '',
    ADD COLUMN tier_override_by        text        NOT NULL DEFAULT '',
    ADD COLUMN tier_override_time      timestamptz;

-- tiers set by hand before they were computed are kept, as overrides that say so
UPDATE customers
   SET tier_override = tier,
       tier_override_reason = 'set by hand before tiers were computed',
       tier_override_by = updated_by,
       tier_override_time = update_time
 WHERE tier NOT IN ('TIER_UNSPECIFIED', 'TIER_ORDINARY');
UPDATE customers SET tier = 'TIER_ORDINARY' WHERE tier = 'TIER_UNSPECIFIED';

CREATE TABLE tier_changes (
    id           uuid        PRIMARY KEY,
    customer_id  uuid        NOT NULL REFERENCES customers (id),
    from_tier    text        NOT NULL,
    to_tier      text        NOT NULL,
    reason       text        NOT NULL,
    override     boolean     NOT NULL,
    change_time  timestamptz NOT NULL,
    actor        text        NOT NULL
);
CREATE INDEX tier_changes_customer ON tier_changes (customer_id, id);
