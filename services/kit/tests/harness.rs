//! The test harness itself: each test gets its own database and Redis key prefix, against the
//! real servers `make test` starts.

use crm_kit::{redis::Keys, testing};
use redis::AsyncCommands;

#[tokio::test]
async fn each_test_gets_its_own_database_and_key_prefix() {
    let a = testing::test_env().await;
    let b = testing::test_env().await;
    assert_ne!(a.database, b.database);
    assert_ne!(a.settings.redis.key_prefix, b.settings.redis.key_prefix);

    // databases are separate: a table made in one is not in the other
    let pa = crm_kit::db::connect(&a.settings.database, "customers")
        .await
        .unwrap();
    let pb = crm_kit::db::connect(&b.settings.database, "customers")
        .await
        .unwrap();
    sqlx::query("CREATE TABLE public.only_in_a (x int)")
        .execute(&pa)
        .await
        .unwrap();
    let seen: bool = sqlx::query_scalar("SELECT to_regclass('public.only_in_a') IS NOT NULL")
        .fetch_one(&pb)
        .await
        .unwrap();
    assert!(!seen);

    // keys are separate: the same logical key of each test is a different Redis key
    let mut conn = crm_kit::redis::connect(&a.settings.redis).await.unwrap();
    let ka = Keys::new(&a.settings.redis, "customers").key("probe");
    let kb = Keys::new(&b.settings.redis, "customers").key("probe");
    let _: () = conn.set(&ka, "a").await.unwrap();
    let _: () = conn.set(&kb, "b").await.unwrap();
    let va: String = conn.get(&ka).await.unwrap();
    let vb: String = conn.get(&kb).await.unwrap();
    assert_eq!((va.as_str(), vb.as_str()), ("a", "b"));
}

#[tokio::test]
async fn migrations_apply_in_the_service_schema_and_are_repeatable() {
    let env = testing::test_env().await;
    let pool = crm_kit::db::connect(&env.settings.database, "demo_schema")
        .await
        .unwrap();
    let none = sqlx::migrate::Migrator::DEFAULT;
    crm_kit::db::migrate(&pool, "demo_schema", &none)
        .await
        .unwrap();
    crm_kit::db::migrate(&pool, "demo_schema", &none)
        .await
        .unwrap();
    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT schemaname::text FROM pg_tables WHERE tablename = 'idempotency_keys'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(schemas, ["demo_schema"]);
    assert!(
        crm_kit::db::connect(&env.settings.database, "Bad-Name")
            .await
            .is_err()
    );
}
