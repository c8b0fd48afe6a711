//! The SQL of the tier override and the tier history (C-7), in the kit's history table.

use crm_kit::{Result, convert, history};
use crm_proto::customers::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{TIER, enum_value, subject};

/// How a tier change by a manager's override is marked.
const OVERRIDE: &str = "override";

/// Sets (`Some`) or clears a customer's tier override, with the tier now in force, and bumps
/// its version.
pub async fn set_tier_override(
    tx: &mut PgConnection,
    id: Uuid,
    override_tier: Option<(pb::Tier, &str)>,
    in_force: pb::Tier,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let (tier, reason) = override_tier.map_or(("", ""), |(t, r)| (t.as_str_name(), r));
    sqlx::query(
        "UPDATE customers SET tier_override = $2, tier_override_reason = $3, tier_override_by = $4, \
         tier_override_time = CASE WHEN $2 = '' THEN NULL ELSE $5 END, tier = $6, \
         version = version + 1, update_time = $5, updated_by = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(tier)
    .bind(reason)
    .bind(actor)
    .bind(now)
    .bind(in_force.as_str_name())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a change of a customer's tier in force.
pub async fn insert_tier_change(
    tx: &mut PgConnection,
    customer: Uuid,
    change: &pb::TierChange,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let subject = subject(customer);
    let entry = history::Change {
        subject: &subject,
        kind: TIER,
        from: change.from_tier().as_str_name(),
        to: change.to_tier().as_str_name(),
        reason: &change.reason,
        via: if change.r#override { OVERRIDE } else { "" },
        actor,
        at: now,
    };
    history::record(tx, &entry).await?;
    Ok(())
}

/// A customer's tier changes after `after`, oldest first.
pub async fn tier_changes(
    conn: &mut PgConnection,
    customer: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::TierChange>> {
    let entries = history::page(conn, &subject(customer), TIER, after, limit).await?;
    Ok(entries
        .into_iter()
        .map(|e| pb::TierChange {
            id: e.id.to_string(),
            customer_id: customer.to_string(),
            from_tier: enum_value(pb::Tier::from_str_name(&e.from_value)),
            to_tier: enum_value(pb::Tier::from_str_name(&e.to_value)),
            reason: e.reason,
            r#override: e.via == OVERRIDE,
            changed: Some(convert::stamp(e.change_time, &e.actor)),
        })
        .collect())
}
