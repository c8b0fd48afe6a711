//! Timers with real processes killed by SIGKILL (T-5): a worker killed in the middle of firing
//! — its claimed batch under lease, one firing's transaction open — loses no timer, and every
//! timer fires exactly once.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use crm_kit::{
    CancellationToken, Clock, Settings, testing,
    timers::{self, NewTimer, Timers},
};
use sqlx::PgPool;

const SCHEMA: &str = "timerkill";

struct Env {
    settings: Settings,
    pool: PgPool,
    stop: CancellationToken,
    children: Vec<Child>,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop.cancel();
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn count(pool: &PgPool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn a_worker_killed_in_the_middle_of_firing_loses_no_timer() {
    let mut settings = testing::test_env().await.settings;
    settings.timers.lease_ms = 500;
    settings.timers.poll_ms = 20;
    let pool = crm_kit::db::connect(&settings.database, SCHEMA)
        .await
        .unwrap();
    crm_kit::db::migrate(&pool, SCHEMA, &sqlx::migrate::Migrator::DEFAULT)
        .await
        .unwrap();
    testing::timers::tables(&pool).await;
    let mut env = Env {
        settings,
        pool,
        stop: CancellationToken::new(),
        children: Vec::new(),
    };

    // 400 timers due now, one of them of the kind the child holds open
    let now = time::OffsetDateTime::now_utc();
    let batch: Vec<NewTimer> = (0..400)
        .map(|i| NewTimer {
            kind: if i == 7 { "block" } else { "test.due" }.into(),
            subject: format!("things/{i}"),
            due: now,
            payload: serde_json::json!({}),
        })
        .collect();
    let arm = Timers::connect(&env.settings.redis, SCHEMA).await.unwrap();
    let mut tx = env.pool.begin().await.unwrap();
    let armed = timers::schedule(&mut tx, &batch, now).await.unwrap();
    tx.commit().await.unwrap();
    arm.arm(&armed).await;

    // a worker in its own process claims them and blocks inside one firing transaction
    let s = &env.settings;
    let child = Command::new(env!("CARGO_BIN_EXE_crm-events-worker"))
        .args(["timers", SCHEMA])
        .env("CRM__DATABASE__URL", &s.database.url)
        .env("CRM__DATABASE__MAX_CONNECTIONS", "8")
        .env("CRM__REDIS__URL", &s.redis.url)
        .env("CRM__REDIS__KEY_PREFIX", &s.redis.key_prefix)
        .env("CRM__TIMERS__LEASE_MS", "500")
        .env("CRM__TIMERS__POLL_MS", "20")
        .env("CRM__TELEMETRY__LOG_FILTER", "error")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the worker");
    env.children.push(child);
    let pool = env.pool.clone();
    testing::wait_until(
        "the worker to block mid-firing",
        Duration::from_secs(20),
        || {
            let pool = pool.clone();
            async move { count(&pool, "SELECT count(*) FROM blocked").await == 1 }
        },
    )
    .await;
    // SIGKILL: no shutdown, no cleanup, its transaction and leases left behind
    env.children[0].kill().unwrap();
    env.children[0].wait().unwrap();

    // a live worker takes over what the dead one held once its leases end
    timers::spawn_worker(
        env.pool.clone(),
        Timers::connect(&env.settings.redis, SCHEMA).await.unwrap(),
        Clock::system(),
        Arc::new(testing::timers::Record {
            pool: env.pool.clone(),
            block: false,
        }),
        env.settings.timers.clone(),
        env.stop.clone(),
    );
    let pool = env.pool.clone();
    testing::wait_until("every timer to fire", Duration::from_secs(30), || {
        let pool = pool.clone();
        async move { count(&pool, "SELECT count(DISTINCT timer_id) FROM fired").await == 400 }
    })
    .await;
    assert_eq!(
        count(&env.pool, "SELECT count(*) FROM fired").await,
        400,
        "none fired twice"
    );
    assert_eq!(
        count(
            &env.pool,
            "SELECT count(*) FROM timers WHERE state <> 'fired'"
        )
        .await,
        0
    );
}
