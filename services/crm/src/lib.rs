//! The one binary's library: start any set of services in one process, migrate them, load
//! demo data. `main.rs` is only the command line.

pub mod admin;
pub mod demo;

use std::{collections::BTreeMap, net::SocketAddr};

use anyhow::Context;
use crm_kit::{CancellationToken, Clock, Settings, auth::Security};
use tokio::task::JoinSet;

/// Every service this build contains, in start order: the gateway last, so it forwards to the
/// addresses the others actually bound.
pub const SERVICES: &[&str] = &[
    crm_customers::NAME,
    crm_notifications::NAME,
    crm_tickets::NAME,
    crm_gateway::NAME,
];

/// Expands `all` and checks the names.
pub fn resolve(names: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(SERVICES.to_vec());
    }
    names
        .iter()
        .map(|n| {
            SERVICES.iter().copied().find(|s| s == n).with_context(|| {
                format!(
                    "unknown service {n:?}; this build has: {}",
                    SERVICES.join(", ")
                )
            })
        })
        .collect()
}

/// Applies the migrations of `services`.
pub async fn migrate(settings: &Settings, services: &[&str]) -> anyhow::Result<()> {
    for service in services {
        match *service {
            crm_customers::NAME => crm_customers::migrate(settings).await?,
            crm_notifications::NAME => crm_notifications::migrate(settings).await?,
            crm_tickets::NAME => crm_tickets::migrate(settings).await?,
            crm_gateway::NAME => crm_gateway::migrate(settings).await?,
            other => anyhow::bail!("no migrations for {other}"),
        }
    }
    Ok(())
}

/// Services running in this process.
pub struct Platform {
    /// Where each one listens.
    pub addrs: BTreeMap<&'static str, SocketAddr>,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Platform {
    /// Binds and starts `services`, each on its own port; they stop when `shutdown` is cancelled.
    pub async fn start(
        settings: &Settings,
        services: &[&'static str],
        clock: Clock,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Self> {
        let security = Security::start(settings, shutdown.clone())?;
        let mut addrs = BTreeMap::new();
        let mut tasks = JoinSet::new();
        // services started here are reached at the addresses they bound (port 0 in tests)
        let mut settings = settings.clone();
        for service in services {
            match *service {
                crm_customers::NAME => {
                    let app = crm_customers::Application::build(
                        &settings,
                        clock.clone(),
                        security.clone(),
                    )
                    .await?;
                    addrs.insert(crm_customers::NAME, app.local_addr());
                    tasks.spawn(app.run_until_stopped(shutdown.clone()));
                }
                crm_notifications::NAME => {
                    let app = crm_notifications::Application::build(
                        &settings,
                        clock.clone(),
                        security.clone(),
                    )
                    .await?;
                    addrs.insert(crm_notifications::NAME, app.local_addr());
                    tasks.spawn(app.run_until_stopped(shutdown.clone()));
                }
                crm_tickets::NAME => {
                    let app =
                        crm_tickets::Application::build(&settings, clock.clone(), security.clone())
                            .await?;
                    addrs.insert(crm_tickets::NAME, app.local_addr());
                    tasks.spawn(app.run_until_stopped(shutdown.clone()));
                }
                crm_gateway::NAME => {
                    for (name, addr) in &addrs {
                        if let Some(endpoint) = settings.services.get_mut(*name) {
                            endpoint.url = format!("http://{addr}");
                        }
                    }
                    let app =
                        crm_gateway::Application::build(&settings, clock.clone(), security.clone())
                            .await?;
                    addrs.insert(crm_gateway::NAME, app.local_addr());
                    tasks.spawn(app.run_until_stopped(shutdown.clone()));
                }
                other => anyhow::bail!("unknown service {other}"),
            }
        }
        Ok(Self { addrs, tasks })
    }

    /// The address of `service`.
    pub fn addr(&self, service: &str) -> SocketAddr {
        self.addrs[service]
    }

    /// Waits for every service to stop; the first failure stops the wait with its error.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        while let Some(result) = self.tasks.join_next().await {
            result.context("service task panicked")??;
        }
        Ok(())
    }
}
