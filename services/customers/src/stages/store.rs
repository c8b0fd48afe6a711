//! The SQL of the stage history (C-4), in the kit's history table.

use crm_kit::{Result, convert, history};
use crm_proto::customers::v1::{self as pb, Stage};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{STAGE, enum_value, subject};

/// Records a stage change.
pub async fn insert_stage_change(
    tx: &mut PgConnection,
    c: &pb::StageChange,
    id: Uuid,
    customer: Uuid,
    now: OffsetDateTime,
) -> Result<()> {
    let actor = c
        .changed
        .as_ref()
        .map(|s| s.actor.as_str())
        .unwrap_or_default();
    let subject = subject(customer);
    let change = history::Change {
        subject: &subject,
        kind: STAGE,
        from: c.from_stage().as_str_name(),
        to: c.to_stage().as_str_name(),
        reason: &c.reason,
        via: "",
        actor,
        at: now,
    };
    history::record_with_id(tx, id, &change).await
}

/// Stage changes of a customer after `after`, oldest first.
pub async fn list_stage_changes(
    conn: &mut PgConnection,
    customer: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::StageChange>> {
    let entries = history::page(conn, &subject(customer), STAGE, after, limit).await?;
    Ok(entries
        .into_iter()
        .map(|e| pb::StageChange {
            id: e.id.to_string(),
            customer_id: customer.to_string(),
            from_stage: enum_value(Stage::from_str_name(&e.from_value)),
            to_stage: enum_value(Stage::from_str_name(&e.to_value)),
            reason: e.reason,
            changed: Some(convert::stamp(e.change_time, &e.actor)),
        })
        .collect())
}
