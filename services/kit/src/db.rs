//! Postgres: one pool per service, bound to the service's own schema (its `search_path`), with
//! the kit's tables and the service's migrations applied there.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// The kit's own tables (idempotency keys, and later outbox and timers), applied to every
/// service schema and tracked in `_kit_migrations`.
static KIT_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/kit");

fn check_schema_name(schema: &str) -> anyhow::Result<()> {
    let ok = !schema.is_empty()
        && schema.len() <= 63
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        && !schema.starts_with("pg_");
    anyhow::ensure!(ok, "invalid schema name {schema:?}");
    Ok(())
}

/// A pool whose connections all work in `schema` (then `public`, for extensions).
pub async fn connect(settings: &DatabaseSettings, schema: &str) -> anyhow::Result<PgPool> {
    check_schema_name(schema)?;
    let options = PgConnectOptions::from_str(&settings.url)?
        .options([("search_path", format!("{schema},public"))])
        .application_name(&format!("crm-{schema}"));
    Ok(PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(options)
        .await?)
}

/// Creates `schema` if missing and applies the kit's and then the service's migrations in it.
pub async fn migrate(pool: &PgPool, schema: &str, migrator: &Migrator) -> anyhow::Result<()> {
    check_schema_name(schema)?;
    // the name was checked above: lowercase letters and underscores only
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(pool)
    .await?;
    let mut kit = Migrator {
        migrations: KIT_MIGRATIONS.migrations.clone(),
        ..Migrator::DEFAULT
    };
    kit.dangerous_set_table_name("_kit_migrations");
    kit.run(pool).await?;
    migrator.run(pool).await?;
    tracing::info!(schema, "migrations applied");
    Ok(())
}

/// Connects, applies `migrator` in `schema` and disconnects: a service's `migrate`.
pub async fn migrate_schema(
    settings: &DatabaseSettings,
    schema: &str,
    migrator: &Migrator,
) -> anyhow::Result<()> {
    let pool = connect(settings, schema).await?;
    migrate(&pool, schema, migrator).await?;
    pool.close().await;
    Ok(())
}

/// Postgres connection settings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL; each service works in its own schema of this database.
    pub url: String,
    /// Pool size per service.
    pub max_connections: u32,
    /// How long a call waits for a pooled connection.
    pub acquire_timeout_ms: u64,
}
