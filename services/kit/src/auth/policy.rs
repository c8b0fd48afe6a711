//! The per-method policy: who may call which method, default deny.

use std::collections::{BTreeMap, HashMap};

use super::{AuthSettings, Principal, ROLES};

#[derive(Debug, Clone)]
enum Pattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl Pattern {
    fn parse(s: &str) -> Self {
        match s.strip_suffix('*') {
            Some("") => Self::Any,
            Some(prefix) => Self::Prefix(prefix.to_string()),
            None => Self::Exact(s.to_string()),
        }
    }

    fn matches(&self, method: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Prefix(p) => method.starts_with(p.as_str()),
            Self::Exact(m) => m == method,
        }
    }
}

/// Who may call a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Anyone with a valid token.
    Authenticated,
    /// Only roles the policy grants it.
    Roles,
}

/// The per-method policy: default deny.
#[derive(Debug, Clone)]
pub struct Policy {
    public: Vec<Pattern>,
    authenticated: Vec<Pattern>,
    roles: HashMap<String, Vec<Pattern>>,
    sources: BTreeMap<String, Vec<String>>,
}

/// Checks a method pattern: `package.Service/Method`, `package.Service/Prefix*` or `*`.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern == "*" {
        return Ok(());
    }
    let ok = match pattern.split_once('/') {
        Some((service, method)) => {
            service.contains('.')
                && !service.starts_with('.')
                && service
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                && method
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '*')
                && method.find('*').is_none_or(|i| i == method.len() - 1)
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{pattern:?} is not a method pattern (package.Service/Method, package.Service/*, *)"
        ))
    }
}

impl Policy {
    /// The policy of `settings`; unknown roles are an error.
    pub fn new(settings: &AuthSettings) -> anyhow::Result<Self> {
        Self::with_overrides(settings, &BTreeMap::new())
    }

    /// The policy of `settings` with some roles' methods replaced by `overrides`.
    pub fn with_overrides(
        settings: &AuthSettings,
        overrides: &BTreeMap<String, Vec<String>>,
    ) -> anyhow::Result<Self> {
        let parse = |v: &[String]| v.iter().map(|s| Pattern::parse(s)).collect::<Vec<_>>();
        let mut sources = settings.policy.clone();
        for (role, methods) in overrides {
            sources.insert(role.clone(), methods.clone());
        }
        let mut roles = HashMap::new();
        for (role, methods) in &sources {
            anyhow::ensure!(
                ROLES.contains(&role.as_str()),
                "auth.policy names an unknown role {role:?}"
            );
            for m in methods {
                check_pattern(m).map_err(|e| anyhow::anyhow!("auth.policy.{role}: {e}"))?;
            }
            roles.insert(role.clone(), parse(methods));
        }
        Ok(Self {
            public: parse(&settings.public_methods),
            authenticated: parse(&settings.authenticated_methods),
            roles,
            sources,
        })
    }

    /// Each role's method patterns, by role (every known role, empty when it has none).
    pub fn roles(&self) -> BTreeMap<String, Vec<String>> {
        ROLES
            .iter()
            .map(|r| {
                (
                    r.to_string(),
                    self.sources.get(*r).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Who may call `method` (`package.Service/Method`).
    pub fn access(&self, method: &str) -> Access {
        if self.public.iter().any(|p| p.matches(method)) {
            Access::Public
        } else if self.authenticated.iter().any(|p| p.matches(method)) {
            Access::Authenticated
        } else {
            Access::Roles
        }
    }

    /// The roles the policy lets call `method`, sorted (all of them may call a public or an
    /// authenticated method, which this does not say: see [`Policy::access`]).
    pub fn roles_allowed(&self, method: &str) -> Vec<String> {
        let mut roles: Vec<String> = self
            .roles
            .iter()
            .filter(|(_, patterns)| patterns.iter().any(|p| p.matches(method)))
            .map(|(role, _)| role.clone())
            .collect();
        roles.sort();
        roles
    }

    /// Whether `principal` may call `method`.
    pub fn allows(&self, principal: &Principal, method: &str) -> bool {
        match self.access(method) {
            Access::Public | Access::Authenticated => true,
            Access::Roles => principal
                .roles
                .iter()
                .filter_map(|r| self.roles.get(r))
                .any(|patterns| patterns.iter().any(|p| p.matches(method))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{PrincipalKind, testing::settings};

    #[test]
    fn policy_is_default_deny() {
        let policy = Policy::new(&settings("")).unwrap();
        let p = |roles: &[&str]| Principal {
            subject: "u".into(),
            name: "u".into(),
            kind: PrincipalKind::User,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: String::new(),
            partner_id: String::new(),
            session_id: String::new(),
        };
        let delete = "crm.customers.v1.CustomerService/DeleteCustomer";
        assert!(policy.allows(&p(&["admin"]), delete));
        assert!(policy.allows(&p(&["sales_manager"]), delete));
        assert!(!policy.allows(&p(&["sales_rep"]), delete));
        assert!(!policy.allows(&p(&[]), "crm.customers.v1.CustomerService/GetCustomer"));
        assert!(!policy.allows(
            &p(&["partner"]),
            "crm.customers.v1.CustomerService/GetCustomer"
        ));
        assert_eq!(policy.access("grpc.health.v1.Health/Check"), Access::Public);
        assert_eq!(
            policy.access("crm.gateway.v1.AuthService/WhoAmI"),
            Access::Authenticated
        );
        assert!(!policy.allows(&p(&["sales_rep"]), "crm.unknown.v1.X/Y"));
    }
}
