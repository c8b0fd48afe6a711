//! Keeping every server in step: the revoked sessions and the policy overrides, read from
//! Redis by a poller into [`Security`].

use std::{collections::BTreeMap, time::Duration};

use super::Security;

/// The Redis sorted set of revoked sessions (member: session id, score: when its last token
/// expires), shared by every server.
pub fn revoked_sessions_key(keys_prefix: &str) -> String {
    format!("{keys_prefix}{{auth}}:revoked_sessions")
}

/// The Redis key holding the policy overrides made through the admin API (JSON: role →
/// method patterns), shared by every server.
pub fn policy_key(keys_prefix: &str) -> String {
    format!("{keys_prefix}{{auth}}:policy")
}

/// Keeps `security` in step with Redis every `auth.revocation_poll_ms`, until `shutdown`: the
/// revoked sessions (entries whose tokens have all expired are dropped) and the policy
/// overrides.
pub fn spawn_poller(
    security: Security,
    auth: super::AuthSettings,
    redis: crate::redis::RedisSettings,
    shutdown: tokio_util::sync::CancellationToken,
) {
    tokio::spawn(async move {
        let every = Duration::from_millis(auth.revocation_poll_ms);
        let revoked_key = revoked_sessions_key(&redis.key_prefix);
        let policy_key = policy_key(&redis.key_prefix);
        let mut conn = None;
        let mut last_policy: Option<String> = None;
        loop {
            if conn.is_none() {
                conn = crate::redis::connect(&redis).await.ok();
            }
            if let Some(c) = conn.as_mut() {
                let now = time::OffsetDateTime::now_utc().unix_timestamp();
                let result: redis::RedisResult<(Vec<String>, Option<String>)> = redis::pipe()
                    .cmd("ZRANGEBYSCORE")
                    .arg(&revoked_key)
                    .arg(now)
                    .arg("+inf")
                    .cmd("GET")
                    .arg(&policy_key)
                    .query_async(c)
                    .await;
                match result {
                    Ok((sessions, policy)) => {
                        security
                            .verifier
                            .set_revoked(sessions.into_iter().collect());
                        if policy != last_policy {
                            let overrides: BTreeMap<String, Vec<String>> = policy
                                .as_deref()
                                .and_then(|p| serde_json::from_str(p).ok())
                                .unwrap_or_default();
                            match security.apply_overrides(&auth, &overrides) {
                                Ok(()) => last_policy = policy,
                                Err(e) => {
                                    tracing::warn!(error = %e, "ignoring an invalid policy override")
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot load revoked sessions and policy"),
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}
