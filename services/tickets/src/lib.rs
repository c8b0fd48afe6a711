//! The tickets service (T-1 … T-9): intake with the completeness rule, the lifecycle as named
//! transitions with history, SLA deadlines from the customer's tier in business time (response,
//! hand-off, resolution; paused while waiting for the customer) fired once by the kit's timers,
//! warnings and breaches, dispatch by usual engineer, region and load with spare parts, service
//! records, escalations of hard problems, and each role's work queue by deadline.
//!
//! Where things are: `api` translates gRPC (`struct Api`); `service` holds the state and what
//! the capabilities share; `domain` the ticket rules and `store` the ticket aggregate's SQL
//! (every capability that changes a ticket reads and writes the same row). The capabilities:
//! `intake/` (T-1, T-2: create, get, queue, update), `lifecycle/` (T-3, T-6, T-7: transitions,
//! dispatch, records, history), `escalations/` (T-8: use cases, `rules`, its own `store`),
//! `usual/` (the customers' usual engineers), `sla/` (the SLA and record timers), `tiers/`
//! (the customers' tiers and the engineers from other services' events), `routing/` (tickets
//! routed to a repair centre by the repairs service's orders, R-1) and `complaints/` (service
//! complaints opening or reopening tickets, Q-2).

pub mod api;
pub mod complaints;
pub mod escalations;
pub mod intake;
pub mod lifecycle;
pub mod routing;
pub mod rules;
pub mod service;
pub mod sla;
pub mod store;
pub mod tiers;
pub mod usual;

use std::sync::Arc;

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, calendar::Calendar, paging::Pager,
    runtime::Runtime, timers::Timers,
};
use crm_proto::tickets::v1::ticket_service_server::TicketServiceServer;

pub use service::Tickets;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "tickets";

crm_kit::schema!("../../migrations/tickets");

/// The tickets server, bound and ready to run.
pub struct Application {
    runtime: Runtime,
    tickets: Tickets,
}

impl Application {
    /// Connects and binds `[services.tickets] listen`; bad `[tickets]` or `[calendar]`
    /// settings stop the start here. It runs its relay, the consumer of the gateway's users and
    /// the customers' tiers, the consumer of the repairs service's orders, and the SLA timer
    /// worker.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let own = Arc::new(crate::rules::TicketSettings::from_settings(settings)?);
        let calendar = Arc::new(Calendar::new(&settings.calendar)?);
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let timers = Timers::connect(&settings.redis, NAME).await?;
        let tickets = Tickets::new(
            pool.clone(),
            clock.clone(),
            Pager::new(&settings.paging),
            own,
            calendar,
            timers.clone(),
        );
        let runtime = Runtime::bind(NAME, pool, settings, clock, security)
            .await?
            .relay()
            .consume(
                service::TOPICS_CONSUMED,
                tiers::Inbound {
                    tickets: tickets.clone(),
                },
            )
            .consume(
                complaints::TOPICS_CONSUMED,
                complaints::FromComplaints {
                    tickets: tickets.clone(),
                },
            )
            .consume(
                routing::TOPICS_CONSUMED,
                routing::Routing {
                    tickets: tickets.clone(),
                },
            )
            .timers(
                timers,
                sla::SlaTimers {
                    tickets: tickets.clone(),
                },
            );
        Ok(Self { runtime, tickets })
    }

    /// The service state, for tests and tools.
    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// Serves until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        crm_kit::serve!(
            self.runtime,
            TicketServiceServer::new(api::Api(self.tickets)),
            shutdown
        )
    }
}

crm_kit::entry!(Application, migrate);
