//! Timers, written once for every service (SLA deadlines, hand-offs, reminders).
//!
//! A timer is a durable row in the owning service's `timers` table — the truth — and an entry
//! in the Redis sorted set `{<schema>}:timers` scored by its due time in milliseconds.
//!
//! - **Schedule / cancel / reschedule** change the row in the caller's transaction; after the
//!   commit, [`Timers::arm`] adds the entries to Redis (one round trip for many). If the process
//!   dies in between, reconciliation adds them later.
//! - **Claim**: a worker runs one Lua script that takes the due entries and moves each one's
//!   score to the end of a lease, atomically — so several replicas never claim the same entry
//!   at once, and an entry whose worker died becomes due again when the lease ends.
//! - **Fire**: in one Postgres transaction the worker locks the row, checks it is still
//!   scheduled and due, runs the handler (the state change and its outbox event) and marks the
//!   row fired; then removes the entry. A timer fires once even when claimed twice (the row
//!   says `fired`), and a failed handler leaves it scheduled for the next claim.
//! - **Reconcile**: on start and at once when Redis has lost its data (an epoch marker is
//!   gone), the rows due within `horizon_s` are added again (`ZADD NX`, which keeps the score of
//!   an entry under lease); every `reconcile_every_s`, the overdue ones (never armed, or lost).

use std::{sync::Arc, time::Duration};

use redis::aio::ConnectionManager;
use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{Clock, Error, config::RedisSettings};

/// The `[timers]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct TimerSettings {
    /// The longest an idle worker waits before looking again (it wakes earlier for the next
    /// due timer it knows of).
    pub poll_ms: u64,
    /// Timers a worker claims at once.
    pub batch: usize,
    /// Transactions a worker fires a claimed batch in, side by side.
    pub concurrency: usize,
    /// How long a claim lasts before another worker may take the timer over.
    pub lease_ms: u64,
    /// How often the schedule in Redis is checked against Postgres.
    pub reconcile_every_s: u64,
    /// Reconciliation adds the timers due within this many seconds.
    pub horizon_s: i64,
}

/// A timer to schedule.
#[derive(Debug, Clone)]
pub struct NewTimer {
    /// What kind of deadline, e.g. `tickets.response_due`.
    pub kind: String,
    /// What it is about, e.g. `tickets/0192…`.
    pub subject: String,
    /// When it fires.
    pub due: OffsetDateTime,
    /// Data for the handler.
    pub payload: serde_json::Value,
}

/// A timer as the handler sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Timer {
    /// Id.
    pub id: Uuid,
    /// Kind.
    pub kind: String,
    /// Subject.
    pub subject: String,
    /// When it was due.
    pub due_time: OffsetDateTime,
    /// Data.
    pub payload: serde_json::Value,
}

/// A timer scheduled in a transaction, to be armed in Redis after the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed {
    /// The timer.
    pub id: Uuid,
    /// When it is due.
    pub due: OffsetDateTime,
}

/// What fires a timer: the owning service's reaction, in the firing transaction.
#[tonic::async_trait]
pub trait TimerHandler: Send + Sync + 'static {
    /// Acts on a due timer. An error rolls back and leaves the timer scheduled; it is claimed
    /// again once its lease ends.
    async fn fire(&self, tx: &mut PgConnection, timer: &Timer) -> Result<(), Error>;
}

/// Schedules timers in `tx` (one statement for all); arm them after the commit.
pub async fn schedule(
    tx: &mut PgConnection,
    timers: &[NewTimer],
    now: OffsetDateTime,
) -> Result<Vec<Armed>, Error> {
    let ids: Vec<Uuid> = timers.iter().map(|_| Uuid::now_v7()).collect();
    let kinds: Vec<&str> = timers.iter().map(|t| t.kind.as_str()).collect();
    let subjects: Vec<&str> = timers.iter().map(|t| t.subject.as_str()).collect();
    let dues: Vec<OffsetDateTime> = timers.iter().map(|t| t.due).collect();
    let payloads: Vec<serde_json::Value> = timers.iter().map(|t| t.payload.clone()).collect();
    sqlx::query(
        "INSERT INTO timers (id, kind, subject, due_time, state, payload, create_time) \
         SELECT id, kind, subject, due, 'scheduled', payload, $6 \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::jsonb[]) \
           AS t(id, kind, subject, due, payload)",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&subjects)
    .bind(&dues)
    .bind(&payloads)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(ids
        .into_iter()
        .zip(dues)
        .map(|(id, due)| Armed { id, due })
        .collect())
}

/// Cancels the scheduled timers of `kind` on `subject` (every kind when `None`); returns how
/// many. Their Redis entries are dropped when claimed.
pub async fn cancel(
    tx: &mut PgConnection,
    subject: &str,
    kind: Option<&str>,
) -> Result<u64, Error> {
    Ok(sqlx::query(
        "UPDATE timers SET state = 'cancelled' WHERE subject = $1 AND state = 'scheduled' \
         AND ($2::text IS NULL OR kind = $2)",
    )
    .bind(subject)
    .bind(kind)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Moves the scheduled timers of `kind` on `subject` to `due`; arm the result after the
/// commit.
pub async fn reschedule(
    tx: &mut PgConnection,
    subject: &str,
    kind: &str,
    due: OffsetDateTime,
) -> Result<Vec<Armed>, Error> {
    let ids: Vec<Uuid> = sqlx::query_scalar(
        "UPDATE timers SET due_time = $3 WHERE subject = $1 AND kind = $2 AND state = 'scheduled' \
         RETURNING id",
    )
    .bind(subject)
    .bind(kind)
    .bind(due)
    .fetch_all(&mut *tx)
    .await?;
    Ok(ids.into_iter().map(|id| Armed { id, due }).collect())
}

fn score(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The Redis side of one schema's timers.
#[derive(Clone)]
pub struct Timers {
    key: String,
    epoch: String,
    conn: ConnectionManager,
}

const CLAIM: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id)
end
return due
";

impl Timers {
    /// The timers of `schema`.
    pub async fn connect(redis: &RedisSettings, schema: &str) -> anyhow::Result<Self> {
        Ok(Self {
            key: format!("{}{{{schema}}}:timers", redis.key_prefix),
            epoch: format!("{}{{{schema}}}:timers:epoch", redis.key_prefix),
            conn: crate::redis::connect(redis).await?,
        })
    }

    /// The sorted set's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Adds committed timers to the schedule (replacing the due time of one already there).
    /// Failing here loses nothing: reconciliation adds them.
    pub async fn arm(&self, timers: &[Armed]) {
        self.zadd(timers, false).await;
    }

    /// Moves the entries of rescheduled timers earlier (never later: `ZADD LT`), before the
    /// caller's transaction commits, for callers with no hook after their commit (event
    /// handlers). Safe either way: an entry that comes due while the rows are still locked is
    /// skipped and claimed again after its lease, and one whose transaction rolled back finds
    /// its row not due and is put back at the row's time. A later time needs nothing: the old
    /// entry comes due first and is put back the same way.
    pub async fn arm_earlier(&self, timers: &[Armed]) {
        self.zadd(timers, true).await;
    }

    async fn zadd(&self, timers: &[Armed], only_earlier: bool) {
        if timers.is_empty() {
            return;
        }
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&self.key);
        if only_earlier {
            cmd.arg("LT");
        }
        for t in timers {
            cmd.arg(score(t.due)).arg(t.id.to_string());
        }
        let result: redis::RedisResult<()> = cmd.query_async(&mut self.conn.clone()).await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "timers not armed now; reconciliation will add them");
        }
    }

    /// Claims up to `batch` timers due at `now` for `lease`, in one atomic step.
    pub async fn claim(
        &self,
        now: OffsetDateTime,
        batch: usize,
        lease: Duration,
    ) -> anyhow::Result<Vec<Uuid>> {
        let until = score(now) + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        let ids: Vec<String> = redis::Script::new(CLAIM)
            .key(&self.key)
            .arg(score(now))
            .arg(batch)
            .arg(until)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(ids.iter().filter_map(|s| Uuid::parse_str(s).ok()).collect())
    }

    async fn remove(&self, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(&self.key);
        for id in ids {
            cmd.arg(id.to_string());
        }
        let result: redis::RedisResult<()> = cmd.query_async(&mut self.conn.clone()).await;
        if let Err(e) = result {
            // the rows are fired or cancelled: a later claim finds that and removes them
            tracing::debug!(error = %e, "timer entries not removed now");
        }
    }

    /// The due time of the earliest entry, if any.
    async fn earliest(&self) -> anyhow::Result<Option<i64>> {
        let first: Vec<(String, i64)> = redis::cmd("ZRANGE")
            .arg(&self.key)
            .arg(0)
            .arg(0)
            .arg("WITHSCORES")
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(first.first().map(|(_, s)| *s))
    }

    /// Adds the scheduled timers due by `up_to` that the sorted set lacks (entries present keep
    /// their score); returns how many rows it looked at.
    pub async fn reconcile(&self, pool: &PgPool, up_to: OffsetDateTime) -> anyhow::Result<usize> {
        let mut after: Option<(OffsetDateTime, Uuid)> = None;
        let mut seen = 0;
        loop {
            let rows: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(
                "SELECT id, due_time FROM timers WHERE state = 'scheduled' AND due_time <= $1 \
                 AND ($2::timestamptz IS NULL OR (due_time, id) > ($2, $3)) \
                 ORDER BY due_time, id LIMIT 5000",
            )
            .bind(up_to)
            .bind(after.map(|a| a.0))
            .bind(after.map(|a| a.1).unwrap_or_default())
            .fetch_all(pool)
            .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = Some((last.1, last.0));
            seen += rows.len();
            let mut cmd = redis::cmd("ZADD");
            cmd.arg(&self.key).arg("NX");
            for (id, due) in &rows {
                cmd.arg(score(*due)).arg(id.to_string());
            }
            cmd.query_async::<()>(&mut self.conn.clone()).await?;
            if rows.len() < 5000 {
                break;
            }
        }
        Ok(seen)
    }

    /// Whether Redis still holds this schedule (false after it lost its data); sets the marker.
    async fn intact(&self) -> anyhow::Result<bool> {
        let set: bool = redis::cmd("SET")
            .arg(&self.epoch)
            .arg(Uuid::now_v7().to_string())
            .arg("NX")
            .query_async::<Option<String>>(&mut self.conn.clone())
            .await?
            .is_some();
        Ok(!set)
    }
}

/// What a batch firing did.
#[derive(Debug, Default)]
pub struct Fired {
    /// Timers fired.
    pub fired: Vec<Uuid>,
    /// Timers whose handler failed (left scheduled, claimed again after the lease).
    pub failed: Vec<Uuid>,
}

/// Fires the claimed timers `ids` that are still scheduled and due, in one transaction; then
/// removes the fired, cancelled and vanished ones from the schedule and puts rescheduled ones
/// back at their time. Rows another worker is firing right now are left to it. The handlers
/// first run side by side in the one transaction; if one fails, the batch is done again with a
/// savepoint per timer, so a failing handler undoes only its own work.
pub async fn fire_batch(
    pool: &PgPool,
    timers: &Timers,
    handler: &dyn TimerHandler,
    ids: &[Uuid],
    now: OffsetDateTime,
) -> Result<Fired, Error> {
    match fire_in_one(pool, timers, handler, ids, now, false).await? {
        Some(fired) => Ok(fired),
        None => Ok(fire_in_one(pool, timers, handler, ids, now, true)
            .await?
            .unwrap_or_default()),
    }
}

/// One attempt of [`fire_batch`]; `None` when a handler failed without savepoints.
async fn fire_in_one(
    pool: &PgPool,
    timers: &Timers,
    handler: &dyn TimerHandler,
    ids: &[Uuid],
    now: OffsetDateTime,
    savepoints: bool,
) -> Result<Option<Fired>, Error> {
    let mut tx = crate::db::begin(pool).await?;
    let rows: Vec<(
        Uuid,
        String,
        String,
        OffsetDateTime,
        serde_json::Value,
        String,
    )> = sqlx::query_as(
        "SELECT id, kind, subject, due_time, payload, state FROM timers WHERE id = ANY($1) \
             ORDER BY due_time FOR UPDATE SKIP LOCKED",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut remove: Vec<Uuid> = Vec::new();
    if rows.len() < ids.len() {
        // not returned: locked by another worker (leave it), or gone (drop the entry)
        let present: Vec<Uuid> = sqlx::query_scalar("SELECT id FROM timers WHERE id = ANY($1)")
            .bind(ids)
            .fetch_all(&mut *tx)
            .await?;
        remove.extend(ids.iter().filter(|id| !present.contains(id)));
    }
    let mut rearm = Vec::new();
    let mut out = Fired::default();
    for (id, kind, subject, due_time, payload, state) in rows {
        if state != "scheduled" {
            remove.push(id);
            continue;
        }
        if due_time > now {
            rearm.push(Armed { id, due: due_time });
            continue;
        }
        let timer = Timer {
            id,
            kind,
            subject,
            due_time,
            payload,
        };
        if !savepoints {
            if handler.fire(&mut tx, &timer).await.is_err() {
                return Ok(None); // rolled back on drop; done again with savepoints
            }
            crate::metrics::timer_fired(&timer.kind, (now - due_time).unsigned_abs());
            out.fired.push(id);
            continue;
        }
        let mut savepoint = sqlx::Connection::begin(&mut *tx).await?;
        match handler.fire(&mut savepoint, &timer).await {
            Ok(()) => {
                savepoint.commit().await?;
                crate::metrics::timer_fired(&timer.kind, (now - due_time).unsigned_abs());
                out.fired.push(id);
            }
            Err(e) => {
                savepoint.rollback().await?;
                tracing::warn!(timer = %id, kind = %timer.kind, error = %e, detail = ?e, "timer handler failed; it fires again after its lease");
                out.failed.push(id);
            }
        }
    }
    sqlx::query("UPDATE timers SET state = 'fired', fire_time = $2 WHERE id = ANY($1)")
        .bind(&out.fired)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    remove.extend(&out.fired);
    timers.remove(&remove).await;
    timers.arm(&rearm).await;
    Ok(Some(out))
}

/// Starts a timer worker for `schema` on `pool`; it runs until `shutdown`. Run one per
/// replica: they share the work. Reconciliation runs beside the firing loop, so a long scan
/// never delays a firing.
pub fn spawn_worker(
    pool: PgPool,
    timers: Timers,
    clock: Clock,
    handler: Arc<dyn TimerHandler>,
    settings: TimerSettings,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(reconcile_loop(
        pool.clone(),
        timers.clone(),
        clock.clone(),
        settings.clone(),
        shutdown.clone(),
    ));
    tokio::spawn(async move {
        loop {
            let wait = match work(&pool, &timers, &clock, &handler, &settings).await {
                Ok(Some(wait)) => wait,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "timer worker round failed; retrying");
                    Duration::from_millis(settings.poll_ms)
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    })
}

/// How overdue a scheduled timer must be for the periodic pass to add it back: timers fire
/// within milliseconds of their due time, so one this late was never armed (a crash between
/// commit and arm) or its entry was lost.
const OVERDUE: time::Duration = time::Duration::seconds(2);

/// Checks every second that Redis still holds the schedule. When Redis lost it, adds every
/// scheduled timer back at once; on start, those due within `horizon_s` (arms a crash may have
/// missed); every `reconcile_every_s`, the overdue ones — cheap (an index range that is empty
/// when all is well), so a large schedule is not rescanned while it is being fired.
async fn reconcile_loop(
    pool: PgPool,
    timers: Timers,
    clock: Clock,
    settings: TimerSettings,
    shutdown: CancellationToken,
) {
    let every = Duration::from_secs(settings.reconcile_every_s);
    let mut starting = true;
    let mut lost = false;
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        match timers.intact().await {
            Ok(intact) => lost |= !intact,
            Err(e) => tracing::warn!(error = %e, "cannot check the timer schedule in Redis"),
        }
        let stale = last.is_none_or(|t| t.elapsed() >= every);
        if lost || starting || stale {
            let now = clock.now();
            let up_to = if lost {
                OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT)
            } else if starting {
                now + time::Duration::seconds(settings.horizon_s)
            } else {
                now - OVERDUE
            };
            match timers.reconcile(&pool, up_to).await {
                Ok(seen) => {
                    if lost {
                        tracing::warn!(seen, "the timer schedule was lost from Redis; rebuilt");
                    } else if seen > 0 && !starting {
                        tracing::warn!(
                            seen,
                            "overdue timers were missing from the schedule; added"
                        );
                    }
                    (lost, starting) = (false, false);
                    last = Some(tokio::time::Instant::now());
                }
                Err(e) => tracing::warn!(error = %e, "timer reconciliation failed; retrying"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One round: claim and fire a batch. Returns how long to wait before the next round, or
/// `None` to go on at once (a full batch).
async fn work(
    pool: &PgPool,
    timers: &Timers,
    clock: &Clock,
    handler: &Arc<dyn TimerHandler>,
    settings: &TimerSettings,
) -> anyhow::Result<Option<Duration>> {
    let now = clock.now();
    let claimed = timers
        .claim(
            now,
            settings.batch,
            Duration::from_millis(settings.lease_ms),
        )
        .await?;
    let full = claimed.len() >= settings.batch;
    // the batch split over `concurrency` transactions, earliest first in each
    let chunk = claimed.len().div_ceil(settings.concurrency.max(1)).max(1);
    let mut running = tokio::task::JoinSet::new();
    for ids in claimed.chunks(chunk) {
        let ids = ids.to_vec();
        let (pool, timers, handler, clock) =
            (pool.clone(), timers.clone(), handler.clone(), clock.clone());
        running.spawn(async move {
            if let Err(e) = fire_batch(&pool, &timers, handler.as_ref(), &ids, clock.now()).await {
                tracing::warn!(timers = ids.len(), error = %e, detail = ?e, "firing a batch failed; it fires again after its lease");
            }
        });
    }
    while running.join_next().await.is_some() {}
    if full {
        return Ok(None);
    }
    let poll = Duration::from_millis(settings.poll_ms);
    let wait = match timers.earliest().await? {
        Some(due) => {
            let ms = u64::try_from(due - score(clock.now())).unwrap_or(0);
            poll.min(Duration::from_millis(ms.max(1)))
        }
        None => poll,
    };
    Ok(Some(wait))
}
