//! The gateway (G-1 … G-5): the one entry point for internal apps and partner systems. It
//! answers the auth and admin APIs itself, authenticates and authorises every call with the
//! kit's auth layer, and forwards everything else to the owning service.

pub mod api;
pub mod domain;
pub mod login;
pub mod proxy;
pub mod service;
pub mod store;

use std::net::SocketAddr;

use crm_kit::{CancellationToken, Clock, Settings, auth::Security, paging::Pager, server};
use crm_proto::gateway::v1::{
    admin_service_server::AdminServiceServer, auth_service_server::AuthServiceServer,
};
use sqlx::migrate::Migrator;
use tokio::net::TcpListener;
use tonic::service::Routes;

pub use service::Identity;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "gateway";

/// The gateway's migrations, embedded.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/gateway");

/// The services whose calls the gateway forwards, advertised by its reflection.
pub const FORWARDED: &[&str] = &[
    "crm.customers.v1.CustomerService",
    "crm.notifications.v1.NotificationService",
    "crm.tickets.v1.TicketService",
];

/// Applies the gateway's migrations in its schema.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    crm_kit::db::migrate_schema(&settings.database, NAME, &MIGRATOR).await
}

/// The gateway server, bound and ready to run.
pub struct Application {
    listener: TcpListener,
    identity: Identity,
    proxy: proxy::Proxy,
    settings: Settings,
    security: Security,
}

impl Application {
    /// Connects to the database and Redis and binds `[services.gateway] listen`. Downstream
    /// services are reached at their `[services.*] url`.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let redis = crm_kit::redis::connect(&settings.redis).await?;
        let identity = Identity::new(
            pool,
            clock,
            Pager::new(&settings.paging),
            settings,
            security.clone(),
            redis,
        )?;
        identity.publish_policy().await?;
        let listener = server::bind(&settings.endpoint(NAME)?.listen).await?;
        Ok(Self {
            listener,
            identity,
            proxy: proxy::Proxy::new(settings)?,
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

    /// The identity service, for tools and tests.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        // the relay that moves the gateway's outbox (user events) to its stream
        crm_kit::events::spawn_relay(
            self.identity.pool().clone(),
            NAME,
            self.settings.redis.clone(),
            self.settings.events.clone(),
            shutdown.clone(),
        );
        let audit = self.identity.audit_reader();
        let auth = AuthServiceServer::new(self.identity.clone());
        let admin = AdminServiceServer::new(self.identity);
        let own = [server::service_name(&auth), server::service_name(&admin)];
        let router = Routes::new(auth)
            .add_service(admin)
            .into_axum_router()
            .fallback_service(self.proxy);
        let mut advertised = own.to_vec();
        advertised.extend_from_slice(FORWARDED);
        let options = server::Options {
            names: &own,
            advertised: &advertised,
            server: &self.settings.server,
            security: &self.security,
            limits: crm_kit::ratelimit::Limits::new(&self.settings.rate_limit)?,
            audit,
        };
        server::serve_with(self.listener, Routes::from(router), options, shutdown).await
    }
}
