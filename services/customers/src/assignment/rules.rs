//! The assignment rules (C-3), with no I/O: configured rules by region and industry, the
//! fairest sales rep by load, what counts in a load, and a checked AssignCustomers.

use crm_kit::{Error, Violations};
use crm_proto::customers::v1::{self as pb, Stage, Validity};

use crate::rules::{known, name_key, text, text_lines};

/// A configured assignment rule (`[[customers.assignment_rules]]`, C-3): customers of `region`
/// (and, if given, of `industry`) go to `owner`.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub struct AssignmentRule {
    /// The customers' region.
    pub region: String,
    /// The customers' industry (compared normalised); empty: any.
    #[serde(default)]
    pub industry: String,
    /// The sales rep's user id.
    pub owner: String,
}

impl AssignmentRule {
    /// Whether the rule covers a customer of `region` and `industry`.
    pub fn matches(&self, region: &str, industry: &str) -> bool {
        self.region == region
            && (self.industry.is_empty() || name_key(&self.industry) == name_key(industry))
    }

    /// How the rule reads in an owner change.
    pub fn describe(&self) -> String {
        if self.industry.is_empty() {
            format!("rule: region {} → {}", self.region, self.owner)
        } else {
            format!(
                "rule: region {}, industry {} → {}",
                self.region, self.industry, self.owner
            )
        }
    }
}

/// Whether a customer counts in its owner's load: still being developed (not signed, not
/// invalid).
pub fn is_open(c: &pb::Customer) -> bool {
    c.stage() != Stage::Signed && c.validity() != Validity::Invalid
}

/// The sales rep with the fewest open customers (ties: the smallest id).
pub fn fairest(load: &std::collections::BTreeMap<String, i64>) -> Option<(String, i64)> {
    load.iter()
        .min_by_key(|(id, n)| (**n, (*id).clone()))
        .map(|(id, n)| (id.clone(), *n))
}

/// A checked AssignCustomers.
#[derive(Debug, Clone)]
pub struct AssignInput {
    /// The customers, without repeats, in the order asked.
    pub ids: Vec<uuid::Uuid>,
    /// How.
    pub mode: pb::AssignmentMode,
    /// For TO_OWNER.
    pub owner_id: String,
    /// Why.
    pub reason: String,
}

impl AssignInput {
    /// Checks the request.
    pub fn parse(r: &pb::AssignCustomersRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        if r.customer_ids.is_empty() || r.customer_ids.len() > 1000 {
            v.add("customer_ids", "must name 1 to 1000 customers");
        }
        let mut ids = Vec::new();
        for (i, id) in r.customer_ids.iter().enumerate() {
            match uuid::Uuid::parse_str(id) {
                Ok(id) if !ids.contains(&id) => ids.push(id),
                Ok(_) => {}
                Err(_) => v.add(format!("customer_ids[{i}]"), "is not a valid id"),
            }
        }
        let mode: Option<pb::AssignmentMode> = known(&mut v, "mode", r.mode, true);
        let owner_id = text(&mut v, "owner_id", &r.owner_id, 0, 100);
        match mode {
            Some(pb::AssignmentMode::ToOwner) if owner_id.is_empty() => {
                v.add("owner_id", "is required for TO_OWNER");
            }
            Some(pb::AssignmentMode::Auto) if !owner_id.is_empty() => {
                v.add(
                    "owner_id",
                    "must be empty for AUTO (the rules and the loads choose)",
                );
            }
            _ => {}
        }
        let reason = text_lines(&mut v, "reason", &r.reason, 0, 1000);
        v.finish()?;
        Ok(Self {
            ids,
            mode: mode.expect("checked"),
            owner_id,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_rules_match_region_and_industry_and_fairness_breaks_ties_by_id() {
        let rule = AssignmentRule {
            region: "华东".into(),
            industry: "Software".into(),
            owner: "rep.wu".into(),
        };
        assert!(rule.matches("华东", "software"));
        assert!(rule.matches("华东", " SOFTWARE "));
        assert!(!rule.matches("华东", "logistics"));
        assert!(!rule.matches("华北", "software"));
        let any = AssignmentRule {
            industry: String::new(),
            ..rule.clone()
        };
        assert!(any.matches("华东", "logistics"));
        assert_eq!(
            rule.describe(),
            "rule: region 华东, industry Software → rep.wu"
        );
        let load: std::collections::BTreeMap<String, i64> = [
            ("rep.b".to_string(), 1),
            ("rep.a".to_string(), 1),
            ("rep.c".to_string(), 3),
        ]
        .into_iter()
        .collect();
        assert_eq!(fairest(&load), Some(("rep.a".to_string(), 1)));
        assert_eq!(fairest(&Default::default()), None);
    }
}
