//! The gateway's use cases: sessions and tokens, users and API keys.

use crm_kit::{
    Clock, Error, Result, audit,
    auth::{AuthSettings, Claims, Principal, PrincipalKind, Security, Signer},
    context::{Call, Origin},
    convert,
    idempotency::RequestKey,
    paging::Pager,
};
use crm_proto::gateway::v1 as pb;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::{
    domain::{self, NewApiKey, NewUser},
    store::{self, UserRow},
};

/// Sessions, tokens, users and API keys.
#[derive(Clone)]
pub struct Identity {
    audit: audit::AuditReader,
    services: std::collections::BTreeMap<String, String>,
    pool: PgPool,
    clock: Clock,
    pager: Pager,
    signer: Signer,
    settings: AuthSettings,
    security: Security,
    redis: ConnectionManager,
    revoked_key: String,
    key_prefix: String,
    hashing: crate::login::Hashing,
    guard: crate::login::Guard,
}

fn bad_credentials() -> Error {
    Error::Unauthenticated("wrong user name or password".into())
}

/// The topic of the gateway's events.
pub const TOPIC: &str = crate::NAME;
/// A user was created or changed (payload: the `crm.gateway.v1.User`, without secrets), so the
/// services that reach users (notifications) keep their own copy of the directory.
pub const USER_CHANGED: &str = "gateway.user_changed";

async fn publish_user(
    tx: &mut sqlx::PgConnection,
    call: &Call,
    now: time::OffsetDateTime,
    user: &pb::User,
) -> Result<()> {
    let aggregate = format!("users/{}", user.id);
    crm_kit::events::publish(
        tx,
        call,
        now,
        crm_kit::events::NewEvent {
            topic: TOPIC,
            event_type: USER_CHANGED,
            aggregate: &aggregate,
            payload: crm_kit::events::Payload::of(user),
            urgent: false,
        },
    )
    .await?;
    Ok(())
}

impl Identity {
    async fn hash_password(&self, password: String) -> Result<String> {
        self.hashing.hash(password).await
    }

    async fn password_matches(&self, password: String, hash: String) -> Result<bool> {
        self.hashing.verify(password, hash).await
    }

    /// A hash of a random password, checked when the user does not exist so that a wrong
    /// name costs as long as a wrong password.
    async fn dummy_hash(&self) -> Result<String> {
        static DUMMY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
        DUMMY
            .get_or_try_init(|| self.hash_password(domain::secret()))
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
        let login: crate::login::LoginSettings = settings.section("gateway.login")?;
        Ok(Self {
            hashing: crate::login::Hashing::new(&login),
            guard: crate::login::Guard::new(&login, redis.clone(), &settings.redis.key_prefix)?,
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

    fn token(
        &self,
        principal: &Principal,
        now: OffsetDateTime,
    ) -> Result<(String, OffsetDateTime)> {
        let exp = now + Duration::seconds(self.settings.access_ttl_s as i64);
        let claims = Claims {
            sub: principal.subject.clone(),
            name: principal.name.clone(),
            kind: principal.kind,
            roles: principal.roles.clone(),
            region: principal.region.clone(),
            partner: principal.partner_id.clone(),
            sid: principal.session_id.clone(),
            iss: self.signer.issuer().to_string(),
            iat: now.unix_timestamp(),
            exp: exp.unix_timestamp(),
        };
        Ok((self.signer.sign(&claims)?, exp))
    }

    fn user_principal(user: &UserRow, session: Uuid) -> Principal {
        Principal {
            subject: user.id.to_string(),
            name: user.display_name.clone(),
            kind: PrincipalKind::User,
            roles: user.roles.clone(),
            region: user.region.clone(),
            partner_id: user.partner_id.clone(),
            session_id: session.to_string(),
        }
    }

    /// Revokes sessions everywhere: here at once, in every other server within its poll.
    async fn publish_revoked(&self, sessions: &[String], now: OffsetDateTime) -> Result<()> {
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

    /// Password login.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        origin: &Origin,
    ) -> Result<pb::LoginResponse> {
        let username = username.trim();
        self.guard.admit(username).await?;
        let mut conn = self.pool.acquire().await?;
        let user = store::user_by_name(&mut conn, username).await?;
        drop(conn);
        let hash = match &user {
            Some(u) => u.password_hash.clone(),
            None => self.dummy_hash().await?,
        };
        let matches = self.password_matches(password.to_string(), hash).await?;
        let method = "crm.gateway.v1.AuthService/Login";
        let user = match user {
            Some(u) if matches && !u.disabled => u,
            other => {
                tracing::info!("login refused");
                let locked = self.guard.failed(username).await? == crate::login::Failure::Locked;
                let resource =
                    other.map_or("users/unknown".to_string(), |u| format!("users/{}", u.id));
                let anonymous = origin.call(
                    Principal {
                        kind: PrincipalKind::User,
                        ..Principal::system("anonymous")
                    },
                    method,
                );
                let mut conn = self.pool.acquire().await?;
                audit::record_outcome(
                    &mut conn,
                    &anonymous,
                    self.clock.now(),
                    &resource,
                    &[],
                    if locked { "locked" } else { "refused" },
                )
                .await?;
                if locked {
                    tracing::warn!(%resource, "user name locked after repeated failed log-ins");
                }
                return Err(bad_credentials());
            }
        };
        self.guard.succeeded(username).await;
        let now = self.clock.now();
        let session = Uuid::now_v7();
        let secret = domain::secret();
        let refresh_expire = now + Duration::seconds(self.settings.refresh_ttl_s as i64);
        let mut tx = self.pool.begin().await?;
        let refresh_hash = domain::hash_secret(&secret);
        let new = store::NewSession {
            id: session,
            user: user.id,
            refresh_hash: &refresh_hash,
            expire: refresh_expire,
            now,
            origin,
        };
        store::insert_session(&mut tx, &new).await?;
        let principal = Self::user_principal(&user, session);
        let call = origin.call(principal.clone(), method);
        audit::record(
            &mut tx,
            &call,
            now,
            &format!("users/{}", user.id),
            &["session"],
        )
        .await?;
        tx.commit().await?;
        let (access_token, exp) = self.token(&principal, now)?;
        tracing::info!(user.id = %user.id, session = %session, "login");
        Ok(pb::LoginResponse {
            access_token,
            access_token_expire_time: Some(convert::timestamp(exp)),
            refresh_token: domain::refresh_token_string(session, &secret),
            refresh_token_expire_time: Some(convert::timestamp(refresh_expire)),
            caller: Some(caller(&principal)),
        })
    }

    /// Exchanges an API key for an access token.
    pub async fn exchange_api_key(
        &self,
        key: &str,
        origin: &Origin,
    ) -> Result<pb::ExchangeApiKeyResponse> {
        let refused = || Error::Unauthenticated("API key is not valid".into());
        let (id, secret) = domain::parse_api_key(key).ok_or_else(refused)?;
        let mut conn = self.pool.acquire().await?;
        let row = store::api_key(&mut conn, id, false)
            .await?
            .ok_or_else(refused)?;
        let now = self.clock.now();
        let method = "crm.gateway.v1.AuthService/ExchangeApiKey";
        let problem = if !domain::same_hash(&row.secret_hash, &domain::hash_secret(secret)) {
            Some(refused())
        } else if row.revoke_time.is_some() {
            Some(Error::Unauthenticated("API key was revoked".into()))
        } else if row.expire_time <= now {
            Some(Error::Unauthenticated("API key expired".into()))
        } else {
            None
        };
        let holder = Principal {
            subject: row.id.to_string(),
            kind: PrincipalKind::ApiKey,
            ..Principal::system("api key")
        };
        let resource = format!("api_keys/{}", row.id);
        if let Some(problem) = problem {
            let call = origin.call(holder, method);
            audit::record_outcome(&mut conn, &call, now, &resource, &[], "refused").await?;
            return Err(problem);
        }
        audit::record(
            &mut conn,
            &origin.call(holder, method),
            now,
            &resource,
            &["token"],
        )
        .await?;
        let principal = Principal {
            subject: row.id.to_string(),
            name: row.name.clone(),
            kind: PrincipalKind::ApiKey,
            roles: row.roles.clone(),
            region: String::new(),
            partner_id: row.partner_id.clone(),
            session_id: domain::api_key_session(row.id),
        };
        let (access_token, exp) = self.token(&principal, now)?;
        Ok(pb::ExchangeApiKeyResponse {
            access_token,
            access_token_expire_time: Some(convert::timestamp(exp.min(row.expire_time))),
            caller: Some(caller(&principal)),
        })
    }

    /// Rotates a session's refresh token and issues a new access token.
    pub async fn refresh(&self, token: &str) -> Result<pb::RefreshTokenResponse> {
        let refused = || Error::Unauthenticated("refresh token is not valid".into());
        let (session, secret) = domain::parse_refresh_token(token).ok_or_else(refused)?;
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let (user_id, hash) = store::lock_live_session(&mut tx, session, now)
            .await?
            .ok_or_else(refused)?;
        if !domain::same_hash(&hash, &domain::hash_secret(secret)) {
            return Err(refused());
        }
        let user = store::user_by_id(&mut tx, user_id, false)
            .await?
            .ok_or_else(refused)?;
        if user.disabled {
            return Err(refused());
        }
        let next = domain::secret();
        store::rotate_session(&mut tx, session, &domain::hash_secret(&next)).await?;
        tx.commit().await?;
        let (access_token, exp) = self.token(&Self::user_principal(&user, session), now)?;
        Ok(pb::RefreshTokenResponse {
            access_token,
            access_token_expire_time: Some(convert::timestamp(exp)),
            refresh_token: domain::refresh_token_string(session, &next),
        })
    }

    /// Ends the caller's session.
    pub async fn logout(&self, call: &Call) -> Result<()> {
        let caller = &call.principal;
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        if caller.kind == PrincipalKind::User {
            let session = Uuid::parse_str(&caller.session_id)
                .map_err(|_| Error::Unauthenticated("no session".into()))?;
            store::revoke_sessions(&mut tx, Some(session), None, now).await?;
        }
        audit::record(
            &mut tx,
            call,
            now,
            &format!("sessions/{}", caller.session_id),
            &["revoke_time"],
        )
        .await?;
        tx.commit().await?;
        self.publish_revoked(std::slice::from_ref(&caller.session_id), now)
            .await
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        key: RequestKey,
        user: NewUser,
        call: &Call,
    ) -> Result<pb::CreateUserResponse> {
        let actor = &call.principal;
        let hash = self.hash_password(user.password.clone()).await?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let row = store::insert_user(&mut tx, Uuid::now_v7(), &user, &hash, now, &actor.subject)
            .await
            .map_err(|e| match e.violated_constraint() {
                Some("users_username_key") => Error::AlreadyExists {
                    reason: "USERNAME_TAKEN",
                    message: format!("user name {} is taken", user.username),
                },
                _ => e,
            })?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("users/{}", row.id),
            &[
                "username",
                "display_name",
                "roles",
                "region",
                "partner_id",
                "email",
                "phone",
                "language",
                "password",
            ],
        )
        .await?;
        let response = pb::CreateUserResponse {
            user: Some(row.to_proto()),
        };
        publish_user(&mut tx, call, now, &row.to_proto()).await?;
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Users by user name.
    pub async fn list_users(
        &self,
        page: Option<&crm_proto::common::v1::PageRequest>,
    ) -> Result<pb::ListUsersResponse> {
        let page = self.pager.read::<String>(page, "")?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_users(&mut conn, page.after.clone(), page.limit()).await?;
        let mut users: Vec<pb::User> = rows.iter().map(UserRow::to_proto).collect();
        let page = self
            .pager
            .finish(&page, &mut users, "", |u| u.username.clone());
        Ok(pb::ListUsersResponse {
            users,
            page: Some(page),
        })
    }

    /// Replaces a user's roles; their sessions end.
    pub async fn set_user_roles(
        &self,
        key: RequestKey,
        user_id: Uuid,
        roles: Vec<String>,
        region: String,
        call: &Call,
    ) -> Result<pb::SetUserRolesResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        store::user_by_id(&mut tx, user_id, true)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "user",
                id: user_id.to_string(),
            })?;
        store::set_roles(&mut tx, user_id, &roles, &region, now).await?;
        let revoked = store::revoke_sessions(&mut tx, None, Some(user_id), now).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("users/{user_id}"),
            &["roles", "region"],
        )
        .await?;
        let user = store::user_by_id(&mut tx, user_id, false)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "user",
                id: user_id.to_string(),
            })?;
        let response = pb::SetUserRolesResponse {
            user: Some(user.to_proto()),
        };
        publish_user(&mut tx, call, now, &user.to_proto()).await?;
        key.finish(tx, &response, now).await?;
        let revoked: Vec<String> = revoked.iter().map(Uuid::to_string).collect();
        self.publish_revoked(&revoked, now).await?;
        Ok(response)
    }

    /// Creates an API key; the secret is in this response only (a retry gets the key without it).
    pub async fn create_api_key(
        &self,
        key: RequestKey,
        new: NewApiKey,
        call: &Call,
    ) -> Result<pb::CreateApiKeyResponse> {
        let actor = &call.principal;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let secret = domain::secret();
        let expire = now + Duration::days(i64::from(new.ttl_days));
        let row = store::insert_api_key(
            &mut tx,
            id,
            &new,
            &domain::hash_secret(&secret),
            expire,
            now,
            &actor.subject,
        )
        .await?;
        let stored = pb::CreateApiKeyResponse {
            api_key: Some(row.to_proto()),
            secret: String::new(),
        };
        audit::record(
            &mut tx,
            call,
            now,
            &format!("api_keys/{id}"),
            &["name", "roles", "partner_id", "expire_time"],
        )
        .await?;
        key.finish(tx, &stored, now).await?;
        Ok(pb::CreateApiKeyResponse {
            secret: domain::api_key_string(id, &secret),
            ..stored
        })
    }

    /// API keys, oldest first.
    pub async fn list_api_keys(
        &self,
        page: Option<&crm_proto::common::v1::PageRequest>,
    ) -> Result<pb::ListApiKeysResponse> {
        let page = self.pager.read::<Uuid>(page, "")?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_api_keys(&mut conn, page.after, page.limit()).await?;
        let mut api_keys: Vec<pb::ApiKey> = rows.iter().map(store::ApiKeyRow::to_proto).collect();
        let page = self.pager.finish(&page, &mut api_keys, "", |k| {
            k.id.parse::<Uuid>().unwrap_or_default()
        });
        Ok(pb::ListApiKeysResponse {
            api_keys,
            page: Some(page),
        })
    }

    /// Revokes an API key and every token made from it.
    pub async fn revoke_api_key(
        &self,
        key: RequestKey,
        id: Uuid,
        call: &Call,
    ) -> Result<pb::RevokeApiKeyResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let row = store::api_key(&mut tx, id, true)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "api key",
                id: id.to_string(),
            })?;
        if row.revoke_time.is_some() {
            return Err(Error::precondition(
                "API_KEY_REVOKED",
                "the API key is already revoked",
            ));
        }
        let row = store::revoke_api_key(&mut tx, id, now).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("api_keys/{id}"),
            &["revoke_time"],
        )
        .await?;
        let response = pb::RevokeApiKeyResponse {
            api_key: Some(row.to_proto()),
        };
        key.finish(tx, &response, now).await?;
        self.publish_revoked(&[domain::api_key_session(id)], now)
            .await?;
        Ok(response)
    }
}

impl Identity {
    /// The gateway's own audit trail.
    pub fn audit_reader(&self) -> audit::AuditReader {
        self.audit.clone()
    }

    /// The pool, for the event relay and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One service's audit trail: the gateway's own, or read from the service's
    /// `crm.audit.v1.AuditService` with the caller's own token.
    pub async fn list_audit_events(
        &self,
        r: pb::ListAuditEventsRequest,
        authorization: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    ) -> Result<pb::ListAuditEventsResponse> {
        let service = if r.service.is_empty() {
            crate::NAME
        } else {
            r.service.as_str()
        };
        let found = if service == crate::NAME {
            self.audit.list(r.filter.as_ref(), r.page.as_ref()).await?
        } else {
            let url = self.services.get(service).ok_or_else(|| {
                Error::invalid(
                    "service",
                    format!(
                        "unknown service; known: {}",
                        self.services.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            let channel = tonic::transport::Channel::from_shared(url.clone())
                .map_err(|e| Error::Internal(anyhow::anyhow!("services.{service}.url: {e}")))?
                .connect_lazy();
            let mut client =
                crm_proto::audit::v1::audit_service_client::AuditServiceClient::new(channel);
            let mut request = tonic::Request::new(crm_proto::audit::v1::ListAuditEventsRequest {
                filter: r.filter,
                page: r.page,
            });
            if let Some(value) = authorization {
                request.metadata_mut().insert("authorization", value);
            }
            request.set_timeout(std::time::Duration::from_secs(10));
            match client.list_audit_events(request).await {
                Ok(response) => response.into_inner(),
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "the {service} service is unavailable"
                    )));
                }
                Err(status) => {
                    return Err(Error::Internal(anyhow::anyhow!(
                        "reading the {service} audit trail: {}",
                        status.message()
                    )));
                }
            }
        };
        Ok(pb::ListAuditEventsResponse {
            events: found.events,
            page: found.page,
        })
    }
}

impl Identity {
    /// Publishes the stored policy overrides to every server (through Redis) and applies them
    /// here at once. Run at start, so a Redis that lost its data gets them back.
    pub async fn publish_policy(&self) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let rows = store::policies(&mut conn).await?;
        let overrides: std::collections::BTreeMap<String, Vec<String>> =
            rows.into_iter().map(|r| (r.role, r.methods)).collect();
        self.security
            .apply_overrides(&self.settings, &overrides)
            .map_err(Error::Internal)?;
        let json = serde_json::to_string(&overrides).map_err(|e| Error::Internal(e.into()))?;
        let mut redis = self.redis.clone();
        redis::cmd("SET")
            .arg(crm_kit::auth::policy_key(&self.key_prefix))
            .arg(json)
            .query_async::<()>(&mut redis)
            .await
            .map_err(|e| Error::Internal(anyhow::anyhow!("cannot publish the policy: {e}")))?;
        Ok(())
    }

    /// The policy in force, with who changed each overridden role.
    pub async fn get_policy(&self) -> Result<pb::GetPolicyResponse> {
        let mut conn = self.pool.acquire().await?;
        let stamps: std::collections::BTreeMap<String, crm_proto::common::v1::AuditStamp> =
            store::policies(&mut conn)
                .await?
                .into_iter()
                .map(|r| (r.role, convert::stamp(r.update_time, &r.updated_by)))
                .collect();
        let roles = self
            .security
            .policy()
            .roles()
            .into_iter()
            .map(|(role, methods)| pb::RolePolicy {
                updated: stamps.get(&role).cloned(),
                role,
                methods,
            })
            .collect();
        Ok(pb::GetPolicyResponse { roles })
    }

    /// Replaces one role's methods everywhere.
    pub async fn set_role_policy(
        &self,
        key: RequestKey,
        role: String,
        methods: Vec<String>,
        call: &Call,
    ) -> Result<pb::SetRolePolicyResponse> {
        if role == crm_kit::Role::Admin.as_str() {
            return Err(Error::precondition(
                "ADMIN_POLICY_FIXED",
                "the admin role always has every right",
            ));
        }
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        store::upsert_policy(&mut tx, &role, &methods, now, &call.principal.subject).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("policies/{role}"),
            &["methods"],
        )
        .await?;
        let response = pb::SetRolePolicyResponse {
            policy: Some(pb::RolePolicy {
                role,
                methods,
                updated: Some(convert::stamp(now, &call.principal.subject)),
            }),
        };
        key.finish(tx, &response, now).await?;
        self.publish_policy().await?;
        Ok(response)
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
