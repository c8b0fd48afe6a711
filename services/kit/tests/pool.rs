//! The kit's Postgres pool: a busy connection is handed out without a ping (a read is one round
//! trip), one idle for `ping_idle_ms` is checked first, and a transaction begins on another
//! connection when the one handed out was ended by Postgres meanwhile.

use crm_kit::testing;
use sqlx::{Connection, PgConnection, PgPool};

async fn backend(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Ends a backend from a connection of its own, and waits until it is gone.
async fn terminate(url: &str, pid: i32) {
    let mut admin = PgConnection::connect(url).await.unwrap();
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await
        .unwrap();
    assert!(ended, "backend {pid} still runs");
    admin.close().await.unwrap();
}

#[tokio::test]
async fn a_transaction_begins_on_another_connection_when_postgres_ended_the_pooled_one() {
    let mut env = testing::test_env().await;
    env.settings.database.max_connections = 1;
    env.settings.database.ping_idle_ms = 60_000; // never pinged in this test
    let pool = crm_kit::db::connect(&env.settings.database, "customers")
        .await
        .unwrap();
    let first = backend(&pool).await;
    terminate(&env.settings.database.url, first).await;

    // the pooled connection is dead and, used a moment ago, is handed out unchecked: `begin`
    // notices and begins on a new one
    let mut tx = crm_kit::db::begin(&pool).await.unwrap();
    let second: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_ne!(first, second);

    // and the write path's begin (with its key lock) does the same
    crm_kit::db::migrate(&pool, "customers", &sqlx::migrate::Migrator::DEFAULT)
        .await
        .unwrap();
    let third = backend(&pool).await;
    terminate(&env.settings.database.url, third).await;
    let key = crm_kit::idempotency::RequestKey::new(
        "crm.test.v1.Test/Write",
        "request-1",
        &prost_types::Timestamp::default(),
    )
    .unwrap();
    match key.begin::<prost_types::Timestamp>(&pool).await.unwrap() {
        crm_kit::idempotency::Begun::Fresh(tx) => key
            .finish(
                tx,
                &prost_types::Timestamp::default(),
                time::OffsetDateTime::now_utc(),
            )
            .await
            .unwrap(),
        crm_kit::idempotency::Begun::Replay(_) => panic!("a new request id replayed"),
    }
    assert!(matches!(
        key.begin::<prost_types::Timestamp>(&pool).await.unwrap(),
        crm_kit::idempotency::Begun::Replay(_)
    ));
}

#[tokio::test]
async fn a_connection_idle_past_ping_idle_ms_is_checked_before_use() {
    let mut env = testing::test_env().await;
    env.settings.database.max_connections = 1;
    env.settings.database.ping_idle_ms = 0; // every hand-out is checked
    let pool = crm_kit::db::connect(&env.settings.database, "customers")
        .await
        .unwrap();
    let first = backend(&pool).await;
    terminate(&env.settings.database.url, first).await;
    // a plain read, no retry of ours: the pool's check found the dead connection and opened
    // another
    let second = backend(&pool).await;
    assert_ne!(first, second);
}
