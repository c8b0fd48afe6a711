//! The complaints service (Q-1 … Q-7): intake with the apology logged and a processing
//! deadline committed to the customer; judged against the service and warranty policy and
//! routed by kind; investigated; a resolution plan written by the responsible department,
//! approved by the CRM lead, accepted by the customer, executed and confirmed; a follow-up
//! visit whose dissatisfied result reopens the complaint as a new linked cycle; separate
//! clocks for the committed deadline, the plan's approval and the resolution; statistics.
//!
//! Where things are: `api` translates gRPC (`struct Api`); `service` holds the state and what
//! the capabilities share (the scope rule, the events); `store` the complaint aggregate's SQL;
//! `rules` the `[complaints]` settings and the departments. The capabilities, each a folder
//! with its use cases (`mod.rs`), pure rules (`rules.rs`) and SQL (`store.rs`): `intake/`
//! take in, read, list, history), `handling/` (Q-2 … Q-5: the flow table, who may take
//! each step, routing, reopening), `deadlines/` (Q-1: the clocks, their timers, pausing,
//! moving the committed deadline), `service_flow/` (Q-2: the ticket a service complaint went
//! to, from the tickets service's event) and `statistics/`.

pub mod api;
pub mod deadlines;
pub mod handling;
pub mod intake;
pub mod rules;
pub mod service;
pub mod service_flow;
pub mod statistics;
pub mod store;

use std::sync::Arc;

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, calendar::Calendar, paging::Pager,
    runtime::Runtime, timers::Timers,
};
use crm_proto::complaints::v1::complaint_service_server::ComplaintServiceServer;

pub use service::Complaints;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "complaints";

crm_kit::schema!("../../migrations/complaints");

/// The complaints server, bound and ready to run.
pub struct Application {
    runtime: Runtime,
    complaints: Complaints,
}

impl Application {
    /// Connects and binds `[services.complaints] listen`; bad `[complaints]` or `[calendar]`
    /// settings stop the start here. It runs its relay (the complaints' events), the consumer of
    /// the tickets service's links and the deadline timer worker.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let own = Arc::new(rules::ComplaintSettings::from_settings(settings)?);
        let calendar = Arc::new(Calendar::new(&settings.calendar)?);
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let timers = Timers::connect(&settings.redis, NAME).await?;
        let complaints = Complaints::new(
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
                service_flow::TOPICS_CONSUMED,
                service_flow::TicketLinks {
                    complaints: complaints.clone(),
                },
            )
            .timers(
                timers,
                deadlines::DeadlineTimers {
                    complaints: complaints.clone(),
                },
            );
        Ok(Self {
            runtime,
            complaints,
        })
    }

    /// The service state, for tests and tools.
    pub fn complaints(&self) -> &Complaints {
        &self.complaints
    }

    /// Serves until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        crm_kit::serve!(
            self.runtime,
            ComplaintServiceServer::new(api::Api(self.complaints)),
            shutdown
        )
    }
}

crm_kit::entry!(Application, migrate);
