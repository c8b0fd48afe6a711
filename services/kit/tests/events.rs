//! Events against the real Postgres and Redis: delivered once per committed change, never for
//! a rolled-back one, once in effect when delivered twice, claimed from a dead consumer, and
//! published again after Redis lost its data.

use std::{sync::Arc, time::Duration};

use crm_kit::{
    CancellationToken, Settings,
    events::{self, Consumer},
    testing,
};
use redis::aio::ConnectionManager;
use sqlx::PgPool;

const SCHEMA: &str = "evtest";

struct Env {
    settings: Settings,
    pool: PgPool,
    redis: ConnectionManager,
    stop: CancellationToken,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn env(tweak: impl FnOnce(&mut Settings)) -> Env {
    let mut settings = testing::test_env().await.settings;
    settings.events.relay_poll_ms = 10;
    settings.events.consumer_block_ms = 100;
    tweak(&mut settings);
    let pool = testing::kit_schema(&settings, SCHEMA, "CREATE TABLE handled (n bigint GENERATED ALWAYS AS IDENTITY, event_id uuid NOT NULL, aggregate text NOT NULL)").await;
    let redis = crm_kit::redis::connect(&settings.redis).await.unwrap();
    Env {
        settings,
        pool,
        redis,
        stop: CancellationToken::new(),
    }
}

impl Env {
    fn start_relay(&self) {
        events::spawn_relay(
            self.pool.clone(),
            SCHEMA,
            self.settings.redis.clone(),
            self.settings.events.clone(),
            self.stop.clone(),
        );
    }

    fn start_consumer(&self) {
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

    async fn publish(&self, aggregate: &str, commit: bool) -> String {
        testing::events::publish_one(&self.pool, SCHEMA, aggregate, commit).await
    }

    async fn handled(&self) -> Vec<(String, String)> {
        sqlx::query_as("SELECT event_id::text, aggregate FROM handled ORDER BY n")
            .fetch_all(&self.pool)
            .await
            .unwrap()
    }

    async fn wait_handled(&self, n: usize) {
        testing::wait_until(
            &format!("{n} events handled"),
            Duration::from_secs(10),
            || async { self.handled().await.len() >= n },
        )
        .await;
    }

    /// Waits until the stream holds `n` entries.
    async fn wait_relayed(&self, n: u64) {
        testing::wait_until(
            &format!("{n} events relayed"),
            Duration::from_secs(10),
            || async {
                let mut redis = self.redis.clone();
                let len: u64 = redis::cmd("XLEN")
                    .arg(self.stream())
                    .query_async(&mut redis)
                    .await
                    .unwrap_or(0);
                len >= n
            },
        )
        .await;
    }

    fn stream(&self) -> String {
        events::stream_key(&self.settings.redis.key_prefix, SCHEMA)
    }

    /// (entries in the stream, entries the group has read, entries pending)
    async fn group_state(&self) -> (u64, u64, u64) {
        let mut redis = self.redis.clone();
        let len: u64 = redis::cmd("XLEN")
            .arg(self.stream())
            .query_async(&mut redis)
            .await
            .unwrap();
        let info: Vec<redis::Value> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(self.stream())
            .query_async(&mut redis)
            .await
            .unwrap();
        let group: std::collections::HashMap<String, redis::Value> =
            redis::from_redis_value(info[0].clone()).unwrap();
        let read: u64 = redis::from_redis_value(group["entries-read"].clone()).unwrap_or(0);
        let pending: u64 = redis::from_redis_value(group["pending"].clone()).unwrap();
        (len, read, pending)
    }
}

#[tokio::test]
async fn committed_events_are_delivered_once_in_order_and_rolled_back_ones_never() {
    let e = env(|_| {}).await;
    let first = e.publish("customers/a", true).await;
    let _lost = e.publish("customers/a", false).await;
    let second = e.publish("customers/a", true).await;
    e.start_relay();
    e.start_consumer();
    e.wait_handled(2).await;
    assert_eq!(
        e.handled().await,
        [
            (first, "customers/a".to_string()),
            (second, "customers/a".to_string())
        ]
    );
    testing::wait_until("acknowledged", Duration::from_secs(5), || async {
        e.group_state().await == (2, 2, 0)
    })
    .await;
}

#[tokio::test]
async fn a_duplicate_delivery_is_acted_on_once() {
    let e = env(|_| {}).await;
    let id = e.publish("customers/b", true).await;
    e.start_relay();
    e.start_consumer();
    e.wait_handled(1).await;
    // the relay died after appending to the stream and before marking the row: it appends again
    sqlx::query("UPDATE outbox SET publish_time = NULL")
        .execute(&e.pool)
        .await
        .unwrap();
    testing::wait_until(
        "the duplicate delivered and acknowledged",
        Duration::from_secs(10),
        || async { e.group_state().await == (2, 2, 0) },
    )
    .await;
    assert_eq!(e.handled().await, [(id, "customers/b".to_string())]);
}

#[tokio::test]
async fn a_dead_consumers_pending_event_is_claimed_by_a_live_one() {
    let e = env(|s| s.events.claim_idle_ms = 300).await;
    let id = e.publish("customers/c", true).await;
    e.start_relay();
    testing::wait_until("published", Duration::from_secs(5), || async {
        let mut redis = e.redis.clone();
        redis::cmd("XLEN")
            .arg(e.stream())
            .query_async::<u64>(&mut redis)
            .await
            .unwrap_or(0)
            == 1
    })
    .await;
    // a consumer reads the event and dies before acting on it
    let mut redis = e.redis.clone();
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(e.stream())
        .arg("test")
        .arg("0")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("test")
        .arg("dead-consumer")
        .arg("COUNT")
        .arg(10)
        .arg("STREAMS")
        .arg(e.stream())
        .arg(">")
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(e.group_state().await, (1, 1, 1));
    e.start_consumer();
    e.wait_handled(1).await;
    assert_eq!(e.handled().await, [(id, "customers/c".to_string())]);
    testing::wait_until("acknowledged", Duration::from_secs(5), || async {
        e.group_state().await.2 == 0
    })
    .await;
}

#[tokio::test]
async fn after_redis_lost_its_data_recent_events_are_published_again_and_acted_on_once() {
    let e = env(|_| {}).await;
    let first = e.publish("customers/d", true).await;
    e.start_relay();
    e.start_consumer();
    e.wait_handled(1).await;
    // Redis restarted empty (for this test's keys): stream, group and epoch marker are gone
    let mut redis = e.redis.clone();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}*", e.settings.redis.key_prefix))
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis)
        .await
        .unwrap();
    let second = e.publish("customers/d", true).await;
    e.wait_handled(2).await;
    // both are in the stream again (the second may be there twice, if the relay added it just
    // before it noticed the loss), every entry read, none pending
    testing::wait_until(
        "both published again and acknowledged",
        Duration::from_secs(10),
        || async {
            let (len, read, pending) = e.group_state().await;
            len >= 2 && read == len && pending == 0
        },
    )
    .await;
    assert_eq!(
        e.handled().await,
        [
            (first, "customers/d".to_string()),
            (second, "customers/d".to_string())
        ]
    );
}

#[tokio::test]
async fn the_trace_context_travels_in_the_envelope() {
    let e = env(|_| {}).await;
    let _ = crm_kit::telemetry::init("test", &e.settings.telemetry, std::io::sink);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let request = http::Request::builder()
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .body(())
        .unwrap();
    let span = crm_kit::telemetry::server_span("customers", &request);
    tracing::Instrument::instrument(e.publish("customers/e", true), span).await;
    let envelope: Vec<u8> = sqlx::query_scalar("SELECT envelope FROM outbox")
        .fetch_one(&e.pool)
        .await
        .unwrap();
    let event =
        <crm_proto::events::v1::Event as prost::Message>::decode(envelope.as_slice()).unwrap();
    assert!(
        event.traceparent.contains(trace_id),
        "{}",
        event.traceparent
    );
    assert_eq!(event.actor, "tester");
    assert_eq!(
        event.payload.unwrap().type_url,
        "type.googleapis.com/crm.common.v1.Date"
    );
}

/// The backend holding the relay's leadership lock in this test's database, if any.
async fn relay_lock_holder(pool: &PgPool) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn after_a_redis_stall_and_a_lost_postgres_connection_events_flow_again_at_once() {
    // the relay reaches Redis through a proxy the test can stall; the consumer reaches it directly
    let redis_addr = {
        let s = testing::test_env().await.settings;
        s.redis
            .url
            .trim_start_matches("redis://")
            .trim_end_matches('/')
            .to_string()
    };
    let proxy = testing::proxy::Proxy::start(&redis_addr).await;
    let e = env(|_| {}).await;
    let mut relay_redis = e.settings.redis.clone();
    relay_redis.url = format!("redis://{}", proxy.addr());
    events::spawn_relay(
        e.pool.clone(),
        SCHEMA,
        relay_redis,
        e.settings.events.clone(),
        e.stop.clone(),
    );
    e.start_consumer();
    let first = e.publish("customers/f", true).await;
    e.wait_handled(1).await;
    let leader = relay_lock_holder(&e.pool).await.expect("the relay leads");

    // Redis stalls: the relay's calls time out and it leaves; its lock must go with it, not
    // stay on a connection of the pool (where no retry could ever take it again)
    proxy.freeze();
    let second = e.publish("customers/f", true).await;
    testing::wait_until(
        "the stalled relay to let its lock go",
        Duration::from_secs(10),
        || async { relay_lock_holder(&e.pool).await != Some(leader) },
    )
    .await;
    proxy.thaw();
    e.wait_handled(2).await;

    // Postgres ends every session of the relay's database (a failover, an idle kill)
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&e.pool)
    .await
    .unwrap();
    let third = e.publish("customers/f", true).await;
    e.wait_handled(3).await;
    testing::wait_until("acknowledged", Duration::from_secs(10), || async {
        let (len, read, pending) = e.group_state().await;
        len >= 3 && read == len && pending == 0
    })
    .await;
    // each once, in order
    let handled: Vec<String> = e.handled().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(handled, [first, second, third]);
}

/// Records like [`testing::events::Record`], but fails every event of `customers/bad`.
struct FailOne(testing::events::Record);

#[tonic::async_trait]
impl events::Handler for FailOne {
    async fn handle(
        &self,
        tx: &mut sqlx::PgConnection,
        event: &crm_proto::events::v1::Event,
    ) -> Result<(), crm_kit::Error> {
        if event.aggregate == "customers/bad" {
            return Err(crm_kit::Error::Internal(anyhow::anyhow!(
                "refused by the test"
            )));
        }
        self.0.handle(tx, event).await
    }
}

#[tokio::test]
async fn a_failing_event_in_a_batch_holds_up_only_its_aggregate() {
    let e = env(|_| {}).await;
    // all committed and relayed before the consumer starts, so they come in one batch
    let mut ids = Vec::new();
    for aggregate in [
        "customers/a",
        "customers/bad",
        "customers/b",
        "customers/bad",
        "customers/a",
    ] {
        ids.push((e.publish(aggregate, true).await, aggregate));
    }
    e.start_relay();
    e.wait_relayed(5).await;
    let consumer = Consumer {
        group: "test".into(),
        topics: vec![SCHEMA.into()],
        handler: Arc::new(FailOne(testing::events::Record {
            pool: e.pool.clone(),
            block: false,
        })),
    };
    events::spawn_consumer(
        e.pool.clone(),
        consumer,
        e.settings.redis.clone(),
        e.settings.events.clone(),
        e.stop.clone(),
    );
    e.wait_handled(3).await;
    // the batch failed as a whole (nothing of it stayed), then each aggregate went on its
    // own: a's and b's events once each and in order, bad's none, and bad's two stay pending
    testing::wait_until(
        "the good ones acknowledged",
        Duration::from_secs(10),
        || async { e.group_state().await.2 == 2 },
    )
    .await;
    let handled: Vec<String> = e.handled().await.into_iter().map(|(id, _)| id).collect();
    let good: Vec<String> = ids
        .iter()
        .filter(|(_, a)| *a != "customers/bad")
        .map(|(id, _)| id.clone())
        .collect();
    let mut sorted_handled = handled.clone();
    sorted_handled.sort();
    let mut sorted_good = good.clone();
    sorted_good.sort();
    assert_eq!(sorted_handled, sorted_good);
    let a: Vec<&String> = handled
        .iter()
        .filter(|id| ids.iter().any(|(i, a)| i == *id && *a == "customers/a"))
        .collect();
    assert_eq!(a, [&ids[0].0, &ids[4].0]);
    let processed: i64 = sqlx::query_scalar("SELECT count(*) FROM processed_events")
        .fetch_one(&e.pool)
        .await
        .unwrap();
    assert_eq!(
        processed, 3,
        "the failed events are not recorded as processed"
    );
}

#[tokio::test]
async fn a_batch_of_good_events_is_handled_once_each_in_one_go() {
    let e = env(|_| {}).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(e.publish(&format!("customers/{}", i % 3), true).await);
    }
    e.start_relay();
    e.wait_relayed(20).await;
    e.start_consumer();
    e.wait_handled(20).await;
    testing::wait_until("acknowledged", Duration::from_secs(10), || async {
        let (len, read, pending) = e.group_state().await;
        len == 20 && read == 20 && pending == 0
    })
    .await;
    let handled: Vec<String> = e.handled().await.into_iter().map(|(id, _)| id).collect();
    assert_eq!(handled, ids, "each once, in commit order");
    // one transaction recorded them all (now() is its start time)
    let transactions: i64 =
        sqlx::query_scalar("SELECT count(DISTINCT process_time) FROM processed_events")
            .fetch_one(&e.pool)
            .await
            .unwrap();
    assert_eq!(transactions, 1);
}
