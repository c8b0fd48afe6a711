//! What keeps password log-ins from being used against the gateway (G-3): password hashing at a
//! bounded concurrency with a bounded queue, attempts limited per user name, and a temporary
//! lock-out of a user name after repeated failures.
//!
//! Why: an argon2id hash takes about 19 MiB for its duration. Unbounded, 100 concurrent wrong
//! passwords held ~8 GiB (issue 14). Here at most `hash_concurrency` hashes run (one per core by
//! default) and at most `hash_queue` wait; the rest are refused at once with
//! `RESOURCE_EXHAUSTED` and a RetryInfo, so memory stays within `hash_concurrency` × 19 MiB
//! however many log-ins arrive. Calls without a token are also limited per client address by
//! the kit's rate limiter (`rate_limit.anonymous`).

use std::{sync::Arc, time::Duration};

use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::{PasswordHasher, phc::PasswordHash},
};
use crm_kit::{Error, Result, ratelimit};
use redis::aio::ConnectionManager;
use serde::Deserialize;
use sha2::Digest;
use tokio::sync::Semaphore;

/// The `[gateway.login]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct LoginSettings {
    /// Password hashes computed at once; 0: one per core.
    pub hash_concurrency: usize,
    /// Log-ins that may wait for a hash slot; more are refused at once.
    pub hash_queue: usize,
    /// Attempts per user name (calls a second on average, and at once).
    pub per_user: ratelimit::Rate,
    /// Failed attempts of a user name within `failure_window_s` that lock it.
    pub max_failures: u32,
    /// The window failed attempts are counted in.
    pub failure_window_s: u64,
    /// How long a locked user name is refused.
    pub lockout_s: u64,
}

/// Runs password hashes on the blocking pool, a bounded number at once, each checking a
/// password in memory of its own slot that is allocated once and reused: a storm of log-ins
/// neither allocates nor frees 19 MiB per attempt (which fragmented the heap to hundreds of MiB).
#[derive(Clone)]
pub struct Hashing {
    /// A hash slot each.
    permits: Arc<Semaphore>,
    /// Room for the running and the waiting; a log-in that finds none is refused.
    admitted: Arc<Semaphore>,
    memory: Arc<std::sync::Mutex<Vec<Vec<Block>>>>,
}

impl Hashing {
    /// Hashing of `settings`.
    pub fn new(settings: &LoginSettings) -> Self {
        let slots = if settings.hash_concurrency == 0 {
            std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
        } else {
            settings.hash_concurrency
        };
        Self {
            permits: Arc::new(Semaphore::new(slots)),
            admitted: Arc::new(Semaphore::new(slots + settings.hash_queue)),
            memory: Arc::new(std::sync::Mutex::new(
                (0..slots).map(|_| Vec::new()).collect(),
            )),
        }
    }

    /// Runs `work` (a hash, with a slot's memory) when a slot is free, or refuses when too many
    /// wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> T + Send + 'static,
    ) -> Result<T> {
        let Ok(_admitted) = self.admitted.try_acquire() else {
            crm_kit::metrics::login_refused("busy");
            return Err(Error::Exhausted {
                what: "too many log-ins at once".into(),
                retry: Duration::from_secs(1),
            });
        };
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        // a permit is held: a slot's memory is free
        let mut memory = self
            .memory
            .lock()
            .map_err(|_| Error::Internal(anyhow::anyhow!("hash memory poisoned")))?
            .pop()
            .unwrap_or_default();
        let (result, memory) = tokio::task::spawn_blocking(move || {
            let result = work(&mut memory);
            (result, memory)
        })
        .await
        .map_err(|e| Error::Internal(e.into()))?;
        if let Ok(mut slots) = self.memory.lock() {
            slots.push(memory);
        }
        Ok(result)
    }

    /// Whether `password` matches the PHC string `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool> {
        self.run(move |memory| verify(&password, &hash, memory))
            .await
    }

    /// A new PHC string of `password` (argon2id, default parameters).
    pub async fn hash(&self, password: String) -> Result<String> {
        self.run(move |_| {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| Error::Internal(anyhow::anyhow!("hashing failed: {e}")))
        })
        .await?
    }
}

/// Checks `password` against the PHC string `hash`, in `memory` (grown to the hash's size once).
fn verify(password: &str, hash: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
        .unwrap_or_default();
    let blocks = params.block_count();
    if blocks > 256 * 1024 {
        // over 256 MiB: no hash of ours
        return false;
    }
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..blocks])
        .is_ok()
        && crate::sessions::rules::same_hash(expected.as_ref(), &out)
}

/// Attempts per user name, and the lock-out after repeated failures. The failures and locks
/// live in Redis, so every gateway replica sees them; the per-name buckets are per replica.
#[derive(Clone)]
pub struct Guard {
    settings: LoginSettings,
    per_user: ratelimit::Keyed,
    redis: ConnectionManager,
    prefix: String,
}

/// What a failed attempt led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Counted.
    Counted,
    /// This failure locked the user name.
    Locked,
}

impl Guard {
    /// The guard of `settings`, its state in Redis under `key_prefix`.
    pub fn new(
        settings: &LoginSettings,
        redis: ConnectionManager,
        key_prefix: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            settings.max_failures > 0,
            "gateway.login.max_failures must be > 0"
        );
        Ok(Self {
            settings: settings.clone(),
            per_user: ratelimit::Keyed::new(settings.per_user)?,
            redis,
            prefix: key_prefix.to_string(),
        })
    }

    /// The settings.
    pub fn settings(&self) -> &LoginSettings {
        &self.settings
    }

    fn key(&self, what: &str, username: &str) -> String {
        // hashed: a user name of any length makes a key of one size, and none is stored
        let digest = sha2::Sha256::digest(username.to_lowercase().as_bytes());
        format!(
            "{}{{gateway}}:login:{what}:{}",
            self.prefix,
            hex::encode(&digest[..16])
        )
    }

    /// Refuses an attempt for `username` that comes too fast or while it is locked.
    pub async fn admit(&self, username: &str) -> Result<()> {
        self.per_user
            .check(&username.to_lowercase())
            .map_err(|retry| {
                crm_kit::metrics::login_refused("rate");
                Error::Exhausted {
                    what: "too many log-ins for this user name".into(),
                    retry,
                }
            })?;
        let mut conn = self.redis.clone();
        let ttl: i64 = redis::cmd("PTTL")
            .arg(self.key("locked", username))
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("login lock-out lookup: {e}")))?;
        if ttl > 0 {
            crm_kit::metrics::login_refused("locked");
            let retry = Duration::from_millis(ttl as u64);
            return Err(Error::Locked {
                reason: "LOGIN_LOCKED",
                message: format!(
                    "too many failed log-ins: this user name is locked for {} more seconds",
                    retry.as_secs().max(1)
                ),
                retry,
            });
        }
        Ok(())
    }

    /// Counts a failed attempt; the one that reaches `max_failures` locks the name.
    pub async fn failed(&self, username: &str) -> Result<Failure> {
        let failures = self.key("failures", username);
        let mut conn = self.redis.clone();
        let (count,): (u32,) = redis::pipe()
            .atomic()
            .cmd("INCR")
            .arg(&failures)
            .cmd("EXPIRE")
            .arg(&failures)
            .arg(self.settings.failure_window_s)
            .arg("NX")
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("login failure count: {e}")))?;
        if count < self.settings.max_failures {
            return Ok(Failure::Counted);
        }
        let _: () = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(self.key("locked", username))
            .arg(1)
            .arg("EX")
            .arg(self.settings.lockout_s)
            .ignore()
            .cmd("DEL")
            .arg(&failures)
            .ignore()
            .query_async(&mut conn)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("login lock-out: {e}")))?;
        Ok(Failure::Locked)
    }

    /// Forgets the failures of `username` after a successful log-in.
    pub async fn succeeded(&self, username: &str) {
        let mut conn = self.redis.clone();
        let _: Result<(), _> = redis::cmd("DEL")
            .arg(self.key("failures", username))
            .query_async(&mut conn)
            .await;
    }
}
