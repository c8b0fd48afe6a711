//! Nothing lost, with real processes killed by SIGKILL: a relay killed while it
//! publishes, two relays of which the active one dies, and a consumer killed in the middle of
//! an event. Every committed event is still acted on exactly once in effect.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::Duration,
};

use crm_kit::{
    CancellationToken, Settings,
    events::{self, Consumer},
    testing,
};
use sqlx::PgPool;

const SCHEMA: &str = "killtest";

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

async fn env() -> Env {
    let mut settings = testing::test_env().await.settings;
    settings.events.relay_poll_ms = 10;
    settings.events.consumer_block_ms = 100;
    settings.events.claim_idle_ms = 500;
    let pool = testing::events::schema(&settings, SCHEMA).await;
    Env {
        settings,
        pool,
        stop: CancellationToken::new(),
        children: Vec::new(),
    }
}

impl Env {
    /// Starts `crm-events-worker MODE` with this test's settings; returns its index.
    fn spawn(&mut self, mode: &str) -> usize {
        let s = &self.settings;
        let child = Command::new(env!("CARGO_BIN_EXE_crm-events-worker"))
            .args([mode, SCHEMA])
            .env("CRM__DATABASE__URL", &s.database.url)
            .env("CRM__DATABASE__MAX_CONNECTIONS", "4")
            .env("CRM__REDIS__URL", &s.redis.url)
            .env("CRM__REDIS__KEY_PREFIX", &s.redis.key_prefix)
            .env("CRM__EVENTS__RELAY_POLL_MS", "10")
            .env("CRM__EVENTS__RELAY_BATCH", "20")
            .env("CRM__EVENTS__CONSUMER_BLOCK_MS", "100")
            .env("CRM__EVENTS__CLAIM_IDLE_MS", "500")
            .env("CRM__TELEMETRY__LOG_FILTER", "error")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the worker");
        self.children.push(child);
        self.children.len() - 1
    }

    /// SIGKILL: no shutdown, no cleanup.
    fn kill(&mut self, index: usize) {
        self.children[index].kill().unwrap();
        self.children[index].wait().unwrap();
    }

    fn start_consumer_here(&self) {
        let consumer = Consumer {
            group: "test".into(),
            topics: vec![SCHEMA.into()],
            handler: Arc::new(testing::events::Record {
                pool: self.pool.clone(),
                block: false,
            }),
        };
        events::spawn_consumer(
            self.pool.clone(),
            consumer,
            self.settings.redis.clone(),
            self.settings.events.clone(),
            self.stop.clone(),
        );
    }

    async fn publish(&self, aggregate: &str) -> String {
        testing::events::publish_one(&self.pool, SCHEMA, aggregate, true).await
    }

    async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    async fn published(&self) -> i64 {
        self.count("SELECT count(*) FROM outbox WHERE publish_time IS NOT NULL")
            .await
    }

    /// Every published event handled once, none twice.
    async fn assert_each_handled_once(&self, expected: i64) {
        testing::wait_until(
            &format!("{expected} events handled"),
            Duration::from_secs(20),
            || async {
                self.count("SELECT count(DISTINCT event_id) FROM handled")
                    .await
                    == expected
            },
        )
        .await;
        assert_eq!(
            self.count("SELECT count(*) FROM handled").await,
            expected,
            "an event was acted on twice"
        );
        let missing = self.count("SELECT count(*) FROM outbox o WHERE NOT EXISTS (SELECT 1 FROM handled h WHERE h.event_id = o.id)").await;
        assert_eq!(missing, 0);
    }
}

#[tokio::test]
async fn a_relay_killed_while_publishing_loses_nothing_and_duplicates_nothing() {
    let mut e = env().await;
    e.start_consumer_here();
    let relay = e.spawn("relay");
    // commits go on while the relay works and is killed
    let publisher = {
        let (pool, settings) = (e.pool.clone(), e.settings.clone());
        tokio::spawn(async move {
            let e = Env {
                settings,
                pool,
                stop: CancellationToken::new(),
                children: Vec::new(),
            };
            for i in 0..300 {
                e.publish(&format!("customers/{}", i % 7)).await;
            }
        })
    };
    testing::wait_until(
        "the relay to be under way",
        Duration::from_secs(20),
        || async { e.published().await >= 60 },
    )
    .await;
    e.kill(relay);
    publisher.await.unwrap();
    e.spawn("relay");
    e.assert_each_handled_once(300).await;
}

#[tokio::test]
async fn when_the_active_relay_dies_the_standby_takes_over() {
    let mut e = env().await;
    e.start_consumer_here();
    let first = e.spawn("relay");
    let _standby = e.spawn("relay");
    for _ in 0..20 {
        e.publish("customers/x").await;
    }
    e.assert_each_handled_once(20).await;
    // whichever is active, kill the first one: either it was the leader (the standby takes over)
    // or the standby (nothing changes)
    e.kill(first);
    for _ in 0..20 {
        e.publish("customers/x").await;
    }
    e.assert_each_handled_once(40).await;
    // and events of one aggregate were handled in commit order
    let order: Vec<String> = sqlx::query_scalar("SELECT event_id::text FROM handled ORDER BY n")
        .fetch_all(&e.pool)
        .await
        .unwrap();
    let committed: Vec<String> = sqlx::query_scalar("SELECT id::text FROM outbox ORDER BY seq")
        .fetch_all(&e.pool)
        .await
        .unwrap();
    assert_eq!(order, committed);
}

#[tokio::test]
async fn a_consumer_killed_in_the_middle_of_an_event_loses_nothing() {
    let mut e = env().await;
    let relay = e.spawn("relay");
    let consumer = e.spawn("consume");
    let blocked = e.publish("block").await;
    testing::wait_until(
        "the consumer to be inside the event",
        Duration::from_secs(20),
        || async { e.count("SELECT count(*) FROM blocked").await == 1 },
    )
    .await;
    // killed with the event's transaction open: nothing of it is committed
    e.kill(consumer);
    assert_eq!(e.count("SELECT count(*) FROM handled").await, 0);
    let after = e.publish("customers/y").await;
    // a live consumer claims the dead one's pending delivery (an in-process one, which does not block)
    e.start_consumer_here();
    e.assert_each_handled_once(2).await;
    let handled: Vec<String> =
        sqlx::query_scalar("SELECT event_id::text FROM handled ORDER BY event_id")
            .fetch_all(&e.pool)
            .await
            .unwrap();
    let mut expected = vec![blocked, after];
    expected.sort();
    assert_eq!(handled, expected);
    let _ = relay;
}
