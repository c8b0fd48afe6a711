//! Postgres: one pool per service, bound to the service's own schema (its `search_path`), with
//! the kit's tables and the service's migrations applied there.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, Postgres, Transaction,
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
    let options = PgConnectOptions::from_str(settings.url_of(schema))?
        .options([("search_path", format!("{schema},public"))])
        .application_name(&format!("crm-{schema}"));
    let ping_idle = Duration::from_millis(settings.ping_idle_ms);
    Ok(PgPoolOptions::new()
        // no ping before a busy connection is handed out, so a read is one round trip; only
        // one idle longer than `ping_idle_ms` (which Postgres may have ended meanwhile) is
        // checked first. A connection that broke while busy fails its one call (UNAVAILABLE,
        // retryable; `begin` retries it on another connection) and is dropped when sqlx takes
        // it back, where it sends a Sync on release — which also ends whatever a cancelled
        // call left open on it (docs/performance.md)
        .test_before_acquire(false)
        .before_acquire(move |conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_idle {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_millis(settings.acquire_timeout_ms))
        .connect_with(options)
        .await?)
}

/// Whether `e` means the connection is gone or the server is going away (an I/O error, a
/// connection exception, an administrator's shutdown or termination): nothing of the statement
/// can have taken effect beyond the transaction, which Postgres rolls back, so a new
/// transaction on another connection is safe.
pub fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// How many times [`begin_with`] tries.
const BEGIN_ATTEMPTS: usize = 3;

/// Begins a transaction (`BEGIN`), on another connection when the first one handed out turns
/// out to be broken (see [`connection_lost`]).
pub async fn begin(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    begin_with(pool, "BEGIN").await
}

/// Begins a transaction with `statement` (a simple query starting with `BEGIN`, e.g. `BEGIN;
/// SELECT pg_advisory_xact_lock(7)`), retried like [`begin`].
pub async fn begin_with(
    pool: &PgPool,
    statement: &str,
) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut attempt = 1;
    loop {
        match pool
            .begin_with(sqlx::AssertSqlSafe(statement.to_string()))
            .await
        {
            Err(e) if attempt < BEGIN_ATTEMPTS && connection_lost(&e) => {
                tracing::debug!(error = %e, attempt, "a pooled connection was broken; beginning on another");
                attempt += 1;
            }
            other => return other,
        }
    }
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

impl DatabaseSettings {
    /// The connection URL of `service`'s schema: its own from `urls`, else `url`.
    pub fn url_of(&self, service: &str) -> &str {
        self.urls
            .get(service)
            .map_or(self.url.as_str(), String::as_str)
    }
}

/// Postgres connection settings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct DatabaseSettings {
    /// Connection URL; each service works in its own schema of this database.
    pub url: String,
    /// Services whose schema lives elsewhere: service name → its own connection URL (e.g. on a
    /// Postgres cluster of its own); the others use `url`.
    #[serde(default)]
    pub urls: std::collections::BTreeMap<String, String>,
    /// Pool size per service.
    pub max_connections: u32,
    /// How long a call waits for a pooled connection.
    pub acquire_timeout_ms: u64,
    /// A pooled connection idle at least this long is pinged before it is handed out (a busy
    /// one is not: that round trip would double a read's).
    pub ping_idle_ms: u64,
}
