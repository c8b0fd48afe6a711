//! Recurring jobs against the real Postgres: once per period however many replicas look, again
//! at once when a run left work over, and still due after a run that failed.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crm_kit::{
    CancellationToken, Clock, Error,
    schedule::{self, Job, Task},
    testing,
};
use sqlx::{PgConnection, PgPool};
use time::{OffsetDateTime, macros::datetime};

const SCHEMA: &str = "jobtest";

/// Records each run; can be told to fail or to report work left over.
struct Recorder {
    fail: AtomicBool,
    more: AtomicBool,
}

#[tonic::async_trait]
impl Task for Recorder {
    async fn run(&self, tx: &mut PgConnection, now: OffsetDateTime) -> Result<bool, Error> {
        sqlx::query("INSERT INTO runs (at) VALUES ($1)")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Internal(anyhow::anyhow!("the job broke")));
        }
        Ok(self.more.swap(false, Ordering::SeqCst))
    }
}

async fn setup() -> (PgPool, Job, Arc<Recorder>) {
    let settings = testing::test_env().await.settings;
    let pool = testing::kit_schema(
        &settings,
        SCHEMA,
        "CREATE TABLE runs (at timestamptz NOT NULL)",
    )
    .await;
    let recorder = Arc::new(Recorder {
        fail: AtomicBool::new(false),
        more: AtomicBool::new(false),
    });
    let job = Job {
        name: "test.job",
        every: Duration::from_secs(3600),
        task: recorder.clone(),
    };
    (pool, job, recorder)
}

async fn runs(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn three_replicas_run_a_job_once_per_period() {
    let (pool, job, _) = setup().await;
    let clock = Clock::manual(datetime!(2026-03-02 09:00 UTC));
    let stop = CancellationToken::new();
    for _ in 0..3 {
        schedule::spawn(
            pool.clone(),
            clock.clone(),
            vec![job.clone()],
            schedule::ScheduleSettings { poll_ms: 5 },
            stop.clone(),
        );
    }
    for period in 1..=4 {
        let p = pool.clone();
        testing::wait_until("the job ran this period", Duration::from_secs(10), || {
            let p = p.clone();
            async move { runs(&p).await >= period }
        })
        .await;
        // within the period it is not due, for any replica
        assert!(
            !schedule::run_if_due(&pool, &job, clock.now())
                .await
                .unwrap()
        );
        assert_eq!(runs(&pool).await, period);
        clock.advance(time::Duration::hours(1));
    }
    stop.cancel();
}

#[tokio::test]
async fn concurrent_replicas_at_the_same_instant_run_it_once() {
    let (pool, job, _) = setup().await;
    let now = datetime!(2026-03-02 09:00 UTC);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (pool, job) = (pool.clone(), job.clone());
        tasks.spawn(async move { schedule::run_if_due(&pool, &job, now).await.unwrap() });
    }
    let ran = tasks.join_all().await.into_iter().filter(|r| *r).count();
    assert_eq!(ran, 1);
    assert_eq!(runs(&pool).await, 1);
}

#[tokio::test]
async fn a_failed_run_leaves_the_job_due_and_left_over_work_runs_at_once() {
    let (pool, job, recorder) = setup().await;
    let now = datetime!(2026-03-02 09:00 UTC);
    recorder.fail.store(true, Ordering::SeqCst);
    assert!(schedule::run_if_due(&pool, &job, now).await.is_err());
    assert_eq!(runs(&pool).await, 0, "the failed run's writes rolled back");
    recorder.fail.store(false, Ordering::SeqCst);
    recorder.more.store(true, Ordering::SeqCst);
    assert!(schedule::run_if_due(&pool, &job, now).await.unwrap());
    // work was left over: due again at once
    assert!(schedule::run_if_due(&pool, &job, now).await.unwrap());
    // then not until the period has passed
    assert!(!schedule::run_if_due(&pool, &job, now).await.unwrap());
    assert_eq!(runs(&pool).await, 2);
}
