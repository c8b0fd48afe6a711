//! The outbox relay: one leader per schema moves committed events to their Redis streams.

use super::*;

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
