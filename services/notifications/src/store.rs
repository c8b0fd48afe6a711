//! Storage of the notifications service: plain SQL over its own schema. Functions take a
//! connection so the caller decides what commits together.

use crm_kit::{Result, convert};
use crm_proto::notifications::v1 as pb;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{Channel, EndpointInput, Language, OptOutInput, TemplateInput};

/// The stored delivery states.
pub mod state {
    /// Waiting for an attempt.
    pub const PENDING: &str = "DELIVERY_STATE_PENDING";
    /// Being sent.
    pub const SENDING: &str = "DELIVERY_STATE_SENDING";
    /// Sent.
    pub const SENT: &str = "DELIVERY_STATE_SENT";
    /// Given up.
    pub const FAILED: &str = "DELIVERY_STATE_FAILED";
    /// Not sent on purpose.
    pub const SUPPRESSED: &str = "DELIVERY_STATE_SUPPRESSED";
}

// ---- templates ----

#[derive(sqlx::FromRow)]
struct TemplateRow {
    name: String,
    language: String,
    kind: String,
    subject: String,
    body: String,
    variables: Vec<String>,
    version: i64,
    update_time: OffsetDateTime,
    updated_by: String,
}

impl From<TemplateRow> for pb::Template {
    fn from(r: TemplateRow) -> Self {
        Self {
            name: r.name,
            language: r.language,
            kind: r.kind,
            subject: r.subject,
            body: r.body,
            variables: r.variables,
            version: r.version,
            updated: Some(convert::stamp(r.update_time, &r.updated_by)),
        }
    }
}

const TEMPLATE_COLUMNS: &str =
    "name, language, kind, subject, body, variables, version, update_time, updated_by";

/// The stored version of a template, locked for the transaction; 0 when there is none.
pub async fn lock_template_version(
    tx: &mut PgConnection,
    name: &str,
    language: Language,
) -> Result<i64> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM templates WHERE name = $1 AND language = $2 FOR UPDATE",
    )
    .bind(name)
    .bind(language.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    Ok(v.unwrap_or(0))
}

/// Inserts or replaces a template with `version`.
pub async fn save_template(
    tx: &mut PgConnection,
    t: &TemplateInput,
    version: i64,
    now: OffsetDateTime,
    actor: &str,
) -> Result<pb::Template> {
    let row: TemplateRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO templates ({TEMPLATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (name, language) DO UPDATE SET kind = $3, subject = $4, body = $5, \
         variables = $6, version = $7, update_time = $8, updated_by = $9 RETURNING {TEMPLATE_COLUMNS}"
    )))
    .bind(&t.name)
    .bind(t.language.as_str())
    .bind(&t.kind)
    .bind(&t.subject)
    .bind(&t.body)
    .bind(&t.variables)
    .bind(version)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into())
}

/// One template.
pub async fn get_template(
    conn: &mut PgConnection,
    name: &str,
    language: &str,
) -> Result<Option<pb::Template>> {
    let row: Option<TemplateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE name = $1 AND language = $2"
    )))
    .bind(name)
    .bind(language)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Into::into))
}

/// The template `name` in `language`, or in the other language when that one is missing.
pub async fn find_template(
    conn: &mut PgConnection,
    name: &str,
    language: Language,
) -> Result<Option<pb::Template>> {
    match get_template(conn, name, language.as_str()).await? {
        Some(t) => Ok(Some(t)),
        None => get_template(conn, name, language.other().as_str()).await,
    }
}

/// Templates by (name, language) after `after`.
pub async fn list_templates(
    conn: &mut PgConnection,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<pb::Template>> {
    let rows: Vec<TemplateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE ($1::text IS NULL OR (name, language) > ($1, $2)) \
         ORDER BY name, language LIMIT $3"
    )))
    .bind(after.as_ref().map(|a| a.0.clone()))
    .bind(after.as_ref().map(|a| a.1.clone()).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

// ---- the user directory and partner endpoints ----

/// A user as the gateway announced them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Name.
    pub display_name: String,
    /// E-mail.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// `zh`, `en` or empty.
    pub language: String,
}

/// Records a user as announced by the gateway.
pub async fn upsert_user(
    tx: &mut PgConnection,
    u: &crm_proto::gateway::v1::User,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, display_name, roles, region, partner_id, email, phone, language, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET \
         display_name = $2, roles = $3, region = $4, partner_id = $5, email = $6, phone = $7, \
         language = $8, update_time = $9",
    )
    .bind(&u.id)
    .bind(&u.display_name)
    .bind(&u.roles)
    .bind(&u.region)
    .bind(&u.partner_id)
    .bind(&u.email)
    .bind(&u.phone)
    .bind(&u.language)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One user of the directory.
pub async fn get_user(conn: &mut PgConnection, id: &str) -> Result<Option<UserRow>> {
    Ok(
        sqlx::query_as("SELECT id, display_name, email, phone, language FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The enabled users with `role`; those bound to a region only if it is `region`.
pub async fn users_with_role(
    conn: &mut PgConnection,
    role: &str,
    region: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM users WHERE roles @> ARRAY[$1]::text[] \
         AND (region = '' OR region = $2) ORDER BY id",
    )
    .bind(role)
    .bind(region)
    .fetch_all(&mut *conn)
    .await?)
}

/// A partner organisation's webhook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    /// URL.
    pub url: String,
    /// Language.
    pub language: String,
}

/// Stores a partner's webhook.
pub async fn set_endpoint(
    tx: &mut PgConnection,
    e: &EndpointInput,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO partner_endpoints (partner_id, url, secret, language, update_time, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partner_id) DO UPDATE SET url = $2, \
         secret = $3, language = $4, update_time = $5, updated_by = $6",
    )
    .bind(&e.partner_id)
    .bind(&e.url)
    .bind(&e.secret)
    .bind(e.language.as_str())
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A partner's webhook, if set.
pub async fn get_endpoint(
    conn: &mut PgConnection,
    partner_id: &str,
) -> Result<Option<EndpointRow>> {
    Ok(
        sqlx::query_as("SELECT url, language FROM partner_endpoints WHERE partner_id = $1")
            .bind(partner_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

// ---- opt-outs ----

/// Whether `address` (normalised) opted out of `channel`.
pub async fn is_opted_out(
    conn: &mut PgConnection,
    channel: Channel,
    address: &str,
) -> Result<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM opt_outs WHERE channel = $1 AND address = $2)",
    )
    .bind(channel.as_str())
    .bind(address)
    .fetch_one(&mut *conn)
    .await?)
}

/// Opts out or back in; returns whether anything changed.
pub async fn set_opt_out(
    tx: &mut PgConnection,
    o: &OptOutInput,
    now: OffsetDateTime,
    actor: &str,
) -> Result<bool> {
    let changed = if o.opted_out {
        sqlx::query(
            "INSERT INTO opt_outs (channel, address, customer_id, reason, create_time, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (channel, address) DO NOTHING",
        )
        .bind(o.channel.as_str())
        .bind(&o.address)
        .bind(&o.customer_id)
        .bind(&o.reason)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?
        .rows_affected()
    } else {
        sqlx::query("DELETE FROM opt_outs WHERE channel = $1 AND address = $2")
            .bind(o.channel.as_str())
            .bind(&o.address)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    };
    Ok(changed == 1)
}

#[derive(sqlx::FromRow)]
struct OptOutRow {
    channel: String,
    address: String,
    customer_id: String,
    reason: String,
    create_time: OffsetDateTime,
    created_by: String,
}

/// Opt-outs by (channel, address) after `after`.
pub async fn list_opt_outs(
    conn: &mut PgConnection,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<(pb::OptOut, (String, String))>> {
    let rows: Vec<OptOutRow> = sqlx::query_as(
        "SELECT channel, address, customer_id, reason, create_time, created_by FROM opt_outs \
         WHERE ($1::text IS NULL OR (channel, address) > ($1, $2)) ORDER BY channel, address LIMIT $3",
    )
    .bind(after.as_ref().map(|a| a.0.clone()))
    .bind(after.as_ref().map(|a| a.1.clone()).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let key = (r.channel.clone(), r.address.clone());
            let channel = pb::Channel::from_str_name(&r.channel).map_or(0, |c| c as i32);
            (
                pb::OptOut {
                    channel,
                    address: crate::domain::mask(&r.address),
                    customer_id: r.customer_id,
                    reason: r.reason,
                    created: Some(convert::stamp(r.create_time, &r.created_by)),
                },
                key,
            )
        })
        .collect())
}

// ---- notifications and deliveries ----

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
    .bind(crate::domain::normalise_address(d.channel, &d.address))
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
            crate::domain::mask(&r.address)
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

// ---- inboxes ----

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

// ---- the development sink ----

/// Records a message the sink "sent"; a second send of the same delivery records nothing.
pub async fn record_sink_message(
    conn: &mut PgConnection,
    delivery: Uuid,
    channel: Channel,
    address: &str,
    subject: &str,
    body: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO sink_messages (id, delivery_id, channel, address, subject, body, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (delivery_id) DO NOTHING",
    )
    .bind(Uuid::now_v7())
    .bind(delivery)
    .bind(channel.as_str())
    .bind(address)
    .bind(subject)
    .bind(body)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SinkRow {
    id: Uuid,
    delivery_id: Uuid,
    channel: String,
    address: String,
    subject: String,
    body: String,
    create_time: OffsetDateTime,
}

/// Sink messages, newest first, before `before`, of one channel or all.
pub async fn list_sink_messages(
    conn: &mut PgConnection,
    channel: Option<Channel>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::SentMessage>> {
    let rows: Vec<SinkRow> = sqlx::query_as(
        "SELECT id, delivery_id, channel, address, subject, body, create_time FROM sink_messages \
         WHERE ($1::text IS NULL OR channel = $1) AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
    )
    .bind(channel.map(Channel::as_str))
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| pb::SentMessage {
            id: r.id.to_string(),
            delivery_id: r.delivery_id.to_string(),
            channel: pb::Channel::from_str_name(&r.channel).map_or(0, |c| c as i32),
            address: r.address,
            subject: r.subject,
            body: r.body,
            create_time: Some(convert::timestamp(r.create_time)),
        })
        .collect())
}

// ---- the senders ----

/// A delivery a sender claimed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// Delivery id.
    pub id: Uuid,
    /// Notification id.
    pub notification_id: Uuid,
    /// Recipient key.
    pub recipient: String,
    /// Stored channel name.
    pub channel: String,
    /// Address.
    pub address: String,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Urgent.
    pub urgent: bool,
    /// This attempt's number (1 for the first).
    pub attempts: i32,
    /// The partner's webhook secret, for webhook deliveries.
    pub secret: Option<String>,
}

/// Marks pending deliveries to opted-out addresses suppressed (an opt-out recorded after the
/// message was made still stops it).
pub async fn suppress_opted_out(conn: &mut PgConnection) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE deliveries d SET state = 'DELIVERY_STATE_SUPPRESSED', suppressed_reason = 'opted out' \
         FROM opt_outs o WHERE d.state = 'DELIVERY_STATE_PENDING' AND o.channel = d.channel \
         AND o.address = d.address_key",
    )
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Claims up to `limit` due deliveries (pending and due, or being sent by a sender whose lease
/// ran out), urgent first, for `lease`; each claim counts as an attempt. Senders on other
/// replicas skip the rows this one locked, so each delivery has one sender at a time.
pub async fn claim_due(
    conn: &mut PgConnection,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
    limit: i64,
) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as(
        "WITH due AS (SELECT id FROM deliveries \
           WHERE state IN ('DELIVERY_STATE_PENDING', 'DELIVERY_STATE_SENDING') AND next_attempt_time <= $1 \
           ORDER BY urgent DESC, next_attempt_time LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE deliveries d SET state = 'DELIVERY_STATE_SENDING', attempts = d.attempts + 1, \
           next_attempt_time = $2 FROM due WHERE d.id = due.id \
         RETURNING d.id, d.notification_id, d.recipient, d.channel, d.address, d.subject, d.body, d.urgent, \
           d.attempts, (SELECT e.secret FROM partner_endpoints e WHERE 'partner:' || e.partner_id = d.recipient) AS secret",
    )
    .bind(now)
    .bind(lease_until)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// Records a successful attempt, if the claim is still this sender's; a sent urgent delivery
/// past its deadline is marked as having missed it.
pub async fn mark_sent(conn: &mut PgConnection, c: &Claimed, now: OffsetDateTime) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE deliveries SET state = 'DELIVERY_STATE_SENT', sent_time = $3, last_error = '', \
         deadline_missed = deadline_missed OR (deadline IS NOT NULL AND $3 > deadline) \
         WHERE id = $1 AND state = 'DELIVERY_STATE_SENDING' AND attempts = $2",
    )
    .bind(c.id)
    .bind(c.attempts)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Records a failed attempt: pending again at `retry_at`, or failed for good when `None`.
pub async fn mark_failed(
    conn: &mut PgConnection,
    c: &Claimed,
    error: &str,
    retry_at: Option<OffsetDateTime>,
) -> Result<bool> {
    let (state, at) = match retry_at {
        Some(at) => (state::PENDING, Some(at)),
        None => (state::FAILED, None),
    };
    Ok(sqlx::query(
        "UPDATE deliveries SET state = $3, last_error = $4, next_attempt_time = COALESCE($5, next_attempt_time) \
         WHERE id = $1 AND state = 'DELIVERY_STATE_SENDING' AND attempts = $2",
    )
    .bind(c.id)
    .bind(c.attempts)
    .bind(state)
    .bind(error)
    .bind(at)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1)
}

/// Marks unsent deliveries whose urgent deadline has passed; returns them (id, recipient,
/// channel) so the miss is logged as it happens, not only once they are finally sent.
pub async fn mark_deadline_misses(
    conn: &mut PgConnection,
    now: OffsetDateTime,
) -> Result<Vec<(Uuid, String, String)>> {
    Ok(sqlx::query_as(
        "UPDATE deliveries SET deadline_missed = true WHERE deadline IS NOT NULL AND sent_time IS NULL \
         AND NOT deadline_missed AND deadline < $1 AND state <> 'DELIVERY_STATE_SUPPRESSED' \
         RETURNING id, recipient, channel",
    )
    .bind(now)
    .fetch_all(&mut *conn)
    .await?)
}
