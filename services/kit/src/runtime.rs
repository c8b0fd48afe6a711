//! A service's runtime, assembled in one place (issue 15): a service declares what it has —
//! its outbox relay, the topics it consumes, its SLA timers, its scheduled jobs, anything else
//! that runs beside it — and the kit starts them and serves its gRPC routes with health,
//! reflection, the audit trail, security and the serving options. The one binary keeps a
//! registry of [`Entry`]s, so a new service is one entry for `crm serve`, `crm migrate` and the
//! chart check.

use std::{future::Future, net::SocketAddr, pin::Pin, sync::Arc};

use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;

use crate::{
    Clock, Settings,
    audit::AuditReader,
    auth::Security,
    events::{self, Handler},
    paging::Pager,
    ratelimit::Limits,
    schedule::{self, Job},
    server,
    timers::{self, TimerHandler, Timers},
};

/// A future a registry entry returns.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A service built and bound, as the registry returns it.
pub type Built = BoxFuture<'static, anyhow::Result<Box<dyn Running>>>;

type Task = Box<dyn FnOnce(&Settings, CancellationToken) + Send>;

/// What a service runs, bound to its port and ready to serve.
pub struct Runtime {
    name: &'static str,
    pool: PgPool,
    clock: Clock,
    settings: Settings,
    security: Security,
    listener: TcpListener,
    tasks: Vec<Task>,
    limits: Option<Limits>,
    forwarded: &'static [&'static str],
    http: Option<crate::connect::HttpFront>,
}

impl Runtime {
    /// The runtime of service `name` (its `[services.<name>] listen` bound now), on `pool`.
    pub async fn bind(
        name: &'static str,
        pool: PgPool,
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let listener = server::bind(&settings.endpoint(name)?.listen).await?;
        Ok(Self {
            name,
            pool,
            clock,
            settings: settings.clone(),
            security,
            listener,
            tasks: Vec::new(),
            limits: None,
            forwarded: &[],
            http: None,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The settings it was built with.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The largest request message the server decodes (`server.max_message_bytes`), for the
    /// generated server's `max_decoding_message_size`.
    pub fn max_message_bytes(&self) -> usize {
        self.settings.server.max_message_bytes
    }

    /// Adds the relay that moves the service's outbox to its event stream.
    #[must_use]
    pub fn relay(mut self) -> Self {
        let (pool, name) = (self.pool.clone(), self.name);
        self.tasks.push(Box::new(move |s, shutdown| {
            events::spawn_relay(pool, name, s.redis.clone(), s.events.clone(), shutdown);
        }));
        self
    }

    /// Adds a consumer of `topics` (handled in this order within a batch), in the service's
    /// consumer group.
    #[must_use]
    pub fn consume(mut self, topics: &[&str], handler: impl Handler + 'static) -> Self {
        let consumer = events::Consumer {
            group: self.name.to_string(),
            topics: topics.iter().map(ToString::to_string).collect(),
            handler: Arc::new(handler),
        };
        let pool = self.pool.clone();
        self.tasks.push(Box::new(move |s, shutdown| {
            events::spawn_consumer(pool, consumer, s.redis.clone(), s.events.clone(), shutdown);
        }));
        self
    }

    /// Adds the worker that fires the service's timers.
    #[must_use]
    pub fn timers(mut self, timers: Timers, handler: impl TimerHandler + 'static) -> Self {
        let (pool, clock) = (self.pool.clone(), self.clock.clone());
        self.tasks.push(Box::new(move |s, shutdown| {
            timers::spawn_worker(
                pool,
                timers,
                clock,
                Arc::new(handler),
                s.timers.clone(),
                shutdown,
            );
        }));
        self
    }

    /// Adds scheduled jobs, each run once per period across replicas.
    #[must_use]
    pub fn jobs(mut self, jobs: Vec<Job>) -> Self {
        let (pool, clock) = (self.pool.clone(), self.clock.clone());
        self.tasks.push(Box::new(move |s, shutdown| {
            schedule::spawn(pool, clock, jobs, s.schedule.clone(), shutdown);
        }));
        self
    }

    /// Adds a task of the service's own (started with the server, stopped by `shutdown`).
    #[must_use]
    pub fn task(mut self, start: impl FnOnce(CancellationToken) + Send + 'static) -> Self {
        self.tasks
            .push(Box::new(move |_: &Settings, shutdown| start(shutdown)));
        self
    }

    /// Rate-limits every call by caller (`[rate_limit]`): the gateway only, so a call is
    /// counted once.
    pub fn rate_limited(mut self) -> anyhow::Result<Self> {
        self.limits = Limits::new(&self.settings.rate_limit)?;
        Ok(self)
    }

    /// Answers JSON over HTTP and gRPC-Web beside gRPC, with CORS (the gateway's).
    #[must_use]
    pub fn http(mut self, front: crate::connect::HttpFront) -> Self {
        self.http = Some(front);
        self
    }

    /// Services forwarded from this server, advertised by its reflection (the gateway's).
    #[must_use]
    pub fn forwarding(mut self, services: &'static [&'static str]) -> Self {
        self.forwarded = services;
        self
    }

    /// Starts the declared tasks and serves `routes` (whose gRPC services are `names`) until
    /// `shutdown`.
    pub async fn serve(
        self,
        routes: Routes,
        names: &[&'static str],
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        for task in self.tasks {
            task(&self.settings, shutdown.clone());
        }
        let audit = AuditReader::new(self.pool, Pager::new(&self.settings.paging), self.name);
        let mut advertised = names.to_vec();
        advertised.extend_from_slice(self.forwarded);
        let options = server::Options {
            names,
            advertised: &advertised,
            server: &self.settings.server,
            security: &self.security,
            limits: self.limits,
            http: self.http,
            audit,
        };
        server::serve_with(self.listener, routes, options, shutdown).await
    }
}

/// A service built and bound, ready to run (what [`Entry::build`] returns).
pub trait Running: Send {
    /// The address it listens on.
    fn local_addr(&self) -> SocketAddr;
    /// Serves until `shutdown`.
    fn run(self: Box<Self>, shutdown: CancellationToken) -> BoxFuture<'static, anyhow::Result<()>>;
}

/// One service of the binary's registry.
#[derive(Clone, Copy)]
pub struct Entry {
    /// Its name: its schema, its `[services.*]` key, its `crm serve` argument, its chart key.
    pub name: &'static str,
    /// Applies its migrations.
    pub migrate: for<'a> fn(&'a Settings) -> BoxFuture<'a, anyhow::Result<()>>,
    /// Builds and binds it.
    pub build: fn(Settings, Clock, Security) -> Built,
}

/// The [`Entry`] of a service crate: `crm_kit::entry!(Application, migrate)` where
/// `Application::build(&Settings, Clock, Security)` and `Application::run_until_stopped` exist,
/// `Application` keeps its [`Runtime`] in a field `runtime` (the macro gives it `local_addr`)
/// and `migrate(&Settings)` applies its migrations; `NAME` is the crate's name constant.
#[macro_export]
macro_rules! entry {
    ($app:ty, $migrate:path) => {
        impl $app {
            /// The address it listens on.
            pub fn local_addr(&self) -> ::std::net::SocketAddr {
                self.runtime.local_addr()
            }
        }

        impl $crate::runtime::Running for $app {
            fn local_addr(&self) -> ::std::net::SocketAddr {
                <$app>::local_addr(self)
            }
            fn run(
                self: Box<Self>,
                shutdown: $crate::CancellationToken,
            ) -> $crate::runtime::BoxFuture<'static, ::anyhow::Result<()>> {
                Box::pin((*self).run_until_stopped(shutdown))
            }
        }

        /// This service in the binary's registry.
        pub const ENTRY: $crate::runtime::Entry = $crate::runtime::Entry {
            name: NAME,
            migrate: |settings| Box::pin($migrate(settings)),
            build: |settings, clock, security| {
                Box::pin(async move {
                    let app = <$app>::build(&settings, clock, security).await?;
                    Ok(Box::new(app) as Box<dyn $crate::runtime::Running>)
                })
            },
        };
    };
}

/// A service crate's schema: `crm_kit::schema!("../../migrations/<name>")` embeds its
/// migrations as `MIGRATOR` and defines `migrate(&Settings)`, which applies them in the schema
/// `NAME`. A service that does more when migrating (notifications installs its default
/// templates) embeds `MIGRATOR` itself and writes its own `migrate`.
#[macro_export]
macro_rules! schema {
    ($path:literal) => {
        /// The service's migrations, embedded.
        pub static MIGRATOR: ::sqlx::migrate::Migrator = ::sqlx::migrate!($path);

        /// Applies the service's migrations in its schema.
        pub async fn migrate(settings: &$crate::Settings) -> ::anyhow::Result<()> {
            $crate::db::migrate_schema(&settings.database, NAME, &MIGRATOR).await
        }
    };
}

/// Serves one generated gRPC server on a [`Runtime`] until `shutdown`:
/// `crm_kit::serve!(self.runtime, CustomerServiceServer::new(api), shutdown)` sets the largest
/// message, names the service for health and reflection, and serves.
#[macro_export]
macro_rules! serve {
    ($runtime:expr, $server:expr, $shutdown:expr) => {{
        let runtime: $crate::runtime::Runtime = $runtime;
        let svc = $server.max_decoding_message_size(runtime.max_message_bytes());
        let names = [$crate::server::service_name(&svc)];
        runtime
            .serve(::tonic::service::Routes::new(svc), &names, $shutdown)
            .await
    }};
}
