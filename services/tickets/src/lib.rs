//! The tickets service (T-1 … T-9): intake with the completeness rule, the lifecycle as named
//! transitions with history, SLA deadlines from the customer's tier in business time (response,
//! hand-off, resolution; paused while waiting for the customer) fired once by the kit's timers,
//! warnings and breaches, dispatch by usual engineer, region and load with spare parts, service
//! records, escalations of hard problems, and each role's work queue by deadline.
//!
//! `api` translates gRPC, `service` holds the ticket use cases and the timer and event
//! handlers, `escalations` the escalation use cases, `usual` the customers' usual engineers,
//! `domain` the rules, `store` the SQL.

pub mod api;
pub mod domain;
pub mod escalations;
pub mod service;
pub mod store;
pub mod usual;

use std::{net::SocketAddr, sync::Arc};

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, calendar::Calendar, paging::Pager, server,
    timers::Timers,
};
use crm_proto::tickets::v1::ticket_service_server::TicketServiceServer;
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tonic::service::Routes;

pub use service::Tickets;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "tickets";

/// The service's migrations, embedded.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/tickets");

/// Applies the service's migrations in its schema.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    crm_kit::db::migrate_schema(&settings.database, NAME, &MIGRATOR).await
}

/// The tickets server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    tickets: Tickets,
    clock: Clock,
    settings: Settings,
    security: Security,
}

impl Application {
    /// Connects and binds `[services.tickets] listen`; bad `[tickets]` or `[calendar]`
    /// settings stop the start here.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let own = Arc::new(domain::TicketSettings::from_settings(settings)?);
        let calendar = Arc::new(Calendar::new(&settings.calendar)?);
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let timers = Timers::connect(&settings.redis, NAME).await?;
        let tickets = Tickets::new(
            pool,
            clock.clone(),
            Pager::new(&settings.paging),
            own,
            calendar,
            timers,
        );
        let listener = server::bind(&settings.endpoint(NAME)?.listen).await?;
        Ok(Self {
            listener,
            tickets,
            clock,
            settings: settings.clone(),
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
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// Serves until `shutdown`, with its relay, timer worker and customers consumer.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let pool = self.tickets.pool().clone();
        crm_kit::events::spawn_relay(
            pool.clone(),
            NAME,
            self.settings.redis.clone(),
            self.settings.events.clone(),
            shutdown.clone(),
        );
        crm_kit::events::spawn_consumer(
            pool.clone(),
            crm_kit::events::Consumer {
                group: NAME.to_string(),
                topics: vec!["gateway".to_string(), "customers".to_string()],
                handler: Arc::new(service::Inbound {
                    tickets: self.tickets.clone(),
                }),
            },
            self.settings.redis.clone(),
            self.settings.events.clone(),
            shutdown.clone(),
        );
        crm_kit::timers::spawn_worker(
            pool.clone(),
            self.tickets.timers().clone(),
            self.clock.clone(),
            Arc::new(service::SlaTimers {
                tickets: self.tickets.clone(),
            }),
            self.settings.timers.clone(),
            shutdown.clone(),
        );
        let audit = crm_kit::audit::AuditReader::new(pool, Pager::new(&self.settings.paging), NAME);
        let svc = TicketServiceServer::new(self.tickets)
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
