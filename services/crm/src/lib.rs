//! The one binary's library: start any set of services in one process, migrate them, load
//! demo data. `main.rs` is only the command line.

pub mod admin;
pub mod demo;

use std::{collections::BTreeMap, net::SocketAddr};

use anyhow::Context;
use crm_kit::{CancellationToken, Clock, Settings, auth::Security, runtime::Entry};
use tokio::task::JoinSet;

/// The registry: every service this build contains, in start order — the gateway last, so it
/// forwards to the addresses the others actually bound. A new service is one entry here (for
/// `crm serve`, `crm migrate` and the chart check in `tests/platform.rs`).
pub const REGISTRY: &[Entry] = &[
    crm_customers::ENTRY,
    crm_notifications::ENTRY,
    crm_tickets::ENTRY,
    crm_repairs::ENTRY,
    crm_complaints::ENTRY,
    crm_pipeline::ENTRY,
    crm_gateway::ENTRY,
];

/// The names of the services of [`REGISTRY`], in start order.
pub const SERVICES: &[&str] = &{
    let mut names = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        names[i] = REGISTRY[i].name;
        i += 1;
    }
    names
};

fn entry(name: &str) -> anyhow::Result<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name).with_context(|| {
        format!(
            "unknown service {name:?}; this build has: {}",
            SERVICES.join(", ")
        )
    })
}

/// Expands `all` and checks the names.
pub fn resolve(names: &[String]) -> anyhow::Result<Vec<&'static str>> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(SERVICES.to_vec());
    }
    names.iter().map(|n| Ok(entry(n)?.name)).collect()
}

/// Applies the migrations of `services`.
pub async fn migrate(settings: &Settings, services: &[&str]) -> anyhow::Result<()> {
    for service in services {
        (entry(service)?.migrate)(settings).await?;
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
        let security = Security::start(&settings.auth, &settings.redis, shutdown.clone())?;
        let mut addrs = BTreeMap::new();
        let mut tasks = JoinSet::new();
        // services started here are reached at the addresses they bound (port 0 in tests): each
        // is built with the addresses of those started before it (the gateway, last, forwards
        // to them)
        let mut settings = settings.clone();
        for service in services {
            let entry = entry(service)?;
            for (name, addr) in &addrs {
                if let Some(endpoint) = settings.services.get_mut(*name) {
                    endpoint.url = format!("http://{addr}");
                }
            }
            let app = (entry.build)(settings.clone(), clock.clone(), security.clone()).await?;
            addrs.insert(entry.name, app.local_addr());
            tasks.spawn(app.run(shutdown.clone()));
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
