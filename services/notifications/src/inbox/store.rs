//! The SQL of the in-app inbox.

use crm_kit::{Result, convert};
use crm_proto::notifications::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct InboxRow {
    id: Uuid,
    recipient: String,
    notification_id: Uuid,
    subject: String,
    body: String,
    urgent: bool,
    create_time: OffsetDateTime,
    read_time: Option<OffsetDateTime>,
}

/// The items of `recipients`' inboxes, newest first, before `before`.
pub async fn list_inbox(
    conn: &mut PgConnection,
    recipients: &[String],
    unread_only: bool,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::InboxItem>> {
    let rows: Vec<InboxRow> = sqlx::query_as(
        "SELECT id, recipient, notification_id, subject, body, urgent, create_time, read_time FROM inbox \
         WHERE recipient = ANY($1) AND (NOT $2 OR read_time IS NULL) AND ($3::uuid IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(recipients)
    .bind(unread_only)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| pb::InboxItem {
            id: r.id.to_string(),
            notification_id: r.notification_id.to_string(),
            subject: r.subject,
            body: r.body,
            urgent: r.urgent,
            create_time: Some(convert::timestamp(r.create_time)),
            read_time: r.read_time.map(convert::timestamp),
            recipient: r.recipient,
        })
        .collect())
}

/// How many of `recipients`' items are unread.
pub async fn unread_count(conn: &mut PgConnection, recipients: &[String]) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM inbox WHERE recipient = ANY($1) AND read_time IS NULL",
    )
    .bind(recipients)
    .fetch_one(&mut *conn)
    .await?)
}

/// Of `ids`, those that belong to `recipients`.
pub async fn own_inbox_items(
    conn: &mut PgConnection,
    recipients: &[String],
    ids: &[Uuid],
) -> Result<Vec<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM inbox WHERE id = ANY($1) AND recipient = ANY($2)")
            .bind(ids)
            .bind(recipients)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// Marks unread items read; returns how many were unread.
pub async fn mark_read(conn: &mut PgConnection, ids: &[Uuid], now: OffsetDateTime) -> Result<i64> {
    let n = sqlx::query("UPDATE inbox SET read_time = $2 WHERE id = ANY($1) AND read_time IS NULL")
        .bind(ids)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}
