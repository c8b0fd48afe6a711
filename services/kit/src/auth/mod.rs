//! Authentication and authorisation, written once for every server.
//!
//! The gateway signs short-lived Ed25519 JWTs ([`Signer`]); every server verifies them again
//! ([`Verifier`]), checks the caller's roles against the per-method policy ([`Policy`], default
//! deny) in a tower layer ([`Security::layer`]) and hands the [`Principal`] to the handlers through
//! the request extensions. A call straight to a service gains nothing without a valid token.
//!
//! The parts: [`tokens`] signs and verifies, [`revocation`] keeps every server's list of revoked
//! sessions and the policy overrides in step through Redis, [`policy`] says who may call what,
//! [`security`] is the tower layer that applies them.

mod policy;
mod revocation;
mod security;
mod tokens;

pub use policy::{Access, Policy, check_pattern};
pub use revocation::{policy_key, revoked_sessions_key, spawn_poller};
pub use security::{CalledMethod, Security};
pub use tokens::{Signer, Verifier, generate_signing_key, public_key};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The names of the roles of the domain brief (see [`crate::role::Role`]).
pub const ROLES: &[&str] = &crate::role::NAMES;

/// The `[auth]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    /// The `iss` of every token.
    pub issuer: String,
    /// Base64 of the 32-byte Ed25519 seed the gateway signs with; empty when this process
    /// does not sign.
    pub signing_key: String,
    /// The key id (`kid`) of the signing key.
    pub signing_key_id: String,
    /// Key id → base64 Ed25519 public key, accepted in addition to the signing key's own.
    pub verification_keys: BTreeMap<String, String>,
    /// Lifetime of an access token.
    pub access_ttl_s: u64,
    /// Lifetime of a refresh token (a session).
    pub refresh_ttl_s: u64,
    /// Default lifetime of a new API key.
    pub api_key_ttl_days: u32,
    /// How often each server reloads the revoked sessions from Redis.
    pub revocation_poll_ms: u64,
    /// Methods callable without a token.
    pub public_methods: Vec<String>,
    /// Methods callable with any valid token.
    pub authenticated_methods: Vec<String>,
    /// Role → methods it may call.
    pub policy: BTreeMap<String, Vec<String>>,
}

/// Whether a caller is a person or a partner system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// An internal user who logged in with a password.
    User,
    /// A partner system with an API key.
    ApiKey,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user id or API key id.
    pub sub: String,
    /// The display name.
    pub name: String,
    /// User or API key.
    pub kind: PrincipalKind,
    /// The caller's roles.
    pub roles: Vec<String>,
    /// The sales region of a sales rep or manager; empty otherwise.
    #[serde(default)]
    pub region: String,
    /// The partner organisation a partner belongs to; empty otherwise.
    #[serde(default)]
    pub partner: String,
    /// The session (refresh token) this token belongs to; revoking it revokes the token.
    pub sid: String,
    /// Issuer.
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user id or API key id.
    pub subject: String,
    /// The display name.
    pub name: String,
    /// User or API key.
    pub kind: PrincipalKind,
    /// The caller's roles.
    pub roles: Vec<String>,
    /// The sales region, for region-scoped roles.
    pub region: String,
    /// The partner organisation, for partners.
    pub partner_id: String,
    /// The session id.
    pub session_id: String,
}

impl Principal {
    /// The platform itself acting as an administrator (tools, demo data, migrations); never
    /// derived from a request.
    pub fn system(subject: &str) -> Self {
        Self {
            subject: subject.to_string(),
            name: subject.to_string(),
            kind: PrincipalKind::User,
            roles: vec!["admin".to_string()],
            region: String::new(),
            partner_id: String::new(),
            session_id: String::new(),
        }
    }

    /// Whether the caller has `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    /// Whether the caller holds `role`.
    pub fn has(&self, role: crate::Role) -> bool {
        self.has_role(role.as_str())
    }

    /// Whether the caller holds any of `roles`.
    pub fn has_any(&self, roles: &[crate::Role]) -> bool {
        roles.iter().any(|r| self.has(*r))
    }
}

impl From<Claims> for Principal {
    fn from(c: Claims) -> Self {
        Self {
            subject: c.sub,
            name: c.name,
            kind: c.kind,
            roles: c.roles,
            region: c.region,
            partner_id: c.partner,
            session_id: c.sid,
        }
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub(crate) fn settings(seed: &str) -> AuthSettings {
        let mut s = crate::Settings::load(None).unwrap().auth;
        s.signing_key = seed.to_string();
        s
    }

    pub(crate) fn claims(sub: &str, roles: &[&str], exp_in: i64) -> Claims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        Claims {
            sub: sub.into(),
            name: sub.into(),
            kind: PrincipalKind::User,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: String::new(),
            partner: String::new(),
            sid: format!("s-{sub}"),
            iss: "crm".into(),
            iat: now,
            exp: now + exp_in,
        }
    }
}
