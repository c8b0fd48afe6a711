//! The test harness: each test gets a database of its own in the test Postgres and a Redis key
//! prefix of its own, so tests run in parallel. `make test` starts the private servers and sets
//! `CRM_TEST_DATABASE_URL` / `CRM_TEST_REDIS_URL`; the defaults match its ports.

use std::{future::Future, time::Duration};

use sqlx::{Connection, PgConnection};

use crate::config::Settings;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:55433/postgres";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:56380";

/// The isolated environment of one test.
#[derive(Debug, Clone)]
pub struct TestEnv {
    /// Settings pointing at the test's own database and key prefix, every service on port 0.
    pub settings: Settings,
    /// The name of the test's database.
    pub database: String,
}

/// Creates a fresh database and key prefix for one test and settings that use them.
pub async fn test_env() -> TestEnv {
    test_env_with(&[]).await
}

/// [`test_env`] with some settings of the test's own, e.g. `("customers.import_max_bytes", "64")`.
pub async fn test_env_with(extra: &[(&'static str, String)]) -> TestEnv {
    let admin_url =
        std::env::var("CRM_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into());
    let redis_url =
        std::env::var("CRM_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.into());
    let id = uuid::Uuid::new_v4().simple().to_string();
    let database = format!("crm_test_{id}");
    let mut admin = PgConnection::connect(&admin_url).await.unwrap_or_else(|e| {
        panic!("cannot reach the test Postgres at {admin_url} ({e}); run `make test`, or start it with `deploy/local/services.sh start test`")
    });
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let url = replace_database(&admin_url, &database);
    let mut overrides = vec![
        ("database.url", url),
        ("database.max_connections", "5".to_string()),
        ("redis.url", redis_url),
        ("redis.key_prefix", format!("test:{id}:")),
        ("telemetry.log_filter", "warn".to_string()),
        ("auth.signing_key", crate::auth::generate_signing_key()),
        ("auth.revocation_poll_ms", "50".to_string()),
        ("schedule.poll_ms", "20".to_string()),
        // a loaded machine may take longer than production's wait to pass a customer's event on
        ("tickets.customer_wait_ms", "5000".to_string()),
    ];
    for service in [
        "gateway",
        "customers",
        "pipeline",
        "tickets",
        "complaints",
        "repairs",
        "notifications",
    ] {
        overrides.push((
            Box::leak(format!("services.{service}.listen").into_boxed_str()),
            "127.0.0.1:0".into(),
        ));
    }
    overrides.extend(extra.iter().cloned());
    let settings = Settings::load_with(None, &overrides).expect("test settings");
    TestEnv { settings, database }
}

/// Who a test token is for.
#[derive(Debug, Clone, Default)]
pub struct TestCaller<'a> {
    /// Subject (user id).
    pub subject: &'a str,
    /// Roles.
    pub roles: &'a [&'a str],
    /// Sales region.
    pub region: &'a str,
    /// Partner organisation.
    pub partner: &'a str,
}

/// An access token for `caller`, signed with the test's key, valid for `ttl_s` seconds
/// (negative: already expired).
pub fn token(settings: &Settings, caller: &TestCaller<'_>, ttl_s: i64) -> String {
    let signer = crate::auth::Signer::new(&settings.auth).expect("test signing key");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    signer
        .sign(&crate::auth::Claims {
            sub: caller.subject.into(),
            name: caller.subject.into(),
            kind: crate::auth::PrincipalKind::User,
            roles: caller.roles.iter().map(|r| r.to_string()).collect(),
            region: caller.region.into(),
            partner: caller.partner.into(),
            sid: format!("test-session-{}", uuid::Uuid::new_v4()),
            iss: settings.auth.issuer.clone(),
            iat: now,
            exp: now + ttl_s,
        })
        .expect("sign test token")
}

/// A client interceptor that sends a bearer token with every call.
#[derive(Clone)]
pub struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Bearer {
    /// The interceptor for `token`.
    pub fn new(token: &str) -> Self {
        Self(format!("Bearer {token}").parse().expect("ascii token"))
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert("authorization", self.0.clone());
        Ok(request)
    }
}

fn replace_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = base.rsplit_once('/').map_or(base, |(b, _)| b);
    match query {
        Some(q) => format!("{base}/{database}?{q}"),
        None => format!("{base}/{database}"),
    }
}

/// Waits until `condition` returns true, polling every 20 ms, and panics with `what` after
/// `deadline`. Use it instead of sleeping.
pub async fn wait_until<F, Fut>(what: &str, deadline: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    loop {
        if condition().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A pool on `schema` with the kit's tables migrated and a test's own `tables` (SQL) created:
/// how a kit test gets a database of its own.
pub async fn kit_schema(settings: &Settings, schema: &str, tables: &str) -> sqlx::PgPool {
    let pool = crate::db::connect(&settings.database, schema)
        .await
        .expect("connect");
    crate::db::migrate(&pool, schema, &sqlx::migrate::Migrator::DEFAULT)
        .await
        .expect("migrate");
    sqlx::raw_sql(sqlx::AssertSqlSafe(tables.to_string()))
        .execute(&pool)
        .await
        .expect("test tables");
    pool
}

/// The interceptor that makes a client call as `caller` for an hour.
pub fn bearer_as(settings: &Settings, caller: &TestCaller<'_>) -> Bearer {
    Bearer::new(&token(settings, caller, 3600))
}

/// Cancels its token when dropped: a test's services stop with the test.
pub struct StopOnDrop(pub tokio_util::sync::CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Serves a built service until `stop` and returns a channel to it (the one `spawn_app`
/// sequence of every service's tests).
pub async fn serve(
    app: impl crate::runtime::Running + 'static,
    stop: &tokio_util::sync::CancellationToken,
) -> tonic::transport::Channel {
    let addr = app.local_addr();
    tokio::spawn(Box::new(app).run(stop.clone()));
    tonic::transport::Channel::from_shared(format!("http://{addr}"))
        .expect("an address")
        .connect()
        .await
        .expect("connect to the service under test")
}

/// A schema of `topic` (another service's outbox in the test database) with its relay running
/// until `stop`: a test announces events there as that service would.
pub async fn upstream(
    settings: &Settings,
    topic: &'static str,
    stop: &tokio_util::sync::CancellationToken,
) -> sqlx::PgPool {
    let pool = events::schema(settings, topic).await;
    crate::events::spawn_relay(
        pool.clone(),
        topic,
        settings.redis.clone(),
        settings.events.clone(),
        stop.clone(),
    );
    pool
}

/// A token of an admin (`admin.test`), valid an hour.
pub fn admin_token(settings: &Settings) -> String {
    token(
        settings,
        &TestCaller {
            subject: "admin.test",
            roles: &["admin"],
            ..Default::default()
        },
        3600,
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_is_replaced() {
        assert_eq!(
            super::replace_database("postgres://u@h:1/postgres", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            super::replace_database("postgres://u@h:1/p?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}

/// Helpers for tests of the event pipeline: a schema with the kit's tables and a `handled`
/// table, a handler that records each event there, and a publisher of test events.
pub mod events {
    use sqlx::{PgConnection, PgPool};

    use crate::{
        Settings,
        context::Call,
        events::{Handler, NewEvent, Payload, publish},
    };

    /// Records each event in `handled` (in the consumer's transaction). With `block`, an event
    /// of aggregate `block` is held open forever after marking `blocked` (on its own
    /// connection), so a test can kill a consumer in the middle of an event.
    pub struct Record {
        /// The pool for the `blocked` mark.
        pub pool: PgPool,
        /// Whether to hold `block` events open.
        pub block: bool,
    }

    #[tonic::async_trait]
    impl Handler for Record {
        async fn handle(
            &self,
            tx: &mut PgConnection,
            event: &crm_proto::events::v1::Event,
        ) -> Result<(), crate::Error> {
            sqlx::query("INSERT INTO handled (event_id, aggregate) VALUES ($1::uuid, $2)")
                .bind(&event.id)
                .bind(&event.aggregate)
                .execute(&mut *tx)
                .await?;
            if self.block && event.aggregate == "block" {
                sqlx::query("INSERT INTO blocked (event_id) VALUES ($1::uuid)")
                    .bind(&event.id)
                    .execute(&self.pool)
                    .await?;
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    /// Migrates `schema` (kit tables only) and adds `handled` and `blocked`.
    pub async fn schema(settings: &Settings, schema: &str) -> PgPool {
        super::kit_schema(
            settings,
            schema,
            "CREATE TABLE handled (n bigint GENERATED ALWAYS AS IDENTITY, event_id uuid NOT NULL, aggregate text NOT NULL); \
             CREATE TABLE blocked (event_id uuid NOT NULL);",
        )
        .await
    }

    /// Publishes `event` into `pool`'s outbox as its service would, committed at once; returns
    /// its id. (How a test stands in for another service.)
    pub async fn announce(pool: &PgPool, event: NewEvent<'_>) -> String {
        let mut tx = crate::db::begin(pool).await.expect("begin");
        let call = Call::system("tester", "test/Publish");
        let id = publish(&mut tx, &call, time::OffsetDateTime::now_utc(), event)
            .await
            .expect("publish");
        tx.commit().await.expect("commit");
        id.to_string()
    }

    /// Publishes one test event of `aggregate` on topic `topic`, committed or rolled back;
    /// returns its id.
    pub async fn publish_one(pool: &PgPool, topic: &str, aggregate: &str, commit: bool) -> String {
        let mut tx = crate::db::begin(pool).await.expect("begin");
        let payload = Payload::of(&crm_proto::common::v1::Date {
            year: 2026,
            month: 1,
            day: 2,
        });
        let event = NewEvent {
            topic,
            event_type: "test.happened",
            aggregate,
            payload,
            urgent: false,
        };
        let call = Call::system("tester", "test/Publish");
        let id = publish(&mut tx, &call, time::OffsetDateTime::now_utc(), event)
            .await
            .expect("publish");
        if commit {
            tx.commit().await.expect("commit");
        } else {
            tx.rollback().await.expect("rollback");
        }
        id.to_string()
    }
}

/// Helpers for tests of the timers: a handler that records each firing in `fired` and can hold
/// a firing open forever, so a test can kill a worker in the middle of it.
pub mod timers {
    use sqlx::{PgConnection, PgPool};

    use crate::timers::{Timer, TimerHandler};

    /// Records each firing in `fired` (in the firing transaction). With `block`, a timer of
    /// kind `block` is held open forever after marking `blocked` (on its own connection).
    pub struct Record {
        /// The pool for the `blocked` mark.
        pub pool: PgPool,
        /// Whether to hold `block` timers open.
        pub block: bool,
    }

    #[tonic::async_trait]
    impl TimerHandler for Record {
        async fn fire(&self, tx: &mut PgConnection, timer: &Timer) -> Result<(), crate::Error> {
            sqlx::query(
                "INSERT INTO fired (timer_id, due_time, fire_time) VALUES ($1, $2, clock_timestamp())",
            )
            .bind(timer.id)
            .bind(timer.due_time)
            .execute(&mut *tx)
            .await?;
            if self.block && timer.kind == "block" {
                sqlx::query("INSERT INTO blocked (timer_id) VALUES ($1)")
                    .bind(timer.id)
                    .execute(&self.pool)
                    .await?;
                std::future::pending::<()>().await;
            }
            Ok(())
        }
    }

    /// Adds the `fired` and `blocked` tables to a migrated schema.
    pub async fn tables(pool: &PgPool) {
        sqlx::raw_sql(
            "CREATE TABLE fired (timer_id uuid NOT NULL, due_time timestamptz NOT NULL, fire_time timestamptz NOT NULL); \
             CREATE TABLE blocked (timer_id uuid NOT NULL);",
        )
        .execute(pool)
        .await
        .expect("timer test tables");
    }
}

/// A TCP proxy in front of a server (Redis, Postgres) that a test can stall: while frozen,
/// connections stay open and nothing is passed on either way, as when the server hangs or the
/// network drops packets. Faults for real clients, not simulated errors.
pub mod proxy {
    use std::net::SocketAddr;

    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::{TcpListener, TcpStream},
        sync::watch,
    };
    use tokio_util::sync::CancellationToken;

    /// A running proxy; it stops when dropped.
    pub struct Proxy {
        addr: SocketAddr,
        frozen: watch::Sender<bool>,
        stop: CancellationToken,
    }

    impl Drop for Proxy {
        fn drop(&mut self) {
            self.stop.cancel();
        }
    }

    impl Proxy {
        /// Listens on a free loopback port and passes every connection on to `target`
        /// (`host:port`).
        pub async fn start(target: &str) -> Self {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy bind");
            let addr = listener.local_addr().expect("proxy address");
            let (frozen, _) = watch::channel(false);
            let stop = CancellationToken::new();
            let target = target.to_string();
            let (frozen_tx, stopping) = (frozen.clone(), stop.clone());
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        () = stopping.cancelled() => return,
                        a = listener.accept() => a,
                    };
                    let Ok((client, _)) = accepted else { continue };
                    let Ok(server) = TcpStream::connect(&target).await else {
                        continue;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    for (from, to) in [
                        (
                            Box::new(cr) as Box<dyn tokio::io::AsyncRead + Send + Unpin>,
                            Box::new(sw) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
                        ),
                        (Box::new(sr), Box::new(cw)),
                    ] {
                        tokio::spawn(pass(from, to, frozen_tx.subscribe(), stopping.clone()));
                    }
                }
            });
            Self { addr, frozen, stop }
        }

        /// `host:port` of the proxy.
        pub fn addr(&self) -> SocketAddr {
            self.addr
        }

        /// Stops passing data on (connections stay open).
        pub fn freeze(&self) {
            self.frozen.send_replace(true);
        }

        /// Passes data on again, what was held first.
        pub fn thaw(&self) {
            self.frozen.send_replace(false);
        }
    }

    async fn pass(
        mut from: Box<dyn tokio::io::AsyncRead + Send + Unpin>,
        mut to: Box<dyn tokio::io::AsyncWrite + Send + Unpin>,
        mut frozen: watch::Receiver<bool>,
        stop: CancellationToken,
    ) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = tokio::select! {
                () = stop.cancelled() => return,
                r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            };
            // held while frozen
            if frozen.wait_for(|f| !*f).await.is_err() {
                return;
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}
