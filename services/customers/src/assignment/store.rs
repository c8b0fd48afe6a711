//! The SQL of assignment (C-3): the sales reps' loads, the owner and its history.

use crm_kit::{Result, convert, history};
use crm_proto::customers::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{OWNER, subject};

/// Every active sales rep of `region` with their open customers there (not signed, not
/// invalid). Assignments in one region are serialised for the transaction, so two at once do
/// not both see the same loads.
pub async fn sales_rep_loads(tx: &mut PgConnection, region: &str) -> Result<Vec<(String, i64)>> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('customers.assign:' || $1, 0))")
        .bind(region)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query_as(
        "SELECT r.user_id, count(c.id) FROM directory_members r \
         LEFT JOIN customers c ON c.owner_id = r.user_id AND c.region = r.region \
           AND c.delete_time IS NULL AND c.stage <> 'STAGE_SIGNED' AND c.validity <> 'VALIDITY_INVALID' \
         WHERE r.role = 'sales_rep' AND r.active AND r.region = $1 GROUP BY r.user_id ORDER BY r.user_id",
    )
    .bind(region)
    .fetch_all(&mut *tx)
    .await?)
}

/// Gives a customer a new owner and bumps its version.
pub async fn set_owner(
    tx: &mut PgConnection,
    id: Uuid,
    owner: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE customers SET owner_id = $2, version = version + 1, update_time = $3, updated_by = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(owner)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records an owner change; returns its id.
pub async fn insert_owner_change(
    tx: &mut PgConnection,
    change: &pb::OwnerChange,
    customer: Uuid,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Uuid> {
    let subject = subject(customer);
    let entry = history::Change {
        subject: &subject,
        kind: OWNER,
        from: &change.from_owner_id,
        to: &change.to_owner_id,
        reason: &change.reason,
        via: &change.rule,
        actor,
        at: now,
    };
    history::record(tx, &entry).await
}

/// A customer's owner changes after `after`, oldest first.
pub async fn owner_changes(
    conn: &mut PgConnection,
    customer: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::OwnerChange>> {
    let entries = history::page(conn, &subject(customer), OWNER, after, limit).await?;
    Ok(entries
        .into_iter()
        .map(|e| pb::OwnerChange {
            id: e.id.to_string(),
            customer_id: customer.to_string(),
            from_owner_id: e.from_value,
            to_owner_id: e.to_value,
            rule: e.via,
            reason: e.reason,
            changed: Some(convert::stamp(e.change_time, &e.actor)),
        })
        .collect())
}
