//! Recurring jobs that run once per period across any number of replicas (N-5: the
//! fortnightly care messages, the overdue-contact reminders). Each job is a row in the
//! service's `scheduled_jobs`; a replica that locks the row (`SKIP LOCKED`: the others pass)
//! and finds it due runs the job in that same transaction and moves `next_run` on. The job's
//! writes — typically outbox events — and the new `next_run` commit together, so a replica that
//! dies mid-run leaves the job due for the next one, and a run is never repeated once
//! committed. Due times come from the service's [`Clock`], so tests move time by hand.

use std::{sync::Arc, time::Duration};

use serde::Deserialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

use crate::{Clock, Error};

/// The `[schedule]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct ScheduleSettings {
    /// How often each replica looks for due jobs.
    pub poll_ms: u64,
}

/// What a job does when it runs.
#[tonic::async_trait]
pub trait Task: Send + Sync + 'static {
    /// Does one run's work in `tx` at `now`. Returns true if work is left over (a batch
    /// limit was reached): the job is then due again at once instead of after its period.
    async fn run(&self, tx: &mut PgConnection, now: OffsetDateTime) -> Result<bool, Error>;
}

/// A recurring job.
#[derive(Clone)]
pub struct Job {
    /// Unique within the schema.
    pub name: &'static str,
    /// The period between runs.
    pub every: Duration,
    /// The work.
    pub task: Arc<dyn Task>,
}

/// Runs `job` if it is due; returns whether it ran.
pub async fn run_if_due(pool: &PgPool, job: &Job, now: OffsetDateTime) -> Result<bool, Error> {
    let mut tx = crate::db::begin(pool).await?;
    sqlx::query(
        "INSERT INTO scheduled_jobs (name, next_run) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(job.name)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    let due: Option<OffsetDateTime> = sqlx::query_scalar(
        "SELECT next_run FROM scheduled_jobs WHERE name = $1 AND next_run <= $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(job.name)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?;
    if due.is_none() {
        return Ok(false);
    }
    let more = job.task.run(&mut tx, now).await?;
    let every = time::Duration::try_from(job.every).unwrap_or(time::Duration::DAY);
    let next = if more { now } else { now + every };
    sqlx::query(
        "UPDATE scheduled_jobs SET next_run = $2, last_run = $3, runs = runs + 1 WHERE name = $1",
    )
    .bind(job.name)
    .bind(next)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Runs `jobs` on `pool` whenever they are due, until `shutdown`.
pub fn spawn(
    pool: PgPool,
    clock: Clock,
    jobs: Vec<Job>,
    settings: ScheduleSettings,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let mut busy = false;
            for job in &jobs {
                match run_if_due(&pool, job, clock.now()).await {
                    Ok(ran) => busy |= ran,
                    Err(e) => {
                        tracing::warn!(job = job.name, error = %e, "scheduled job failed; it stays due")
                    }
                }
            }
            if busy {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(settings.poll_ms)) => {}
            }
        }
    })
}
