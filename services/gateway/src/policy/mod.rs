//! The role policy (G-3): which methods each role may call, the configured defaults with an
//! admin's overrides, published so every service applies a change at once; and each service's
//! audit trail, read through the gateway.

pub mod rules;
mod store;

use crm_kit::{Error, Result, audit, context::Call, idempotency::RequestKey};
use crm_proto::gateway::v1 as pb;

use crm_kit::convert;
use sqlx::PgPool;

use crate::service::Identity;

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
