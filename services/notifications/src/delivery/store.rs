//! The SQL of the senders (N-4): claiming due deliveries, recording attempts, and the
//! development sink.

use crm_kit::{Result, convert};
use crm_proto::notifications::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{rules::Channel, store::state};

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
