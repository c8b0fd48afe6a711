//! Who may be a user (G-2): a checked CreateUser, and the roles a user or key may hold.

use crm_kit::{
    Error, Role, Violations,
    auth::ROLES,
    text::{self, Lines},
};
use crm_proto::gateway::v1 as pb;

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

pub(crate) fn check_roles(
    v: &mut Violations,
    field: &str,
    roles: &[String],
    partner_id: &str,
) -> Vec<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
