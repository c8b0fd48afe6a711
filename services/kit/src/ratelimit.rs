//! Per-caller rate limits (G-3): token buckets keyed by the verified caller, with a quota per
//! role. A refused call is `RESOURCE_EXHAUSTED` with a RetryInfo saying when to try again.
//! The layer runs inside the auth layer (it needs the caller) and only on the gateway, so one
//! call is counted once.

use std::{collections::BTreeMap, num::NonZeroU32, sync::Arc, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
};
use serde::Deserialize;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::auth::Principal;

/// One bucket size.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Rate {
    /// Calls a second on average.
    pub per_second: u32,
    /// Calls at once.
    pub burst: u32,
}

/// The `[rate_limit]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    /// Whether calls are limited at all.
    pub enabled: bool,
    /// The default calls a second.
    pub per_second: u32,
    /// The default burst.
    pub burst: u32,
    /// Role → its own rate.
    #[serde(default)]
    pub roles: BTreeMap<String, Rate>,
    /// Calls without a token (log-ins, token exchanges, health, reflection), per client
    /// address.
    pub anonymous: Rate,
}

/// A rate and its buckets, one per caller.
type Bucket = (Rate, Arc<DefaultKeyedRateLimiter<String>>);

/// The limiters: one keyed by caller per distinct rate, and one for anonymous calls keyed by
/// client address.
#[derive(Clone)]
pub struct Limits {
    default: Bucket,
    roles: Arc<BTreeMap<String, Bucket>>,
    anonymous: Keyed,
}

/// The most keys a limiter keeps before it forgets the idle ones: anonymous callers choose
/// their keys (addresses, user names), so the map must not grow with them.
const MAX_KEYS: usize = 10_000;

/// Token buckets keyed by any string (a client address, a user name), bounded in memory.
#[derive(Clone)]
pub struct Keyed {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl Keyed {
    /// Buckets of `rate`.
    pub fn new(rate: Rate) -> anyhow::Result<Self> {
        Ok(Self {
            limiter: limiter(rate)?,
        })
    }

    /// Takes one token from `key`'s bucket, or says how long to wait.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.limiter.len() >= MAX_KEYS {
            // buckets that are full again are the same as no bucket
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&key.to_string())
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// The keys held (for tests).
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// The refusal of a limited call: `RESOURCE_EXHAUSTED` with a RetryInfo.
pub fn exhausted(what: &str, wait: Duration) -> Status {
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("{what}: retry in {} ms", wait.as_millis().max(1)),
        ErrorDetails::with_retry_info(Some(wait)),
    )
}

fn limiter(rate: Rate) -> anyhow::Result<Arc<DefaultKeyedRateLimiter<String>>> {
    let per_second = NonZeroU32::new(rate.per_second)
        .ok_or_else(|| anyhow::anyhow!("rate_limit per_second must be > 0"))?;
    let burst = NonZeroU32::new(rate.burst)
        .ok_or_else(|| anyhow::anyhow!("rate_limit burst must be > 0"))?;
    Ok(Arc::new(RateLimiter::keyed(
        Quota::per_second(per_second).allow_burst(burst),
    )))
}

impl Limits {
    /// The limiters of `settings`, or `None` when limits are off.
    pub fn new(settings: &RateLimitSettings) -> anyhow::Result<Option<Self>> {
        if !settings.enabled {
            return Ok(None);
        }
        let default = Rate {
            per_second: settings.per_second,
            burst: settings.burst,
        };
        let mut roles = BTreeMap::new();
        for (role, rate) in &settings.roles {
            anyhow::ensure!(
                crate::auth::ROLES.contains(&role.as_str()),
                "rate_limit.roles names an unknown role {role:?}"
            );
            roles.insert(role.clone(), (*rate, limiter(*rate)?));
        }
        Ok(Some(Self {
            default: (default, limiter(default)?),
            roles: Arc::new(roles),
            anonymous: Keyed::new(settings.anonymous)?,
        }))
    }

    /// Takes one token from `caller`'s bucket, or says how long to wait.
    pub fn check(&self, caller: &Principal) -> Result<(), Duration> {
        let (_, limiter) = caller
            .roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .max_by_key(|(rate, _)| (rate.per_second, rate.burst))
            .unwrap_or(&self.default);
        limiter
            .check_key(&caller.subject)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    /// The tower layer.
    pub fn layer(&self) -> crate::guard::GuardLayer<Self> {
        crate::guard::GuardLayer::new(self.clone())
    }
}

impl crate::guard::Guard for Limits {
    fn check<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        let Some(caller) = request.extensions().get::<Principal>() else {
            // no token: a public method, limited per client address (its IP, any port)
            let address = request
                .extensions()
                .get::<tonic::transport::server::TcpConnectInfo>()
                .and_then(|i| i.remote_addr())
                .map(|a| a.ip().to_string())
                .unwrap_or_default();
            return self.anonymous.check(&address).map_err(|wait| {
                tracing::info!(%address, wait_ms = wait.as_millis() as u64, "anonymous calls limited");
                exhausted("too many calls from this address", wait)
            });
        };
        Limits::check(self, caller).map_err(|wait| {
            tracing::info!(caller = %caller.subject, wait_ms = wait.as_millis() as u64, "rate limited");
            exhausted("too many calls", wait)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_per_caller_and_per_role() {
        let mut roles = BTreeMap::new();
        roles.insert(
            "partner".to_string(),
            Rate {
                per_second: 1,
                burst: 1,
            },
        );
        let limits = Limits::new(&RateLimitSettings {
            enabled: true,
            per_second: 1,
            burst: 3,
            roles,
            anonymous: Rate {
                per_second: 1,
                burst: 1,
            },
        })
        .unwrap()
        .unwrap();
        let caller = |subject: &str, role: &str| Principal {
            roles: vec![role.to_string()],
            ..Principal::system(subject)
        };
        let a = caller("a", "sales_rep");
        assert!((0..3).all(|_| limits.check(&a).is_ok()));
        let wait = limits.check(&a).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(
            limits.check(&caller("b", "sales_rep")).is_ok(),
            "another caller has its own bucket"
        );
        let p = caller("p", "partner");
        assert!(limits.check(&p).is_ok());
        assert!(limits.check(&p).is_err(), "the partner role's burst is 1");
    }

    #[test]
    fn keyed_buckets_forget_idle_keys_beyond_the_bound() {
        let keyed = Keyed::new(Rate {
            per_second: 1000,
            burst: 1,
        })
        .unwrap();
        assert!(keyed.check("a").is_ok());
        assert!(keyed.check("a").is_err(), "burst 1");
        for i in 0..(MAX_KEYS * 3) {
            let _ = keyed.check(&format!("k{i}"));
        }
        assert!(keyed.len() <= MAX_KEYS + 1, "{} keys held", keyed.len());
    }
}
