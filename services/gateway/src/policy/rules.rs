//! The checked SetRolePolicy (G-3).

use crm_kit::{Error, Violations, auth::ROLES};
use crm_proto::gateway::v1 as pb;

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
