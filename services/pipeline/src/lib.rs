//! The pipeline service (P-1 … P-3, P-7): leads with their source, qualified and converted to
//! opportunities on customers; opportunities with exact money, stages with default
//! probabilities (won 100 %, lost 0 % with a reason), every change of stage, amount, close date,
//! probability and owner in the history, and a follow-up log; quotes priced exactly whose
//! discount above the limit needs the sales manager's approval, bound to the very lines it
//! saw; a rep's open work reassigned in one call.
//!
//! Where things are: `api` translates gRPC (`struct Api`); `service` holds the state and what
//! the capabilities share (the scope rule, the events); `rules` the `[pipeline]` settings. The
//! capabilities, each a folder with its use cases (`mod.rs`), pure rules (`rules.rs`) and SQL
//! (`store.rs`): `leads/` (P-1), `opportunities/` (P-2, P-7: stages, history, follow-ups),
//! `quotes/` (P-3: pricing, the approval and its digest), `contracts/` (P-4: numbered signing,
//! amendments as versions), `payments/` (P-5: the balance, voids), `reports/` (P-6: funnel,
//! conversion, forecast) and `reassignment/` (a rep's work).

pub mod api;
pub mod contracts;
pub mod leads;
pub mod opportunities;
pub mod payments;
pub mod quotes;
pub mod reassignment;
pub mod reports;
pub mod rules;
pub mod service;

use std::sync::Arc;

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, calendar::Calendar, paging::Pager,
    runtime::Runtime, timers::Timers,
};
use crm_proto::pipeline::v1::pipeline_service_server::PipelineServiceServer;

pub use service::Pipeline;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "pipeline";

crm_kit::schema!("../../migrations/pipeline");

/// The pipeline server, bound and ready to run.
pub struct Application {
    runtime: Runtime,
    pipeline: Pipeline,
}

impl Application {
    /// Connects and binds `[services.pipeline] listen`; bad `[pipeline]` or `[calendar]`
    /// settings stop the start here. It runs its relay (the pipeline's events) and the worker of
    /// the instalments' due dates and the month-end forecast snapshot.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let own = Arc::new(rules::PipelineSettings::from_settings(settings)?);
        let calendar = Arc::new(Calendar::new(&settings.calendar)?);
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let timers = Timers::connect(&settings.redis, NAME).await?;
        let pipeline = Pipeline::new(
            pool.clone(),
            clock.clone(),
            Pager::new(&settings.paging),
            own,
            calendar,
            timers.clone(),
        );
        let pipeline = match settings.services.get("customers") {
            Some(customers) => pipeline.with_customers(&customers.url)?,
            None => pipeline,
        };
        let runtime = Runtime::bind(NAME, pool, settings, clock, security)
            .await?
            .relay()
            .timers(
                timers,
                payments::InstalmentTimers {
                    pipeline: pipeline.clone(),
                },
            )
            .jobs(pipeline.jobs());
        Ok(Self { runtime, pipeline })
    }

    /// The service state, for tests and tools.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// Serves until `shutdown`.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        crm_kit::serve!(
            self.runtime,
            PipelineServiceServer::new(api::Api(self.pipeline)),
            shutdown
        )
    }
}

crm_kit::entry!(Application, migrate);
