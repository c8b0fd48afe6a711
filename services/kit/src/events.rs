//! Events that are never lost, written once for every service.
//!
//! - [`publish`] writes the event to the service's `outbox` in the transaction of the change.
//! - [`spawn_relay`] moves outbox rows, in commit order, to a Redis Stream per topic. One relay
//!   per schema is active at a time (a Postgres advisory lock), so events of an aggregate keep
//!   their order; other replicas stand by. A crash between the stream append and marking the row
//!   published republishes it; consumers de-duplicate. If Redis loses its data, the relay sees
//!   its epoch marker gone and publishes again everything committed within
//!   `events.replay_window_s`.
//! - [`spawn_consumer`] reads a topic with a consumer group. Each event is handled in one
//!   Postgres transaction that also records its id in `processed_events`, so an event is acted
//!   on once however often it is delivered; it is acknowledged after the commit. Deliveries left
//!   pending by a consumer that died are claimed by a live one (XAUTOCLAIM).

use std::{sync::Arc, time::Duration};

use crm_proto::events::v1 as pb;
use opentelemetry::propagation::TextMapPropagator;
use prost::{Message, Name};
use redis::{aio::ConnectionManager, streams::StreamId};
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use uuid::Uuid;

use crate::{Error, config::RedisSettings, context::Call, convert};

/// The `[events]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Outbox rows a relay moves per round trip.
    pub relay_batch: i64,
    /// How long an idle relay waits before looking again.
    pub relay_poll_ms: u64,
    /// Events a consumer reads at once.
    pub consumer_batch: usize,
    /// How long a consumer blocks waiting for new events.
    pub consumer_block_ms: u64,
    /// How long a delivery may stay pending before another consumer claims it.
    pub claim_idle_ms: u64,
    /// After Redis lost its data, how far back the relay publishes again.
    pub replay_window_s: i64,
}

/// The stream of a topic.
pub fn stream_key(prefix: &str, topic: &str) -> String {
    format!("{prefix}{{{topic}}}:events")
}

fn epoch_key(prefix: &str, schema: &str) -> String {
    format!("{prefix}{{{schema}}}:events:epoch")
}

/// An event's data: a protobuf message and its type URL
/// (`type.googleapis.com/crm.customers.v1.Customer`), named by its generated type.
pub struct Payload {
    /// The message's type URL.
    pub type_url: String,
    /// The encoded message.
    pub bytes: Vec<u8>,
}

impl Payload {
    /// The payload of `message`.
    pub fn of<M: Name>(message: &M) -> Self {
        Self {
            type_url: M::type_url(),
            bytes: message.encode_to_vec(),
        }
    }
}

/// The payload of a consumed event if it is an `M` (by its type URL); `None` for an event
/// carrying another message or none. A payload of the type that does not decode is an error:
/// the consumer will see it again, and the failure is logged.
pub fn payload_as<M: Name + Default>(event: &pb::Event) -> Result<Option<M>, Error> {
    let Some(payload) = event
        .payload
        .as_ref()
        .filter(|p| p.type_url == M::type_url())
    else {
        return Ok(None);
    };
    M::decode(payload.value.as_slice())
        .map(Some)
        .map_err(|e| Error::Internal(anyhow::anyhow!("event {} payload: {e}", event.id)))
}

/// The payload of a consumed event, which must be an `M`: an event of that type carrying
/// another message (or none) is an error, as is one that does not decode.
pub fn decode<M: Name + Default>(event: &pb::Event) -> Result<M, Error> {
    payload_as(event)?.ok_or_else(|| {
        Error::Internal(anyhow::anyhow!(
            "event {} ({}) carries no {}",
            event.id,
            event.r#type,
            M::full_name()
        ))
    })
}

/// An event to publish.
pub struct NewEvent<'a> {
    /// The topic (stream): the publishing service's name.
    pub topic: &'a str,
    /// What happened, e.g. `customers.stage_changed`.
    pub event_type: &'a str,
    /// The resource it happened to.
    pub aggregate: &'a str,
    /// Its data.
    pub payload: Payload,
    /// Whether it must reach people fast.
    pub urgent: bool,
}

/// Adds an event to the outbox, in the transaction of the change it describes.
pub async fn publish(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    event: NewEvent<'_>,
) -> Result<Uuid, Error> {
    let NewEvent {
        topic,
        event_type,
        aggregate,
        payload,
        urgent,
    } = event;
    let id = Uuid::now_v7();
    let mut traceparent = std::collections::HashMap::new();
    opentelemetry_sdk::propagation::TraceContextPropagator::new()
        .inject_context(&tracing::Span::current().context(), &mut traceparent);
    let envelope = pb::Event {
        id: id.to_string(),
        r#type: event_type.to_string(),
        aggregate: aggregate.to_string(),
        time: Some(convert::timestamp(now)),
        actor: call.principal.subject.clone(),
        traceparent: traceparent.remove("traceparent").unwrap_or_default(),
        payload: Some(prost_types::Any {
            type_url: payload.type_url,
            value: payload.bytes,
        }),
        urgent,
    };
    sqlx::query("INSERT INTO outbox (id, topic, aggregate, envelope, create_time) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(topic)
        .bind(aggregate)
        .bind(envelope.encode_to_vec())
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(id)
}

/// Starts the outbox relay of `schema` (whose pool is `pool`); it runs until `shutdown`.
pub fn spawn_relay(
    pool: PgPool,
    schema: &'static str,
    redis: RedisSettings,
    settings: EventSettings,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let result = relay_while_leader(&pool, schema, &redis, &settings, &shutdown).await;
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = result {
                tracing::warn!(schema, error = %e, "outbox relay interrupted; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(settings.relay_poll_ms.max(100))) => {}
            }
        }
    })
}

async fn relay_while_leader(
    pool: &PgPool,
    schema: &str,
    redis: &RedisSettings,
    settings: &EventSettings,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    // leadership: a session advisory lock on a connection of its own, out of the pool; any
    // early return below drops it, which ends the session and so lets the lock go
    let key = format!("crm.outbox.relay.{schema}");
    let mut leader = loop {
        if let Some(leader) = crate::leader::try_lead(pool, &key).await? {
            break leader;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            () = tokio::time::sleep(Duration::from_millis(settings.relay_poll_ms.max(100) * 5)) => {}
        }
    };
    tracing::info!(schema, "outbox relay active");
    let mut conn = crate::redis::connect(redis).await?;
    let epoch = epoch_key(&redis.key_prefix, schema);
    // the wait after a batch that was not full: short while events flow, doubling while
    // nothing comes, up to relay_poll_ms (so an event committed into a busy outbox waits
    // milliseconds, and an idle relay costs a look every relay_poll_ms)
    let longest = Duration::from_millis(settings.relay_poll_ms.max(1));
    let shortest = Duration::from_millis(2).min(longest);
    let mut wait = longest;
    let mut checked = std::time::Instant::now();
    loop {
        ensure_epoch(pool, &mut conn, &epoch, settings).await?;
        let moved = relay_batch(pool, &mut conn, &redis.key_prefix, settings).await?;
        if moved < settings.relay_batch as usize {
            wait = if moved > 0 {
                shortest
            } else {
                (wait * 2).min(longest)
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        } else if shutdown.is_cancelled() {
            break;
        }
        // keep the leader connection alive (and notice if it is gone), once a second
        if checked.elapsed() >= Duration::from_secs(1) {
            leader.check().await?;
            checked = std::time::Instant::now();
        }
    }
    leader.release().await;
    Ok(())
}

/// Notices that Redis lost its data (the epoch marker is gone) and publishes the recent events
/// again.
async fn ensure_epoch(
    pool: &PgPool,
    conn: &mut ConnectionManager,
    epoch: &str,
    settings: &EventSettings,
) -> anyhow::Result<()> {
    let exists: bool = redis::cmd("EXISTS").arg(epoch).query_async(conn).await?;
    if exists {
        return Ok(());
    }
    let republished = sqlx::query(
        "UPDATE outbox SET publish_time = NULL WHERE publish_time IS NOT NULL \
         AND create_time > now() - make_interval(secs => $1)",
    )
    .bind(settings.replay_window_s as f64)
    .execute(pool)
    .await?
    .rows_affected();
    if republished > 0 {
        tracing::warn!(
            republished,
            "the event streams lost their data: publishing recent events again"
        );
    }
    let _: () = redis::cmd("SET")
        .arg(epoch)
        .arg(Uuid::now_v7().to_string())
        .query_async(conn)
        .await?;
    Ok(())
}

async fn relay_batch(
    pool: &PgPool,
    conn: &mut ConnectionManager,
    prefix: &str,
    settings: &EventSettings,
) -> anyhow::Result<usize> {
    let rows: Vec<(i64, Uuid, String, Vec<u8>, time::OffsetDateTime)> = sqlx::query_as(
        "SELECT seq, id, topic, envelope, create_time FROM outbox WHERE publish_time IS NULL ORDER BY seq LIMIT $1",
    )
    .bind(settings.relay_batch)
    .fetch_all(pool)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    for (_, id, topic, envelope, _) in &rows {
        pipe.cmd("XADD")
            .arg(stream_key(prefix, topic))
            .arg("*")
            .arg("id")
            .arg(id.to_string())
            .arg("e")
            .arg(envelope.as_slice())
            .ignore();
    }
    pipe.query_async::<()>(conn).await?;
    let relayed = time::OffsetDateTime::now_utc();
    for (_, _, topic, _, created) in &rows {
        crate::metrics::event_relayed(topic, (relayed - *created).unsigned_abs());
    }
    let seqs: Vec<i64> = rows.iter().map(|r| r.0).collect();
    sqlx::query("UPDATE outbox SET publish_time = now() WHERE seq = ANY($1)")
        .bind(&seqs)
        .execute(pool)
        .await?;
    Ok(rows.len())
}

/// What a consumer does with each event, inside the transaction that records it processed.
#[tonic::async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Acts on one event. An error rolls the transaction back and leaves the event pending, so
    /// it is delivered again.
    async fn handle(&self, tx: &mut PgConnection, event: &pb::Event) -> Result<(), Error>;
}

/// A consumer group reading some topics.
pub struct Consumer {
    /// The consumer group: the name of what acts on the events (e.g. `notifications`).
    pub group: String,
    /// The topics to read. Each batch is handled topic by topic in this order, so a topic
    /// that others depend on (e.g. the user directory) comes first.
    pub topics: Vec<String>,
    /// What to do with each event.
    pub handler: Arc<dyn Handler>,
}

/// Starts `consumer` on `pool` (where it records processed ids); it runs until `shutdown`.
pub fn spawn_consumer(
    pool: PgPool,
    consumer: Consumer,
    redis: RedisSettings,
    settings: EventSettings,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let me = format!("{}-{}", consumer.group, Uuid::new_v4().simple());
        let consumer = Arc::new(consumer);
        loop {
            let result = consume(&pool, &consumer, &me, &redis, &settings, &shutdown).await;
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = result {
                tracing::warn!(group = %consumer.group, error = %e, "consumer interrupted; retrying");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    })
}

async fn ensure_groups(
    conn: &mut ConnectionManager,
    keys: &[String],
    group: &str,
) -> anyhow::Result<()> {
    for key in keys {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(key)
            .arg(group)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Ok(()) => {}
            Err(e) if e.to_string().contains("BUSYGROUP") => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn consume(
    pool: &PgPool,
    consumer: &Arc<Consumer>,
    me: &str,
    redis: &RedisSettings,
    settings: &EventSettings,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut conn =
        crate::redis::connect_blocking(redis, Duration::from_millis(settings.consumer_block_ms))
            .await?;
    let keys: Vec<String> = consumer
        .topics
        .iter()
        .map(|t| stream_key(&redis.key_prefix, t))
        .collect();
    ensure_groups(&mut conn, &keys, &consumer.group).await?;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        // first what others left pending too long (or what this consumer failed on)
        for key in &keys {
            let claimed: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(key)
                .arg(&consumer.group)
                .arg(me)
                .arg(settings.claim_idle_ms)
                .arg("0-0")
                .arg("COUNT")
                .arg(settings.consumer_batch)
                .query_async(&mut conn)
                .await?;
            let done = handle_batch(pool, key, consumer, &claimed.claimed).await;
            acknowledge(&mut conn, key, &consumer.group, &done).await;
        }
        let read: redis::RedisResult<Option<redis::streams::StreamReadReply>> =
            redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(&consumer.group)
                .arg(me)
                .arg("COUNT")
                .arg(settings.consumer_batch)
                .arg("BLOCK")
                .arg(settings.consumer_block_ms)
                .arg("STREAMS")
                .arg(&keys)
                .arg(keys.iter().map(|_| ">").collect::<Vec<_>>())
                .query_async(&mut conn)
                .await;
        let read = match read {
            Ok(read) => read,
            // the streams were lost (Redis restarted empty): make the groups again
            Err(e) if e.to_string().contains("NOGROUP") => {
                ensure_groups(&mut conn, &keys, &consumer.group).await?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        for stream in read.map(|r| r.keys).unwrap_or_default() {
            let done = handle_batch(pool, &stream.key, consumer, &stream.ids).await;
            acknowledge(&mut conn, &stream.key, &consumer.group, &done).await;
        }
    }
}

/// Acknowledges handled deliveries in one round trip. A lost acknowledgement only means the
/// events are delivered again and skipped.
async fn acknowledge(conn: &mut ConnectionManager, key: &str, group: &str, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    let acked: redis::RedisResult<()> = redis::cmd("XACK")
        .arg(key)
        .arg(group)
        .arg(ids)
        .query_async(conn)
        .await;
    if let Err(e) = acked {
        tracing::warn!(error = %e, "cannot acknowledge; the events will be delivered again and skipped");
    }
}

/// Handles a batch of deliveries and returns the ids to acknowledge.
///
/// First the whole batch in one transaction, in stream order: one statement records every id
/// processed (those seen before are skipped), the handler acts on the others, one commit. If
/// any event fails, that transaction is rolled back and the batch is handled again event by
/// event: events of one aggregate in stream order, one after the other, different aggregates
/// side by side; when an event fails, the later events of its aggregate wait (they stay
/// pending and come back in order), and the others are not held up by it.
async fn handle_batch(
    pool: &PgPool,
    key: &str,
    consumer: &Arc<Consumer>,
    entries: &[StreamId],
) -> Vec<String> {
    let mut done = Vec::new();
    let mut decoded: Vec<(String, pb::Event)> = Vec::new();
    for entry in entries {
        let envelope: Option<Vec<u8>> = entry.get("e");
        match envelope.and_then(|bytes| pb::Event::decode(bytes.as_slice()).ok()) {
            // it would never succeed: log it and let it go
            None => {
                tracing::error!(stream = key, entry = %entry.id, "undecodable event dropped");
                done.push(entry.id.clone());
            }
            Some(event) => decoded.push((entry.id.clone(), event)),
        }
    }
    if decoded.len() > 1 {
        match process_together(pool, consumer, &decoded).await {
            Ok(()) => {
                done.extend(decoded.into_iter().map(|(id, _)| id));
                return done;
            }
            Err(e) => tracing::debug!(
                group = %consumer.group,
                error = %e,
                "a batch failed; handling its events one by one"
            ),
        }
    }
    let mut order: Vec<Vec<(String, pb::Event)>> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (id, event) in decoded {
        let slot = *index.entry(event.aggregate.clone()).or_insert_with(|| {
            order.push(Vec::new());
            order.len() - 1
        });
        order[slot].push((id, event));
    }
    let mut set = tokio::task::JoinSet::new();
    for events in order {
        let (pool, consumer) = (pool.clone(), consumer.clone());
        set.spawn(async move {
            let mut handled = Vec::new();
            for (id, event) in events {
                if !handle_event(&pool, &consumer, &event).await {
                    break;
                }
                handled.push(id);
            }
            handled
        });
    }
    while let Some(handled) = set.join_next().await {
        done.extend(handled.unwrap_or_default());
    }
    done
}

/// Handles `events` in one transaction, in order, each inside its own trace; the first failure
/// rolls all of it back.
async fn process_together(
    pool: &PgPool,
    consumer: &Consumer,
    events: &[(String, pb::Event)],
) -> Result<(), Error> {
    let ids = events
        .iter()
        .map(|(_, e)| Uuid::parse_str(&e.id).map_err(|e| Error::Internal(e.into())))
        .collect::<Result<Vec<_>, _>>()?;
    let mut tx = crate::db::begin(pool).await?;
    let fresh: std::collections::HashSet<Uuid> = sqlx::query_scalar(
        "INSERT INTO processed_events (consumer, event_id, process_time) \
         SELECT $1, id, now() FROM unnest($2::uuid[]) AS t(id) ON CONFLICT DO NOTHING RETURNING event_id",
    )
    .bind(&consumer.group)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    // a batch can carry one event twice (claimed again while it was being read): act once
    let mut acted = std::collections::HashSet::new();
    for ((_, event), id) in events.iter().zip(&ids) {
        if !fresh.contains(id) || !acted.insert(*id) {
            continue;
        }
        let span = crate::telemetry::consumer_span(
            &event.r#type,
            &event.id,
            &event.aggregate,
            &consumer.group,
        );
        crate::telemetry::set_remote_parent(&span, &event.traceparent);
        tracing::Instrument::instrument(consumer.handler.handle(&mut tx, event), span).await?;
    }
    // a handler that met a database error and carried on would leave the transaction aborted,
    // and Postgres answers COMMIT there with a rollback, not an error: one statement first, so
    // such a batch fails here and is handled again one by one
    sqlx::query("SELECT 1").execute(&mut *tx).await?;
    tx.commit().await?;
    let now = time::OffsetDateTime::now_utc();
    for (_, event) in events {
        if let Some(t) = event
            .time
            .as_ref()
            .and_then(|t| crate::convert::from_timestamp(t).ok())
        {
            crate::metrics::event_handled(&consumer.group, &event.r#type, (now - t).unsigned_abs());
        }
    }
    Ok(())
}

/// Handles one event inside its trace; false when the handler failed.
async fn handle_event(pool: &PgPool, consumer: &Consumer, event: &pb::Event) -> bool {
    let span = crate::telemetry::consumer_span(
        &event.r#type,
        &event.id,
        &event.aggregate,
        &consumer.group,
    );
    crate::telemetry::set_remote_parent(&span, &event.traceparent);
    match tracing::Instrument::instrument(process(pool, consumer, event), span).await {
        Ok(()) => {
            if let Some(t) = event
                .time
                .as_ref()
                .and_then(|t| crate::convert::from_timestamp(t).ok())
            {
                let lag = (time::OffsetDateTime::now_utc() - t).unsigned_abs();
                crate::metrics::event_handled(&consumer.group, &event.r#type, lag);
            }
            true
        }
        Err(e) => {
            tracing::warn!(event.id = %event.id, error = %e, detail = ?e, "event handling failed; it stays pending");
            false
        }
    }
}

async fn process(pool: &PgPool, consumer: &Consumer, event: &pb::Event) -> Result<(), Error> {
    let id = Uuid::parse_str(&event.id).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = crate::db::begin(pool).await?;
    let first = sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, process_time) VALUES ($1, $2, now()) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&consumer.group)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if first {
        consumer.handler.handle(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(())
}
