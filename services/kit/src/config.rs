//! Configuration: the embedded defaults, then an optional file, then `CRM__…` environment
//! variables (`CRM__DATABASE__URL`, `CRM__SERVICES__CUSTOMERS__LISTEN`). Every key is documented
//! in `docs/configuration.md`.
//!
//! Each module owns its settings type (`db::DatabaseSettings`, `auth::AuthSettings`, …); this
//! module only assembles them into [`Settings`] and loads it. No module imports this one for
//! its own section.

use std::{collections::BTreeMap, path::Path};

use serde::Deserialize;

pub use crate::{
    db::DatabaseSettings, paging::PagingSettings, redis::RedisSettings, server::ServerSettings,
    telemetry::TelemetrySettings,
};

const DEFAULTS: &str = include_str!("defaults.toml");

/// Every setting of the platform.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// Postgres connection.
    pub database: DatabaseSettings,
    /// Redis connection.
    pub redis: RedisSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// gRPC server behaviour common to every service.
    pub server: ServerSettings,
    /// Where each service listens and how others reach it, by service name.
    pub services: BTreeMap<String, ServiceEndpoint>,
    /// List pagination.
    pub paging: PagingSettings,
    /// Tokens and the per-method policy.
    pub auth: crate::auth::AuthSettings,
    /// Per-caller rate limits at the gateway.
    pub rate_limit: crate::ratelimit::RateLimitSettings,
    /// The outbox relay and the event consumers.
    pub events: crate::events::EventSettings,
    /// Recurring jobs.
    pub schedule: crate::schedule::ScheduleSettings,
    /// Timer workers.
    pub timers: crate::timers::TimerSettings,
    /// The working calendar of business-hours deadlines.
    pub calendar: crate::calendar::CalendarSettings,
    /// Everything loaded, for the sections a service defines itself ([`Settings::section`]).
    #[serde(skip)]
    raw: Option<std::sync::Arc<config::Config>>,
}

/// Where one service listens and how the others reach it.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceEndpoint {
    /// The socket address to bind, e.g. `0.0.0.0:50051`; port 0 picks a free port.
    pub listen: String,
    /// The URL other services and the gateway use to call it.
    pub url: String,
}

impl Settings {
    /// Loads the defaults, then `file` if given, then the `CRM__` environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        Self::load_with(file, &[])
    }

    /// Like [`Settings::load`], with explicit overrides applied last (`("database.url", v)`).
    pub fn load_with(file: Option<&Path>, overrides: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("CRM")
                .prefix_separator("__")
                .separator("__"),
        );
        for (key, value) in overrides {
            builder = builder.set_override(*key, value.clone())?;
        }
        let raw = builder.build()?;
        let mut settings: Self = raw.clone().try_deserialize()?;
        settings.raw = Some(std::sync::Arc::new(raw));
        Ok(settings)
    }

    /// The section `key` (e.g. `notifications`) as a service's own settings type; its defaults
    /// are in the same embedded defaults file, so every key is documented in one place.
    pub fn section<T: serde::de::DeserializeOwned>(&self, key: &str) -> anyhow::Result<T> {
        let raw = self
            .raw
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("settings were not loaded from configuration"))?;
        raw.get::<T>(key)
            .map_err(|e| anyhow::anyhow!("[{key}] in the configuration: {e}"))
    }

    /// The endpoint of `service`, or an error naming it.
    pub fn endpoint(&self, service: &str) -> anyhow::Result<&ServiceEndpoint> {
        self.services
            .get(service)
            .ok_or_else(|| anyhow::anyhow!("no [services.{service}] in the configuration"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_overrides_win() {
        let s = Settings::load_with(None, &[("redis.key_prefix", "t1:".into())]).unwrap();
        assert_eq!(s.redis.key_prefix, "t1:");
        assert_eq!(s.endpoint("customers").unwrap().listen, "127.0.0.1:50052");
        assert!(s.endpoint("nope").is_err());
    }
}
