//! Who is calling, and from where: the [`Principal`] the auth layer verified, with what the
//! audit trail records about the call.

use crate::{auth::Principal, error::Error};

/// The verified caller of `request`. Every non-public method has one; its absence means the
/// auth layer was bypassed, which is refused.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Principal, Error> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("no verified caller".into()))
}

/// One call as the audit trail sees it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The verified caller.
    pub principal: Principal,
    /// `package.Service/Method`.
    pub method: String,
    /// The peer address.
    pub peer: String,
    /// The client's user agent.
    pub user_agent: String,
    /// The trace the call belongs to.
    pub trace_id: String,
    /// Made by the platform itself, not through the API.
    pub system: bool,
}

impl Call {
    /// A call made by the platform itself (tools, demo data), attributed to `subject`.
    pub fn system(subject: &str, method: &str) -> Self {
        Self {
            principal: Principal::system(subject),
            method: method.to_string(),
            peer: String::new(),
            user_agent: "crm".to_string(),
            trace_id: crate::telemetry::current_trace_id().unwrap_or_default(),
            system: true,
        }
    }
}

/// Where a call came from.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The peer address.
    pub peer: String,
    /// The client's user agent (at most 200 characters).
    pub user_agent: String,
}

impl Origin {
    /// Where `request` came from.
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        Self {
            peer: request
                .remote_addr()
                .map(|a| a.to_string())
                .unwrap_or_default(),
            user_agent: request
                .metadata()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect(),
        }
    }

    /// The audit view of a call from here by `principal` to `method`.
    pub fn call(&self, principal: Principal, method: &str) -> Call {
        Call {
            principal,
            method: method.to_string(),
            peer: self.peer.clone(),
            user_agent: self.user_agent.clone(),
            trace_id: crate::telemetry::current_trace_id().unwrap_or_default(),
            system: false,
        }
    }
}

/// The call behind `request`, for methods that change something.
pub fn call<T>(request: &tonic::Request<T>) -> Result<Call, Error> {
    let method = request
        .extensions()
        .get::<crate::auth::CalledMethod>()
        .map(|m| m.0.as_str())
        .unwrap_or_default();
    Ok(Origin::of(request).call(caller(request)?, method))
}
