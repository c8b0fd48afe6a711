//! The gateway's state (`Identity`) and what its capabilities share: password hashing, the
//! revocation of sessions everywhere, and the API's view of a caller. The use cases are in
//! `sessions/`, `users/`, `api_keys/` and `policy/`.

use crm_kit::{
    Clock, Error, Result, audit,
    auth::{AuthSettings, Principal, PrincipalKind, Security, Signer},
    paging::Pager,
};
use crm_proto::gateway::v1 as pb;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};

/// Sessions, tokens, users and API keys.
#[derive(Clone)]
pub struct Identity {
    pub(crate) audit: audit::AuditReader,
    pub(crate) services: std::collections::BTreeMap<String, String>,
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    pub(crate) pager: Pager,
    pub(crate) signer: Signer,
    pub(crate) settings: AuthSettings,
    pub(crate) security: Security,
    pub(crate) redis: ConnectionManager,
    pub(crate) revoked_key: String,
    pub(crate) key_prefix: String,
    pub(crate) hashing: crate::sessions::login::Hashing,
    pub(crate) guard: crate::sessions::login::Guard,
}

pub(crate) fn bad_credentials() -> Error {
    Error::Unauthenticated("wrong user name or password".into())
}

/// The topic of the gateway's events.
pub const TOPIC: &str = crate::NAME;
/// A user was created or changed (payload: the `crm.gateway.v1.User`, without secrets), so the
/// services that reach users (notifications) keep their own copy of the directory.
pub const USER_CHANGED: &str = "gateway.user_changed";

impl Identity {
    pub(crate) async fn hash_password(&self, password: String) -> Result<String> {
        self.hashing.hash(password).await
    }

    pub(crate) async fn password_matches(&self, password: String, hash: String) -> Result<bool> {
        self.hashing.verify(password, hash).await
    }

    /// A hash of a random password, checked when the user does not exist so that a wrong
    /// name costs as long as a wrong password.
    pub(crate) async fn dummy_hash(&self) -> Result<String> {
        static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        DUMMY
            .get_or_try_init(|| self.hash_password(crate::sessions::rules::secret()))
            .await
            .cloned()
    }

    /// The identity service over its migrated pool.
    pub fn new(
        pool: PgPool,
        clock: Clock,
        pager: Pager,
        settings: &crm_kit::Settings,
        security: Security,
        redis: ConnectionManager,
    ) -> anyhow::Result<Self> {
        let login: crate::sessions::login::LoginSettings = settings.section("gateway.login")?;
        Ok(Self {
            hashing: crate::sessions::login::Hashing::new(&login),
            guard: crate::sessions::login::Guard::new(
                &login,
                redis.clone(),
                &settings.redis.key_prefix,
            )?,
            audit: audit::AuditReader::new(pool.clone(), pager.clone(), crate::NAME),
            services: settings
                .services
                .iter()
                .map(|(name, e)| (name.clone(), e.url.clone()))
                .collect(),
            pool,
            clock,
            pager,
            signer: Signer::new(&settings.auth)?,
            settings: settings.auth.clone(),
            security,
            redis,
            revoked_key: crm_kit::auth::revoked_sessions_key(&settings.redis.key_prefix),
            key_prefix: settings.redis.key_prefix.clone(),
        })
    }

    /// Default lifetime of new API keys.
    pub fn api_key_ttl_days(&self) -> u32 {
        self.settings.api_key_ttl_days
    }

    /// Revokes sessions everywhere: here at once, in every other server within its poll.
    pub(crate) async fn publish_revoked(
        &self,
        sessions: &[String],
        now: OffsetDateTime,
    ) -> Result<()> {
        if sessions.is_empty() {
            return Ok(());
        }
        let until =
            (now + Duration::seconds(self.settings.access_ttl_s as i64 + 60)).unix_timestamp();
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(&self.revoked_key);
        for s in sessions {
            self.security.verifier.revoke_now(s);
            cmd.arg(until).arg(s);
        }
        let mut conn = self.redis.clone();
        cmd.query_async::<()>(&mut conn)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot publish a revocation: {e}")))?;
        Ok(())
    }
}

/// A principal as the API's Caller.
pub fn caller(p: &Principal) -> pb::Caller {
    pb::Caller {
        subject: p.subject.clone(),
        name: p.name.clone(),
        kind: match p.kind {
            PrincipalKind::User => "user",
            PrincipalKind::ApiKey => "api_key",
        }
        .into(),
        roles: p.roles.clone(),
        region: p.region.clone(),
        partner_id: p.partner_id.clone(),
    }
}
