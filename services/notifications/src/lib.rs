//! The notifications service (N-1 … N-6): templates in Chinese and English, triggers from the
//! other services' events by configured rules, delivery by SMS, e-mail, in-app inbox and
//! partner webhook with retries, per-recipient status, opt-out and the urgent deadline.
//!
//! Where things are: `api` translates gRPC (`struct Api`); `service` holds the state and the
//! scope, `rules` the shared rules (channels, languages, recipients, addresses), `kinds` the
//! kinds of message, `store` the shared SQL (delivery states, the user directory),
//! `settings` the configuration. Each capability is a folder with its use cases (`mod.rs`),
//! rules (`rules.rs`) and SQL (`store.rs`): `templates/` (N-1, with the defaults),
//! `sending/` (N-2, `compose` makes a message's deliveries), `triggers/` (N-3, the events and
//! rules that make messages, `variables` what a template may say), `delivery/` (N-4, the
//! senders and their `providers`), `inbox/` (the in-app inbox), `opt_outs/` (N-6),
//! `partners/` (the partners' webhooks).

pub mod api;
pub mod delivery;
pub mod inbox;
pub mod kinds;
pub mod opt_outs;
pub mod partners;
pub mod rules;
pub mod sending;
pub mod service;
pub mod settings;
pub mod store;
pub mod templates;
pub mod triggers;

use std::sync::Arc;

use crm_kit::{
    CancellationToken, Clock, Settings, auth::Security, paging::Pager, runtime::Runtime,
};
use crm_proto::notifications::v1::notification_service_server::NotificationServiceServer;
use sqlx::migrate::Migrator;
use tokio::sync::Notify;

pub use service::Notifications;
pub use settings::NotificationSettings;

/// The service's name: its schema, its `[services.*]` key and its `crm serve` argument.
pub const NAME: &str = "notifications";

/// The service's migrations, embedded.
pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations/notifications");

/// Applies the service's migrations in its schema and installs the default templates that
/// are missing.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    crm_kit::db::migrate_schema(&settings.database, NAME, &MIGRATOR).await?;
    let own = Arc::new(NotificationSettings::from_settings(settings)?);
    let pool = crm_kit::db::connect(&settings.database, NAME).await?;
    let service = Notifications::new(
        pool.clone(),
        Clock::system(),
        Pager::new(&settings.paging),
        own,
        Arc::new(Notify::new()),
    );
    let call = crm_kit::context::Call::system("migrate", "crm migrate");
    let installed = templates::defaults::install_defaults(&service, &call).await?;
    if installed > 0 {
        tracing::info!(installed, "default notification templates installed");
    }
    pool.close().await;
    Ok(())
}

/// The notifications server, bound and ready to run.
pub struct Application {
    runtime: Runtime,
    notifications: Notifications,
}

impl Application {
    /// Builds the service with the `[notifications]` settings of `settings`.
    pub async fn build(
        settings: &Settings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let own = NotificationSettings::from_settings(settings)?;
        Self::build_with(settings, own, clock, security).await
    }

    /// Builds the service with explicit `[notifications]` settings (tests change providers and
    /// retry timing this way). Bad rules or providers stop the start here. It runs the
    /// consumer of every service's events (the triggers, N-3) and the sender (N-6).
    pub async fn build_with(
        settings: &Settings,
        own: NotificationSettings,
        clock: Clock,
        security: Security,
    ) -> anyhow::Result<Self> {
        let rules = own.checked_rules()?;
        let pool = crm_kit::db::connect(&settings.database, NAME).await?;
        let providers = delivery::providers::Providers::from_settings(&pool, &own)?;
        let own = Arc::new(own);
        let wake = Arc::new(Notify::new());
        let notifications = Notifications::new(
            pool.clone(),
            clock.clone(),
            Pager::new(&settings.paging),
            own.clone(),
            wake.clone(),
        );
        let sender = delivery::Sender::new(
            pool.clone(),
            clock.clone(),
            own.clone(),
            providers,
            wake.clone(),
        );
        let triggers = triggers::Triggers::new(clock.clone(), rules, own, wake);
        let runtime = Runtime::bind(NAME, pool, settings, clock, security)
            .await?
            .consume(triggers::TOPICS, triggers)
            .task(move |shutdown| {
                sender.spawn(shutdown);
            });
        Ok(Self {
            runtime,
            notifications,
        })
    }

    /// The service state, for tests and tools.
    pub fn notifications(&self) -> &Notifications {
        &self.notifications
    }

    /// Serves until `shutdown` is cancelled, consuming events and sending meanwhile.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        crm_kit::serve!(
            self.runtime,
            NotificationServiceServer::new(api::Api(self.notifications)),
            shutdown
        )
    }
}

crm_kit::entry!(Application, migrate);
