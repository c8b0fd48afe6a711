//! Redis: a reconnecting connection and the key naming every service uses. Keys carry the
//! configured prefix (tests give each test its own) and the service name as a hash tag
//! (`{tickets}:timers`), so every key of a service lands in one slot of a Redis Cluster and one
//! Lua script may touch several of them.

use redis::{Client, aio::ConnectionManager};

/// Builds the Redis keys of one service.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    service: &'static str,
}

impl Keys {
    /// The keys of `service` under the configured prefix.
    pub fn new(settings: &RedisSettings, service: &'static str) -> Self {
        Self {
            prefix: settings.key_prefix.clone(),
            service,
        }
    }

    /// The full key of `name`, e.g. `test:ab12:{customers}:timers`.
    pub fn key(&self, name: &str) -> String {
        format!("{}{{{}}}:{name}", self.prefix, self.service)
    }

    /// The pattern matching every key of this service under this prefix (for tools and tests).
    pub fn pattern(&self) -> String {
        self.key("*")
    }
}

/// A connection that reconnects by itself after Redis restarts.
pub async fn connect(settings: &RedisSettings) -> anyhow::Result<ConnectionManager> {
    let client = Client::open(settings.url.as_str())?;
    Ok(client.get_connection_manager().await?)
}

/// A connection for blocking reads (`XREADGROUP … BLOCK block`): its response timeout is
/// longer than the block, so an idle wait is not mistaken for a dead server (the default
/// timeout is half a second).
pub async fn connect_blocking(
    settings: &RedisSettings,
    block: std::time::Duration,
) -> anyhow::Result<ConnectionManager> {
    let client = Client::open(settings.url.as_str())?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(block + std::time::Duration::from_secs(5)));
    Ok(client.get_connection_manager_with_config(config).await?)
}

/// Redis connection settings.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RedisSettings {
    /// Connection URL.
    pub url: String,
    /// Prepended to every key (tests give each test its own).
    pub key_prefix: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_carry_prefix_and_hash_tag() {
        let s = RedisSettings {
            url: String::new(),
            key_prefix: "t1:".into(),
        };
        assert_eq!(
            Keys::new(&s, "tickets").key("timers"),
            "t1:{tickets}:timers"
        );
    }
}
