//! Timers against the real Postgres and Redis: many timers over several workers fire each
//! exactly once; a worker that dies holding leases loses none; Redis losing the schedule loses
//! none; cancel and reschedule; a failing handler fires again after its lease.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use crm_kit::{
    CancellationToken, Clock, Error, Settings, testing,
    timers::{self, NewTimer, Timer, TimerHandler, TimerSettings, Timers},
};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

const SCHEMA: &str = "timertest";

/// Records each firing in `fired`, in the firing transaction; fails the first firing of the
/// timers in `fail_once`.
struct Record {
    fail_once: Mutex<HashSet<Uuid>>,
}

#[tonic::async_trait]
impl TimerHandler for Record {
    async fn fire(&self, tx: &mut PgConnection, timer: &Timer) -> Result<(), Error> {
        if self.fail_once.lock().unwrap().remove(&timer.id) {
            return Err(Error::Internal(anyhow::anyhow!("the handler broke once")));
        }
        sqlx::query(
            "INSERT INTO fired (timer_id, due_time, fire_time) VALUES ($1, $2, clock_timestamp())",
        )
        .bind(timer.id)
        .bind(timer.due_time)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

struct Env {
    settings: Settings,
    pool: PgPool,
    record: Arc<Record>,
    stop: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn fast() -> TimerSettings {
    TimerSettings {
        poll_ms: 20,
        batch: 500,
        concurrency: 4,
        lease_ms: 500,
        reconcile_every_s: 1,
        horizon_s: 600,
    }
}

async fn env() -> Env {
    let settings = testing::test_env().await.settings;
    let pool = testing::kit_schema(&settings, SCHEMA, "CREATE TABLE fired (timer_id uuid NOT NULL, due_time timestamptz NOT NULL, fire_time timestamptz NOT NULL)").await;
    Env {
        settings,
        pool,
        record: Arc::new(Record {
            fail_once: Mutex::default(),
        }),
        stop: CancellationToken::new(),
    }
}

impl Env {
    async fn timers(&self) -> Timers {
        Timers::connect(&self.settings.redis, SCHEMA).await.unwrap()
    }

    async fn worker(&self, settings: TimerSettings) {
        timers::spawn_worker(
            self.pool.clone(),
            self.timers().await,
            Clock::system(),
            self.record.clone(),
            settings,
            self.stop.clone(),
        );
    }

    /// Schedules `n` timers due evenly over `over` from now, in transactions of 1,000, and
    /// arms them.
    async fn schedule(&self, n: usize, over: Duration) -> Vec<Uuid> {
        let timers = self.timers().await;
        let now = OffsetDateTime::now_utc();
        let mut ids = Vec::new();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let batch: Vec<NewTimer> = chunk
                .iter()
                .map(|i| NewTimer {
                    kind: "test.due".into(),
                    subject: format!("things/{i}"),
                    due: now + over.mul_f64(*i as f64 / n as f64),
                    payload: serde_json::json!({ "i": i }),
                })
                .collect();
            let mut tx = self.pool.begin().await.unwrap();
            let armed = timers::schedule(&mut tx, &batch, now).await.unwrap();
            tx.commit().await.unwrap();
            timers.arm(&armed).await;
            ids.extend(armed.iter().map(|a| a.id));
        }
        ids
    }

    async fn fired(&self) -> (i64, i64) {
        sqlx::query_as("SELECT count(*), count(DISTINCT timer_id) FROM fired")
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn wait_fired(&self, n: i64, within: Duration) {
        let pool = self.pool.clone();
        testing::wait_until(&format!("{n} timers to fire"), within, || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("SELECT count(DISTINCT timer_id) FROM fired")
                    .fetch_one(&pool)
                    .await
                    .unwrap()
                    >= n
            }
        })
        .await;
    }
}

#[tokio::test]
async fn ten_thousand_timers_over_three_workers_fire_each_exactly_once_and_on_time() {
    let env = env().await;
    for _ in 0..3 {
        env.worker(fast()).await;
    }
    env.schedule(10_000, Duration::from_secs(3)).await;
    env.wait_fired(10_000, Duration::from_secs(60)).await;
    let (all, distinct) = env.fired().await;
    assert_eq!((all, distinct), (10_000, 10_000), "each fired once");
    // none early; the lateness is for the benchmark to measure, not a timed test
    let early: i64 = sqlx::query_scalar("SELECT count(*) FROM fired WHERE fire_time < due_time")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(early, 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM timers WHERE state <> 'fired'")
        .fetch_one(&env.pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_worker_that_dies_holding_leases_loses_none() {
    let env = env().await;
    let ids = env.schedule(300, Duration::ZERO).await;
    // a worker claims them all and dies before firing any
    let dead = env.timers().await;
    let held = dead
        .claim(OffsetDateTime::now_utc(), 1000, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(held.len(), ids.len());
    let claimed_at = OffsetDateTime::now_utc();
    // a live worker takes them over when the leases end
    env.worker(fast()).await;
    env.wait_fired(300, Duration::from_secs(20)).await;
    assert_eq!(env.fired().await, (300, 300));
    let before_lease_end: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM fired WHERE fire_time < $1::timestamptz + interval '450 milliseconds'",
    )
    .bind(claimed_at)
    .fetch_one(&env.pool)
    .await
    .unwrap();
    assert_eq!(
        before_lease_end, 0,
        "nobody fired them while the lease held"
    );
}

#[tokio::test]
async fn redis_losing_the_schedule_mid_run_loses_none() {
    let env = env().await;
    for _ in 0..2 {
        env.worker(fast()).await;
    }
    env.schedule(3_000, Duration::from_secs(3)).await;
    env.wait_fired(500, Duration::from_secs(30)).await;
    // this test's share of Redis is wiped (every key under its prefix: the sorted set and the
    // epoch marker) — FLUSHALL itself would wipe the tests running beside it
    let mut conn = crm_kit::redis::connect(&env.settings.redis).await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", env.settings.redis.key_prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(!keys.is_empty());
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    env.wait_fired(3_000, Duration::from_secs(60)).await;
    assert_eq!(env.fired().await, (3_000, 3_000));
}

#[tokio::test]
async fn cancelled_timers_do_not_fire_and_rescheduled_ones_fire_at_their_new_time() {
    let env = env().await;
    env.worker(fast()).await;
    let timers = env.timers().await;
    let now = OffsetDateTime::now_utc();
    let soon = now + time::Duration::milliseconds(300);
    let mut tx = env.pool.begin().await.unwrap();
    let armed = timers::schedule(
        &mut tx,
        &[
            NewTimer {
                kind: "ticket.response".into(),
                subject: "tickets/a".into(),
                due: soon,
                payload: serde_json::json!({}),
            },
            NewTimer {
                kind: "ticket.response".into(),
                subject: "tickets/b".into(),
                due: soon,
                payload: serde_json::json!({}),
            },
        ],
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    timers.arm(&armed).await;
    let later = now + time::Duration::milliseconds(900);
    let mut tx = env.pool.begin().await.unwrap();
    assert_eq!(
        timers::cancel(&mut tx, "tickets/a", Some("ticket.response"))
            .await
            .unwrap(),
        1
    );
    let moved = timers::reschedule(&mut tx, "tickets/b", "ticket.response", later)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    timers.arm(&moved).await;
    env.wait_fired(1, Duration::from_secs(10)).await;
    let fired: Vec<(Uuid, OffsetDateTime)> =
        sqlx::query_as("SELECT timer_id, fire_time FROM fired")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].0, armed[1].id);
    assert!(fired[0].1 >= later, "not before its new time");
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM timers ORDER BY subject")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(states, ["cancelled", "fired"]);
}

#[tokio::test]
async fn a_failing_handler_leaves_the_timer_to_fire_after_its_lease() {
    let env = env().await;
    let ids = env.schedule(3, Duration::ZERO).await;
    env.record.fail_once.lock().unwrap().insert(ids[1]);
    env.worker(fast()).await;
    env.wait_fired(3, Duration::from_secs(20)).await;
    assert_eq!(env.fired().await, (3, 3));
}

#[tokio::test]
async fn a_timer_committed_but_never_armed_is_found_and_fired() {
    let env = env().await;
    env.worker(fast()).await;
    // the process died between the commit and the ZADD: only the row exists
    let now = OffsetDateTime::now_utc();
    let mut tx = env.pool.begin().await.unwrap();
    timers::schedule(
        &mut tx,
        &[NewTimer {
            kind: "test.due".into(),
            subject: "things/unarmed".into(),
            due: now,
            payload: serde_json::json!({}),
        }],
        now,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    env.wait_fired(1, Duration::from_secs(20)).await;
    assert_eq!(env.fired().await, (1, 1));
}
