//! The SQL of the notifications and their deliveries (N-2).

use crm_kit::{Result, convert};
use crm_proto::notifications::v1 as pb;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    rules::{Channel, Language},
    store::state,
};

/// A notification to insert.
#[derive(Debug, Clone)]
pub struct NewNotification<'a> {
    /// Kind.
    pub kind: &'a str,
    /// Template name.
    pub template: &'a str,
    /// Triggering event id, or empty.
    pub event_id: &'a str,
    /// Customer, or empty.
    pub customer_id: &'a str,
    /// Urgent.
    pub urgent: bool,
    /// The urgent deadline.
    pub deadline: Option<OffsetDateTime>,
}

/// Inserts a notification; `None` if one for the same event and template exists already.
pub async fn insert_notification(
    tx: &mut PgConnection,
    n: &NewNotification<'_>,
    now: OffsetDateTime,
) -> Result<Option<Uuid>> {
    Ok(sqlx::query_scalar(
        "INSERT INTO notifications (id, kind, template, event_id, customer_id, urgent, deadline, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(n.kind)
    .bind(n.template)
    .bind(n.event_id)
    .bind(n.customer_id)
    .bind(n.urgent)
    .bind(n.deadline)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?)
}

/// A delivery to insert.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Recipient key.
    pub recipient: String,
    /// Channel.
    pub channel: Channel,
    /// Address (phone, e-mail, URL, or the inbox key).
    pub address: String,
    /// Language.
    pub language: Language,
    /// Rendered subject.
    pub subject: String,
    /// Rendered body.
    pub body: String,
    /// State to start in.
    pub state: &'static str,
    /// Error (failed) or reason (suppressed).
    pub note: String,
}

/// Inserts a delivery of `notification`; `None` if that recipient already has one on that
/// channel (the de-duplication of N-6).
pub async fn insert_delivery(
    tx: &mut PgConnection,
    notification: Uuid,
    d: &NewDelivery,
    urgent: bool,
    deadline: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Option<Uuid>> {
    let sent = d.state == state::SENT;
    let (last_error, suppressed) = match d.state {
        state::SUPPRESSED => (String::new(), d.note.clone()),
        _ => (d.note.clone(), String::new()),
    };
    Ok(sqlx::query_scalar(
        "INSERT INTO deliveries (id, notification_id, recipient, channel, address, address_key, language, \
         subject, body, urgent, state, attempts, last_error, next_attempt_time, sent_time, deadline, \
         suppressed_reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (notification_id, recipient, channel) DO NOTHING RETURNING id",
    )
    .bind(Uuid::now_v7())
    .bind(notification)
    .bind(&d.recipient)
    .bind(d.channel.as_str())
    .bind(&d.address)
    .bind(crate::rules::normalise_address(d.channel, &d.address))
    .bind(d.language.as_str())
    .bind(&d.subject)
    .bind(&d.body)
    .bind(urgent)
    .bind(d.state)
    .bind(i32::from(sent))
    .bind(last_error)
    .bind(now)
    .bind(sent.then_some(now))
    .bind(deadline)
    .bind(suppressed)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Adds an item to an inbox.
pub async fn insert_inbox_item(
    tx: &mut PgConnection,
    recipient: &str,
    notification: Uuid,
    subject: &str,
    body: &str,
    urgent: bool,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox (id, recipient, notification_id, subject, body, urgent, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7())
    .bind(recipient)
    .bind(notification)
    .bind(subject)
    .bind(body)
    .bind(urgent)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct NotificationRow {
    id: Uuid,
    kind: String,
    template: String,
    event_id: String,
    customer_id: String,
    urgent: bool,
    deadline: Option<OffsetDateTime>,
    create_time: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    notification_id: Uuid,
    recipient: String,
    channel: String,
    address: String,
    language: String,
    state: String,
    attempts: i32,
    last_error: String,
    next_attempt_time: OffsetDateTime,
    sent_time: Option<OffsetDateTime>,
    deadline_missed: bool,
    suppressed_reason: String,
}

impl From<DeliveryRow> for pb::Delivery {
    fn from(r: DeliveryRow) -> Self {
        let pending = r.state == state::PENDING;
        let address = if Channel::from_stored(&r.channel) == Some(Channel::Inbox) {
            r.address
        } else {
            crate::rules::mask(&r.address)
        };
        Self {
            id: r.id.to_string(),
            recipient: r.recipient,
            channel: pb::Channel::from_str_name(&r.channel).map_or(0, |c| c as i32),
            address,
            language: r.language,
            state: pb::DeliveryState::from_str_name(&r.state).map_or(0, |s| s as i32),
            attempts: r.attempts,
            last_error: r.last_error,
            next_attempt_time: pending.then(|| convert::timestamp(r.next_attempt_time)),
            sent_time: r.sent_time.map(convert::timestamp),
            deadline_missed: r.deadline_missed,
            suppressed_reason: r.suppressed_reason,
        }
    }
}

async fn with_deliveries(
    conn: &mut PgConnection,
    rows: Vec<NotificationRow>,
) -> Result<Vec<pb::Notification>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let deliveries: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT id, notification_id, recipient, channel, address, language, state, attempts, last_error, \
         next_attempt_time, sent_time, deadline_missed, suppressed_reason FROM deliveries \
         WHERE notification_id = ANY($1) ORDER BY recipient, channel",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<pb::Notification> = rows
        .into_iter()
        .map(|r| pb::Notification {
            id: r.id.to_string(),
            kind: r.kind,
            template: r.template,
            event_id: r.event_id,
            urgent: r.urgent,
            create_time: Some(convert::timestamp(r.create_time)),
            deadline: r.deadline.map(convert::timestamp),
            deliveries: Vec::new(),
            customer_id: r.customer_id,
        })
        .collect();
    for d in deliveries {
        let id = d.notification_id.to_string();
        if let Some(n) = out.iter_mut().find(|n| n.id == id) {
            n.deliveries.push(d.into());
        }
    }
    Ok(out)
}

const NOTIFICATION_COLUMNS: &str =
    "id, kind, template, event_id, customer_id, urgent, deadline, create_time";

/// One notification with its deliveries.
pub async fn get_notification(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<pb::Notification>> {
    let row: Option<NotificationRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(r) => with_deliveries(conn, vec![r]).await?.pop(),
        None => None,
    })
}

/// Which notifications to list.
#[derive(Debug, Clone, Default)]
pub struct NotificationQuery {
    /// With a delivery to one of these recipients (None: anyone's).
    pub recipients: Option<Vec<String>>,
    /// Of this kind.
    pub kind: Option<String>,
    /// About this customer.
    pub customer_id: Option<String>,
}

/// Notifications matching `q`, newest first, before `before`.
pub async fn list_notifications(
    conn: &mut PgConnection,
    q: &NotificationQuery,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Notification>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notifications n WHERE true"
    ));
    if let Some(r) = &q.recipients {
        b.push(" AND EXISTS (SELECT 1 FROM deliveries d WHERE d.notification_id = n.id AND d.recipient = ANY(")
            .push_bind(r.clone())
            .push("))");
    }
    if let Some(k) = &q.kind {
        b.push(" AND kind = ").push_bind(k.clone());
    }
    if let Some(c) = &q.customer_id {
        b.push(" AND customer_id = ").push_bind(c.clone());
    }
    if let Some(before) = before {
        b.push(" AND id < ").push_bind(before);
    }
    b.push(" ORDER BY id DESC LIMIT ").push_bind(limit);
    let rows: Vec<NotificationRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    with_deliveries(conn, rows).await
}
