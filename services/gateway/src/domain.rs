//! The gateway's rules: who may be a user or hold a key, and how secrets look. No I/O here.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use crm_kit::{
    Error, Role, Violations,
    auth::ROLES,
    text::{self, Lines},
};
use crm_proto::gateway::v1 as pb;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The prefix of every API key, so leaked keys are easy to recognise and scan for.
pub const API_KEY_PREFIX: &str = "crmk";

/// A validated new user.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Sales region.
    pub region: String,
    /// Partner organisation.
    pub partner_id: String,
    /// E-mail for notifications.
    pub email: String,
    /// Mobile phone for urgent notifications.
    pub phone: String,
    /// `zh` or `en`.
    pub language: String,
    /// The password, to be hashed.
    pub password: String,
}

fn check_roles(v: &mut Violations, field: &str, roles: &[String], partner_id: &str) -> Vec<String> {
    if roles.is_empty() {
        v.add(field, "at least one role is required");
    }
    let mut out: Vec<String> = Vec::new();
    for (i, role) in roles.iter().enumerate() {
        if !ROLES.contains(&role.as_str()) {
            v.add(
                format!("{field}[{i}]"),
                format!("unknown role {role:?}; roles: {}", ROLES.join(", ")),
            );
        } else if !out.contains(role) {
            out.push(role.clone());
        }
    }
    if out.iter().any(|r| r == Role::Partner.as_str()) && partner_id.trim().is_empty() {
        v.add("partner_id", "is required for the partner role");
    }
    out
}

impl NewUser {
    /// Validates a CreateUser request.
    pub fn parse(r: &pb::CreateUserRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let default = pb::User::default();
        let u = r.user.as_ref().unwrap_or(&default);
        let username = u.username.trim().to_string();
        if !(3..=64).contains(&username.len())
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            v.add(
                "user.username",
                "must be 3 to 64 letters, digits, '.', '_' or '-'",
            );
        }
        let display_name = u.display_name.trim().to_string();
        text::check(&mut v, "user.display_name", &display_name, 100, Lines::One);
        text::check(&mut v, "user.region", &u.region, 64, Lines::One);
        text::check(&mut v, "user.partner_id", &u.partner_id, 100, Lines::One);
        let roles = check_roles(&mut v, "user.roles", &u.roles, &u.partner_id);
        let email = crm_kit::email::check(&mut v, "user.email", &u.email)
            .map(|e| e.as_str().to_string())
            .unwrap_or_default();
        let phone = crm_kit::phone::check(&mut v, "user.phone", &u.phone)
            .map(|p| p.as_str().to_string())
            .unwrap_or_default();
        let language = match u.language.as_str() {
            "" => "zh".to_string(),
            l @ ("zh" | "en") => l.to_string(),
            _ => {
                v.add("user.language", "must be \"zh\" or \"en\"");
                String::new()
            }
        };
        if r.password.chars().count() < 10 {
            v.add("password", "must be at least 10 characters");
        } else if r.password.len() > 1024 {
            v.add("password", "must be at most 1024 bytes");
        }
        v.finish()?;
        Ok(Self {
            display_name: if display_name.is_empty() {
                username.clone()
            } else {
                display_name
            },
            username,
            roles,
            region: u.region.trim().to_string(),
            partner_id: u.partner_id.trim().to_string(),
            email,
            phone,
            language,
            password: r.password.clone(),
        })
    }
}

/// Validates the roles of SetUserRoles.
pub fn parse_roles(roles: &[String], partner_id: &str) -> Result<Vec<String>, Error> {
    let mut v = Violations::new();
    let roles = check_roles(&mut v, "roles", roles, partner_id);
    v.finish()?;
    Ok(roles)
}

/// Validates a SetRolePolicy request: a known role and well-formed method patterns.
pub fn parse_role_policy(r: &pb::SetRolePolicyRequest) -> Result<(String, Vec<String>), Error> {
    let mut v = Violations::new();
    let role = r.role.trim().to_string();
    if !ROLES.contains(&role.as_str()) {
        v.add(
            "role",
            format!("unknown role {role:?}; roles: {}", ROLES.join(", ")),
        );
    }
    let mut methods: Vec<String> = Vec::new();
    for (i, m) in r.methods.iter().enumerate() {
        let m = m.trim().to_string();
        if let Err(e) = crm_kit::auth::check_pattern(&m) {
            v.add(format!("methods[{i}]"), e);
        } else if !methods.contains(&m) {
            methods.push(m);
        }
    }
    v.finish()?;
    Ok((role, methods))
}

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

/// A fresh random secret, base64url.
pub fn secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
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

/// A refresh token: `<session id>.<secret>`.
pub fn refresh_token_string(session: Uuid, secret: &str) -> String {
    format!("{}.{secret}", session.simple())
}

/// Splits a refresh token into its session id and secret.
pub fn parse_refresh_token(token: &str) -> Option<(Uuid, &str)> {
    let (id, secret) = token.trim().split_once('.')?;
    Some((Uuid::parse_str(id).ok()?, secret))
}

/// Compares two hashes in constant time.
pub fn same_hash(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session id that stands for every token of an API key, so revoking the key revokes them.
pub fn api_key_session(id: Uuid) -> String {
    format!("key:{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_and_refresh_tokens_round_trip() {
        let id = Uuid::now_v7();
        let s = secret();
        assert_eq!(s.len(), 43);
        let key = api_key_string(id, &s);
        assert_eq!(parse_api_key(&key), Some((id, s.as_str())));
        assert_eq!(parse_api_key("nope"), None);
        let token = refresh_token_string(id, &s);
        assert_eq!(parse_refresh_token(&token), Some((id, s.as_str())));
        assert!(same_hash(&hash_secret(&s), &hash_secret(&s)));
        assert!(!same_hash(&hash_secret(&s), &hash_secret("x")));
    }

    #[test]
    fn users_are_validated() {
        let r = pb::CreateUserRequest {
            request_id: "r".into(),
            user: Some(pb::User {
                username: "a b".into(),
                roles: vec!["wizard".into(), "partner".into()],
                ..Default::default()
            }),
            password: "short".into(),
        };
        let Err(Error::InvalidArgument(v)) = NewUser::parse(&r) else {
            panic!("expected invalid")
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["user.username", "user.roles[0]", "partner_id", "password"]
        );
    }
}
