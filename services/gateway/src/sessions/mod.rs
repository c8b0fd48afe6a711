//! Sessions (G-1): password login with the login guard, an API key exchanged for a token,
//! refresh-token rotation and logout; every token a short-lived signed JWT.

pub mod login;
pub mod rules;
mod store;

pub(crate) use store::revoke_sessions;

use crm_kit::{Error, Result, audit, auth::Principal, context::Call};
use crm_proto::gateway::v1 as pb;
use uuid::Uuid;

use crm_kit::{
    auth::{Claims, PrincipalKind},
    context::Origin,
    convert,
};
use time::{Duration, OffsetDateTime};

use crate::{
    service::{Identity, bad_credentials, caller},
    users::UserRow,
};

impl Identity {
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
        let user = crate::users::user_by_name(&mut conn, username).await?;
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
                let locked =
                    self.guard.failed(username).await? == crate::sessions::login::Failure::Locked;
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
        let secret = crate::sessions::rules::secret();
        let refresh_expire = now + Duration::seconds(self.settings.refresh_ttl_s as i64);
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let refresh_hash = crate::sessions::rules::hash_secret(&secret);
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
            refresh_token: crate::sessions::rules::refresh_token_string(session, &secret),
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
        let (id, secret) = crate::api_keys::rules::parse_api_key(key).ok_or_else(refused)?;
        let mut conn = self.pool.acquire().await?;
        let row = crate::api_keys::api_key(&mut conn, id, false)
            .await?
            .ok_or_else(refused)?;
        let now = self.clock.now();
        let method = "crm.gateway.v1.AuthService/ExchangeApiKey";
        let problem = if !crate::sessions::rules::same_hash(
            &row.secret_hash,
            &crate::sessions::rules::hash_secret(secret),
        ) {
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
            session_id: crate::api_keys::rules::api_key_session(row.id),
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
        let (session, secret) =
            crate::sessions::rules::parse_refresh_token(token).ok_or_else(refused)?;
        let now = self.clock.now();
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let (user_id, hash) = store::lock_live_session(&mut tx, session, now)
            .await?
            .ok_or_else(refused)?;
        if !crate::sessions::rules::same_hash(&hash, &crate::sessions::rules::hash_secret(secret)) {
            return Err(refused());
        }
        let user = crate::users::user_by_id(&mut tx, user_id, false)
            .await?
            .ok_or_else(refused)?;
        if user.disabled {
            return Err(refused());
        }
        let next = crate::sessions::rules::secret();
        store::rotate_session(
            &mut tx,
            session,
            &crate::sessions::rules::hash_secret(&next),
        )
        .await?;
        tx.commit().await?;
        let (access_token, exp) = self.token(&Self::user_principal(&user, session), now)?;
        Ok(pb::RefreshTokenResponse {
            access_token,
            access_token_expire_time: Some(convert::timestamp(exp)),
            refresh_token: crate::sessions::rules::refresh_token_string(session, &next),
        })
    }

    /// Ends the caller's session.
    pub async fn logout(&self, call: &Call) -> Result<()> {
        let caller = &call.principal;
        let now = self.clock.now();
        let mut tx = crm_kit::db::begin(&self.pool).await?;
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
}
