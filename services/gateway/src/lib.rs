//! The gateway (G-1 … G-5): the one entry point for internal apps and partner systems. It
//! answers the auth and admin APIs itself, authenticates and authorises every call with the
//! kit's auth layer, and forwards everything else to the owning service.
//!
//! Where things are: `api` translates gRPC (`struct Api`), `proxy` forwards to the services,
//! `service` holds the state (`Identity`). Each capability is a folder with its use cases
//! (`mod.rs`), rules (`rules.rs`) and SQL (`store.rs`): `sessions/` (G-1: login with its guard
//! and hashing in `login`, API-key exchange, refresh, logout), `users/` (G-2), `api_keys/`
//! (G-1), `policy/` (G-3: the role policy, and the services' audit trails).

pub mod api;
pub mod api_docs;
pub mod api_keys;
pub mod policy;
pub mod proxy;
pub mod service;
pub mod sessions;
pub mod users;

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, paging::Pager, runtime::Runtime, server,
};
use crm_proto::gateway::v1::{
    admin_service_server::AdminServiceServer, auth_service_server::AuthServiceServer,
};
use tonic::service::Routes;

pub use service::Identity;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "gateway";

crm_kit::schema!("../../migrations/gateway");

/// The services whose calls the gateway forwards, advertised by its reflection.
pub const FORWARDED: &[&str] = &[
    "crm.customers.v1.CustomerService",
    "crm.notifications.v1.NotificationService",
    "crm.tickets.v1.TicketService",
    "crm.repairs.v1.RepairService",
    "crm.complaints.v1.ComplaintService",
    "crm.pipeline.v1.PipelineService",
];

/// The gateway server, bound and ready to run.
pub struct Application {
    runtime: Runtime,
    identity: Identity,
    proxy: proxy::Proxy,
}

impl Application {
    /// Connects to the database and Redis and binds `[services.gateway] listen`. Downstream
    /// services are reached at their `[services.*] url`. It runs its relay (user events) and
    /// rate-limits every call.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let redis = crm_kit::redis::connect(&settings.redis).await?;
        let identity = Identity::new(
            pool.clone(),
            clock.clone(),
            Pager::new(&settings.paging),
            settings,
            security.clone(),
            redis,
        )?;
        identity.publish_policy().await?;
        let runtime = Runtime::bind(NAME, pool, settings, clock, security)
            .await?
            .relay()
            .forwarding(FORWARDED)
            .rate_limited()?;
        let http: crm_kit::connect::HttpSettings = settings.section("gateway.http")?;
        let front = crm_kit::connect::Front::new(runtime.max_message_bytes())?.with_document(
            "/openapi.json",
            "application/json",
            api_docs::openapi_for(settings)?.to_string(),
        );
        let runtime = runtime.http(crm_kit::connect::HttpFront::new(&http, front)?);
        Ok(Self {
            runtime,
            identity,
            proxy: proxy::Proxy::new(settings)?,
        })
    }

    /// The identity service, for tools and tests.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let auth = AuthServiceServer::new(api::Api(self.identity.clone()));
        let admin = AdminServiceServer::new(api::Api(self.identity));
        let own = [server::service_name(&auth), server::service_name(&admin)];
        let router = Routes::new(auth)
            .add_service(admin)
            .into_axum_router()
            .fallback_service(self.proxy);
        self.runtime
            .serve(Routes::from(router), &own, shutdown)
            .await
    }
}

crm_kit::entry!(Application, migrate);
