//! The API keys' rules (G-1): a checked CreateApiKey, and how a key looks.

use crm_kit::{
    Error, Role, Violations,
    text::{self, Lines},
};
use crm_proto::gateway::v1 as pb;
use uuid::Uuid;

use crate::users::rules::check_roles;

/// The prefix of every API key, so leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "crmk";

/// A validated new API key.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// What it is for.
    pub name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Partner organisation.
    pub partner_id: String,
    /// Lifetime in days.
    pub ttl_days: u32,
}

impl NewApiKey {
    /// Validates a CreateApiKey request; `default_ttl` applies when it gives 0 days.
    pub fn parse(r: &pb::CreateApiKeyRequest, default_ttl: u32) -> Result<Self, Error> {
        let mut v = Violations::new();
        let default = pb::ApiKey::default();
        let k = r.api_key.as_ref().unwrap_or(&default);
        let name = k.name.trim().to_string();
        text::require(&mut v, "api_key.name", &name, 100, Lines::One);
        text::check(&mut v, "api_key.partner_id", &k.partner_id, 100, Lines::One);
        let roles = check_roles(&mut v, "api_key.roles", &k.roles, &k.partner_id);
        if roles.iter().any(|r| r == Role::Admin.as_str()) {
            v.add("api_key.roles", "an API key cannot be an admin");
        }
        if !(0..=3650).contains(&r.ttl_days) {
            v.add("ttl_days", "must be between 0 and 3650");
        }
        v.finish()?;
        Ok(Self {
            name,
            roles,
            partner_id: k.partner_id.trim().to_string(),
            ttl_days: if r.ttl_days == 0 {
                default_ttl
            } else {
                r.ttl_days as u32
            },
        })
    }
}

/// An API key as given to its holder: `crmk_<key id>_<secret>`.
pub fn api_key_string(id: Uuid, secret: &str) -> String {
    format!("{API_KEY_PREFIX}_{}_{secret}", id.simple())
}

/// Splits an API key into its id and secret.
pub fn parse_api_key(key: &str) -> Option<(Uuid, &str)> {
    let rest = key.trim().strip_prefix(API_KEY_PREFIX)?.strip_prefix('_')?;
    let (id, secret) = rest.split_once('_')?;
    Some((Uuid::parse_str(id).ok()?, secret))
}

/// The session id that stands for every token of an API key, so revoking the key revokes them.
pub fn api_key_session(id: Uuid) -> String {
    format!("key:{id}")
}
