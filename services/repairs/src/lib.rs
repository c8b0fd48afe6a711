//! The repairs service (R-1 … ): the repair centres — headquarters, branch centres,
//! authorised partner repair centres and agents — and their spare parts: the catalogue, stock
//! per centre and part, and part requests that reserve, issue and settle stock. A partner
//! centre sees and changes only the rows of its own partner organisation, on every method.
//! Repair orders take carry-in and mail-in units through their flows.
//!
//! Where things are: `api` translates gRPC (`struct Api`); `service` holds the state and what
//! the capabilities share (the scope rule, the events, the rights). The capabilities, each a
//! folder with its use cases (`mod.rs`), pure rules (`rules.rs`) and SQL (`store.rs`):
//! `centres/`, `catalogue/` (the parts catalogue), `stock/` (R-3: deliveries, levels,
//! the low-stock notice), `part_requests/` (R-3: reserve, issue, settle, cancel) and
//! `orders/` (R-2, R-6: carry-in and mail-in repair orders and their flows), `swaps/` (R-3:
//! swaps with serials and fault labels, returns to the warehouse, serial chains) and
//! `transfers/` (R-3: stock sent between centres), `turnaround/` (R-5: warning and breach
//! timers, the per-centre report), `rmas/` (R-4: deliveries, return/exchange requests with
//! diagnosis, judgement and approval). `rules` holds the
//! `[repairs]` settings (turnaround per centre and order kind).

pub mod api;
pub mod catalogue;
pub mod centres;
pub mod orders;
pub mod part_requests;
pub mod rmas;
pub mod rules;
pub mod service;
pub mod stock;
pub mod swaps;
pub mod transfers;
pub mod turnaround;

use std::sync::Arc;

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, calendar::Calendar, paging::Pager,
    runtime::Runtime, timers::Timers,
};
use crm_proto::repairs::v1::repair_service_server::RepairServiceServer;

pub use service::Repairs;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "repairs";

crm_kit::schema!("../../migrations/repairs");

/// The repairs server, bound and ready to run.
pub struct Application {
    runtime: Runtime,
    repairs: Repairs,
}

impl Application {
    /// Connects and binds `[services.repairs] listen`; bad `[repairs]` or `[calendar]`
    /// settings stop the start here. It runs its relay (the stock and repair events) and the
    /// turnaround timer worker.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let own = Arc::new(rules::RepairSettings::from_settings(settings)?);
        let calendar = Arc::new(Calendar::new(&settings.calendar)?);
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let timers = Timers::connect(&settings.redis, NAME).await?;
        let repairs = Repairs::new(
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
            .timers(
                timers,
                turnaround::TurnaroundTimers {
                    repairs: repairs.clone(),
                },
            );
        Ok(Self { runtime, repairs })
    }

    /// The service state, for tests and tools.
    pub fn repairs(&self) -> &Repairs {
        &self.repairs
    }

    /// Serves until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        crm_kit::serve!(
            self.runtime,
            RepairServiceServer::new(api::Api(self.repairs)),
            shutdown
        )
    }
}

crm_kit::entry!(Application, migrate);
