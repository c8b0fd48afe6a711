//! The customers service (C-1, C-4, C-5, C-6, C-10): customer records with contacts, maturity
//! stages with their history, tech-support partners with approval of changes, the
//! communication log with overdue reminders, and search.
//!
//! Where things are: `api` translates gRPC (`struct Api`); `service` holds the state and what
//! every capability shares (events, scope, locking a visible customer), `rules` the configured
//! policy and the shared checks, `store` the customer row. Each capability is a folder with its
//! use cases (`mod.rs`), its pure rules (`rules.rs`) and its SQL (`store.rs`): `records/` the
//! customer record and search (C-1, C-10), `stages/` the maturity stages (C-4), `tiers/` the
//! tier and its override (C-7), `import/` the import (C-2), `assignment/` the assignment to
//! sales reps (C-3), `partners/` the tech-support partners (C-5), `communications/` the
//! communication log (C-6), `visits/` the visits after signing and the service policy (C-8,
//! C-9), `care/` the scheduled care and reminders (N-5), `signings/` the pipeline's contracts
//! applied to their customers (P-4); `inbound` handles others' events.

pub mod api;
pub mod assignment;
pub mod care;
pub mod communications;
pub mod import;
pub mod inbound;
pub mod partners;
pub mod records;
pub mod rules;
pub mod service;
pub mod signings;
pub mod stages;
pub mod store;
pub mod tiers;
pub mod visits;

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, paging::Pager, runtime::Runtime,
};
use crm_proto::customers::v1::customer_service_server::CustomerServiceServer;

pub use service::Customers;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "customers";

crm_kit::schema!("../../migrations/customers");

/// The customers server, bound and ready to run.
pub struct Application {
    runtime: Runtime,
    customers: Customers,
}

impl Application {
    /// Connects to the database and binds `[services.customers] listen` (port 0 picks one). It
    /// runs its relay, the consumer of the gateway's users (the sales reps, C-3) and the
    /// tickets' usual engineers (C-8), and the scheduled care and reminders (N-5).
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let care = care::CareSettings::from_settings(settings)?;
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let customers = Customers::new(
            pool.clone(),
            clock.clone(),
            Pager::new(&settings.paging),
            crate::rules::Policy::from_settings(settings)?,
        );
        let runtime = Runtime::bind(NAME, pool, settings, clock, security)
            .await?
            .relay()
            .consume(
                inbound::TOPICS,
                inbound::Inbound {
                    customers: customers.clone(),
                },
            )
            .jobs(care.jobs(customers.policy().services.clone()));
        Ok(Self { runtime, customers })
    }

    /// The service state, for tests and tools.
    pub fn customers(&self) -> &Customers {
        &self.customers
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight calls.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        crm_kit::serve!(
            self.runtime,
            CustomerServiceServer::new(api::Api(self.customers)),
            shutdown
        )
    }
}

crm_kit::entry!(Application, migrate);
