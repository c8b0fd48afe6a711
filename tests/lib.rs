//! Shared helpers of the end-to-end tests and the benchmark: boot the platform in one process
//! on ephemeral ports, each run with its own database.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crm_kit::{CancellationToken, Clock, Settings};
use tonic::transport::Channel;

/// The platform running in this process, stopped when dropped.
pub struct Running {
    /// Where each service listens.
    pub addrs: BTreeMap<&'static str, SocketAddr>,
    /// The settings it runs with.
    pub settings: Settings,
    /// Cancel to stop it.
    pub shutdown: CancellationToken,
    /// The running platform; take it to wait for a graceful stop.
    pub platform: Option<crm::Platform>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Running {
    /// A channel to `service`.
    pub async fn channel(&self, service: &str) -> Channel {
        Channel::from_shared(format!("http://{}", self.addrs[service]))
            .expect("uri")
            .connect()
            .await
            .expect("connect")
    }
}

/// Migrates and starts every service of this build with `settings` (ports 0 for tests).
pub async fn start(settings: Settings, clock: Clock) -> anyhow::Result<Running> {
    let services = crm::resolve(&[])?;
    crm::migrate(&settings, &services).await?;
    let shutdown = CancellationToken::new();
    let platform = crm::Platform::start(&settings, &services, clock, shutdown.clone()).await?;
    Ok(Running {
        addrs: platform.addrs.clone(),
        settings,
        shutdown,
        platform: Some(platform),
    })
}
