//! Consumer groups: read the streams, handle each event once in the consumer's transaction
//! (a batch at a time), acknowledge.

use super::*;

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
