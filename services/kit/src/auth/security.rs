//! What every server shares: the verifier and the policy, applied in a tower layer.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
};

use tonic::Status;

use super::{Access, AuthSettings, Policy, Principal, Verifier, spawn_poller};
use crate::error::Error;

/// What every server shares to check callers.
#[derive(Clone)]
pub struct Security {
    /// Token verification.
    pub verifier: Arc<Verifier>,
    policy: Arc<RwLock<Arc<Policy>>>,
}

impl Security {
    /// The verifier and policy of `auth`, without following Redis (tools).
    pub fn new(auth: &AuthSettings) -> anyhow::Result<Self> {
        Ok(Self {
            verifier: Arc::new(Verifier::new(auth)?),
            policy: Arc::new(RwLock::new(Arc::new(Policy::new(auth)?))),
        })
    }

    /// Like [`Security::new`], following the revoked sessions and policy overrides in Redis
    /// until `shutdown`.
    pub fn start(
        auth: &AuthSettings,
        redis: &crate::redis::RedisSettings,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Self> {
        let security = Self::new(auth)?;
        spawn_poller(security.clone(), auth.clone(), redis.clone(), shutdown);
        Ok(security)
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().expect("policy lock").clone()
    }

    /// Replaces the policy with the configured one plus `overrides`.
    pub fn apply_overrides(
        &self,
        settings: &AuthSettings,
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<()> {
        let policy = Policy::with_overrides(settings, overrides)?;
        *self.policy.write().expect("policy lock") = Arc::new(policy);
        Ok(())
    }

    /// The tower layer that authenticates and authorises every call.
    pub fn layer(&self) -> crate::guard::GuardLayer<Self> {
        crate::guard::GuardLayer::new(self.clone())
    }

    /// Checks one call: its method and its `authorization` header. `Ok(None)` for a public
    /// method called without a token.
    pub fn check(
        &self,
        method: &str,
        authorization: Option<&str>,
    ) -> Result<Option<Principal>, Error> {
        let policy = self.policy();
        let access = policy.access(method);
        let token = authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        let principal = match (token, &access) {
            (None, Access::Public) => return Ok(None),
            (None, _) => return Err(Error::Unauthenticated("missing bearer token".into())),
            (Some(token), Access::Public) => self.verifier.verify(token).ok(),
            (Some(token), _) => Some(self.verifier.verify(token)?),
        };
        if let Some(p) = &principal
            && !policy.allows(p, method)
        {
            return Err(Error::PermissionDenied {
                permission: method.to_string(),
            });
        }
        Ok(principal)
    }
}

/// The called method (`package.Service/Method`), put into every request's extensions by the
/// auth layer for the audit trail.
#[derive(Debug, Clone)]
pub struct CalledMethod(pub String);

impl crate::guard::Guard for Security {
    /// Authenticates and authorises the call; the caller and the method go into the request's
    /// extensions for the handlers and the audit trail.
    fn check<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        let method = request.uri().path().trim_start_matches('/').to_string();
        let authorization = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        match Security::check(self, &method, authorization) {
            Ok(principal) => {
                if let Some(p) = principal {
                    tracing::Span::current().record("enduser.id", p.subject.as_str());
                    request.extensions_mut().insert(p);
                }
                request.extensions_mut().insert(CalledMethod(method));
                Ok(())
            }
            Err(error) => {
                tracing::info!(method, reason = %error, "call refused");
                Err(error.into())
            }
        }
    }
}
