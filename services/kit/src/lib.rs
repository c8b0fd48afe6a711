//! The shared runtime of every service, written once: configuration, telemetry, Postgres pools
//! and migrations, the error → gRPC status mapping, health and reflection, pagination,
//! request-id idempotency, the clock, graceful shutdown and the test harness.

pub mod audit;
pub mod auth;
pub mod calendar;
pub mod clock;
pub mod config;
pub mod connect;
pub mod context;
pub mod convert;
pub mod db;
pub mod directory;
pub mod email;
pub mod error;
pub mod events;
pub mod guard;
pub mod history;
pub mod idempotency;
pub mod leader;
pub mod mask;
pub mod metrics;
pub mod money;
pub mod paging;
pub mod phone;
pub mod ratelimit;
pub mod redis;
pub mod role;
pub mod runtime;
pub mod schedule;
pub mod scope;
pub mod server;
pub mod service_policy;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod text;
pub mod timers;

pub use clock::Clock;
pub use config::Settings;
pub use error::{Error, Result, Violations};
pub use role::Role;
pub use tokio_util::sync::CancellationToken;
