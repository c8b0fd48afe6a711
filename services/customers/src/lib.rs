//! The customers service (C-1, C-4, C-5, C-6, C-10): customer records with contacts, maturity
//! stages with their history, tech-support partners with approval of changes, the
//! communication log with overdue reminders, and search.
//!
//! `api` translates gRPC, `service` holds the use cases and transactions, `domain` the rules,
//! `store` the SQL.

pub mod api;
pub mod assignment;
pub mod care;
pub mod domain;
pub mod import;
pub mod imports;
pub mod inbound;
pub mod service;
pub mod store;
pub mod visits;

use std::net::SocketAddr;

use crm_kit::{CancellationToken, Clock, Settings, auth::Security, paging::Pager, server};
use crm_proto::customers::v1::customer_service_server::CustomerServiceServer;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tonic::service::Routes;

pub use service::Customers;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "customers";

/// The service's migrations, embedded.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/customers");

/// Applies the service's migrations in its schema.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    crm_kit::db::migrate_schema(&settings.database, NAME, &MIGRATOR).await
}

/// The customers server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    customers: Customers,
    settings: Settings,
    care: care::CareSettings,
    clock: Clock,
    security: Security,
}

impl Application {
    /// Connects to the database and binds `[services.customers] listen` (port 0 picks one).
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let care = care::CareSettings::from_settings(settings)?;
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let customers = Customers::new(
            pool,
            clock.clone(),
            Pager::new(&settings.paging),
            domain::Policy::from_settings(settings)?,
        );
        let listener = server::bind(&settings.endpoint(NAME)?.listen).await?;
        Ok(Self {
            listener,
            customers,
            settings: settings.clone(),
            care,
            clock,
            security,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("bound listener has an address")
    }

    /// The service state, for tests and tools.
    pub fn customers(&self) -> &Customers {
        &self.customers
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight calls.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // the relay that moves this service's outbox to its event stream
        crm_kit::events::spawn_relay(
            self.customers.pool().clone(),
            NAME,
            self.settings.redis.clone(),
            self.settings.events.clone(),
            shutdown.clone(),
        );
        // the sales reps, from the gateway's user events (assignment, C-3), and the usual
        // engineers from the tickets service's (C-8)
        crm_kit::events::spawn_consumer(
            self.customers.pool().clone(),
            crm_kit::events::Consumer {
                group: NAME.to_string(),
                topics: inbound::TOPICS.iter().map(ToString::to_string).collect(),
                handler: std::sync::Arc::new(inbound::Inbound {
                    customers: self.customers.clone(),
                }),
            },
            self.settings.redis.clone(),
            self.settings.events.clone(),
            shutdown.clone(),
        );
        // scheduled care and overdue-contact reminders (N-5), once per period across replicas
        crm_kit::schedule::spawn(
            self.customers.pool().clone(),
            self.clock.clone(),
            self.care.jobs(self.customers.policy().services.clone()),
            self.settings.schedule.clone(),
            shutdown.clone(),
        );
        let audit = crm_kit::audit::AuditReader::new(
            self.customers.pool().clone(),
            Pager::new(&self.settings.paging),
            NAME,
        );
        let svc = CustomerServiceServer::new(self.customers)
            .max_decoding_message_size(self.settings.server.max_message_bytes);
        let name = server::service_name(&svc);
        let options = server::Options {
            names: &[name],
            advertised: &[name],
            server: &self.settings.server,
            security: &self.security,
            limits: None,
            audit,
        };
        server::serve_with(self.listener, Routes::new(svc), options, shutdown).await
    }
}
