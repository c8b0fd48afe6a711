//! The rules the complaints capabilities share: the `[complaints]` settings — the clocks'
//! lengths, the satisfaction that counts as satisfied, and the responsible departments (a
//! reference list: findings name one, routing and statistics use it) — and the stored names of
//! the enums.

use std::collections::BTreeMap;

use crm_kit::{Role, auth::Principal};
use crm_proto::complaints::v1::{self as pb, ComplaintKind};
use serde::Deserialize;

/// A responsible department.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Department {
    /// Its code, e.g. `product`.
    pub code: String,
    /// Its Chinese name.
    pub name_zh: String,
    /// Its English name.
    pub name_en: String,
    /// The roles whose users act for it.
    pub roles: Vec<String>,
}

impl Department {
    /// Whether `caller` acts for the department (an admin acts for every one).
    pub fn has_member(&self, caller: &Principal) -> bool {
        caller.has(Role::Admin) || self.roles.iter().any(|r| caller.has_role(r))
    }

    /// The API form.
    pub fn to_proto(&self) -> pb::Department {
        pb::Department {
            code: self.code.clone(),
            name_zh: self.name_zh.clone(),
            name_en: self.name_en.clone(),
            roles: self.roles.clone(),
        }
    }
}

/// The `[complaints]` settings.
#[derive(Debug, Clone)]
pub struct ComplaintSettings {
    /// The fraction of a clock at which its warning fires.
    pub warning_at: f64,
    /// Business hours the CRM lead has to approve or send back a submitted plan.
    pub approval_hours: i64,
    /// The lowest follow-up satisfaction that counts as satisfied.
    pub satisfied_from: i32,
    /// Where a product complaint is fed back to.
    pub product_department: String,
    resolution_hours: BTreeMap<String, i64>,
    departments: Vec<Department>,
}

/// The stored name of an enum value: its protobuf name without the enum's `prefix`.
pub fn stored(name: &'static str, prefix: &str) -> &'static str {
    name.trim_start_matches(prefix)
}

/// The stored name of a kind (`PRODUCT`, …), lowercased as the settings name it.
pub fn kind_key(kind: ComplaintKind) -> String {
    stored(kind.as_str_name(), "COMPLAINT_KIND_").to_lowercase()
}

impl ComplaintSettings {
    /// Reads `[complaints]`; a bad fraction, a missing kind, an empty or repeated department,
    /// or a product department that is not configured stops the start.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Section {
            warning_at: f64,
            approval_hours: i64,
            satisfied_from: i32,
            product_department: String,
            resolution_hours: BTreeMap<String, i64>,
            departments: Vec<Department>,
        }
        let s: Section = settings.section("complaints")?;
        if !(0.0..1.0).contains(&s.warning_at) {
            anyhow::bail!("complaints.warning_at must be in [0, 1)");
        }
        if s.approval_hours < 1 {
            anyhow::bail!("complaints.approval_hours must be at least 1");
        }
        if !(1..=5).contains(&s.satisfied_from) {
            anyhow::bail!("complaints.satisfied_from must be 1 … 5");
        }
        for kind in ["product", "service", "staff"] {
            match s.resolution_hours.get(kind) {
                Some(h) if *h >= 1 => {}
                _ => anyhow::bail!("complaints.resolution_hours.{kind} must be at least 1"),
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for d in &s.departments {
            if d.code.trim().is_empty() || d.roles.is_empty() {
                anyhow::bail!("every complaints.departments entry needs a code and roles");
            }
            if !seen.insert(d.code.as_str()) {
                anyhow::bail!("complaints.departments: {:?} is listed twice", d.code);
            }
        }
        if !seen.contains(s.product_department.as_str()) {
            anyhow::bail!(
                "complaints.product_department {:?} is not a configured department",
                s.product_department
            );
        }
        Ok(Self {
            warning_at: s.warning_at,
            approval_hours: s.approval_hours,
            satisfied_from: s.satisfied_from,
            product_department: s.product_department,
            resolution_hours: s.resolution_hours,
            departments: s.departments,
        })
    }

    /// The resolution target of a complaint of `kind`, in business time.
    pub fn resolution(&self, kind: ComplaintKind) -> time::Duration {
        time::Duration::hours(*self.resolution_hours.get(&kind_key(kind)).unwrap_or(&72))
    }

    /// The department with `code`, if configured.
    pub fn department(&self, code: &str) -> Option<&Department> {
        self.departments.iter().find(|d| d.code == code)
    }

    /// Every department, as configured.
    pub fn departments(&self) -> &[Department] {
        &self.departments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_load_with_every_kind_and_the_product_department() {
        let settings = crm_kit::Settings::load_with(None, &[]).unwrap();
        let s = ComplaintSettings::from_settings(&settings).unwrap();
        assert_eq!(
            s.resolution(ComplaintKind::Product),
            time::Duration::hours(120)
        );
        assert!(s.department(&s.product_department).is_some());
        assert!(s.department("nobody").is_none());
        let officer = Principal {
            roles: vec!["tech_center".into()],
            ..Principal::system("u1")
        };
        assert!(s.department("product").unwrap().has_member(&officer));
        assert!(!s.department("sales").unwrap().has_member(&officer));
    }
}
