//! Histories, written once for every service (issue 15): who changed what, when, why, from →
//! to, and how (the transition, the assignment rule, an override). One table
//! (`migrations/kit/0007_history.sql`, in every service schema), one insert, one keyset page;
//! a service maps an [`Entry`] to its own protobuf message (a stage change, a ticket history
//! entry).

use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Result;

/// One change to record.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    /// The resource, e.g. `customers/<id>`.
    pub subject: &'a str,
    /// What changed, e.g. `stage`.
    pub kind: &'a str,
    /// The value before (empty when there was none).
    pub from: &'a str,
    /// The value after.
    pub to: &'a str,
    /// Why.
    pub reason: &'a str,
    /// How: the transition, the rule, `override`; empty when it says nothing more.
    pub via: &'a str,
    /// Who.
    pub actor: &'a str,
    /// When.
    pub at: OffsetDateTime,
}

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Entry {
    /// Its id (v7: in time order).
    pub id: Uuid,
    /// The value before.
    pub from_value: String,
    /// The value after.
    pub to_value: String,
    /// Why.
    pub reason: String,
    /// How.
    pub via: String,
    /// Who.
    pub actor: String,
    /// When.
    pub change_time: OffsetDateTime,
}

/// Records `change`; its id.
pub async fn record(tx: &mut PgConnection, change: &Change<'_>) -> Result<Uuid> {
    let id = Uuid::now_v7();
    record_with_id(tx, id, change).await?;
    Ok(id)
}

/// Records `change` under `id` (a use case that names the change in its response).
pub async fn record_with_id(tx: &mut PgConnection, id: Uuid, change: &Change<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO history (id, subject, kind, from_value, to_value, reason, via, actor, change_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(id)
    .bind(change.subject)
    .bind(change.kind)
    .bind(change.from)
    .bind(change.to)
    .bind(change.reason)
    .bind(change.via)
    .bind(change.actor)
    .bind(change.at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records many changes at once (an import's new customers).
pub async fn record_many<'a>(tx: &mut PgConnection, changes: &[Change<'a>]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let column = |f: fn(&Change<'a>) -> &'a str| changes.iter().map(f).collect::<Vec<&str>>();
    sqlx::query(
        "INSERT INTO history (id, subject, kind, from_value, to_value, reason, via, actor, change_time) \
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::timestamptz[])",
    )
    .bind(changes.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(column(|c| c.subject))
    .bind(column(|c| c.kind))
    .bind(column(|c| c.from))
    .bind(column(|c| c.to))
    .bind(column(|c| c.reason))
    .bind(column(|c| c.via))
    .bind(column(|c| c.actor))
    .bind(changes.iter().map(|c| c.at).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The `kind` changes of `subject` after `after`, oldest first, at most `limit`.
pub async fn page(
    conn: &mut PgConnection,
    subject: &str,
    kind: &str,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Entry>> {
    Ok(sqlx::query_as(
        "SELECT id, from_value, to_value, reason, via, actor, change_time FROM history \
         WHERE subject = $1 AND kind = $2 AND ($3::uuid IS NULL OR id > $3) ORDER BY id LIMIT $4",
    )
    .bind(subject)
    .bind(kind)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}
