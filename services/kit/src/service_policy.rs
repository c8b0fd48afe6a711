//! The tier policy of C-8, one configuration table (`[service_policy]`) that every service
//! reads: the tickets service its response and resolution times, the customers service its
//! visit quota and service-report cadence, both whether the tier has a dedicated engineer.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The tiers, as the customers service names them.
pub const TIERS: &[&str] = &["vip", "core", "potential", "ordinary"];

/// One tier's policy.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct TierPolicy {
    /// Business minutes to the first response to a ticket.
    pub response_minutes: i64,
    /// Business hours to a ticket's resolution.
    pub resolution_hours: i64,
    /// On-site visits a year; 0 means "by project" (no fixed quota).
    pub visits_per_year: i64,
    /// Months between service reports to the customer.
    pub report_every_months: i64,
    /// Whether the customer has a dedicated engineer: on-site work goes to the customer's usual
    /// engineer first.
    pub dedicated_engineer: bool,
}

/// The policy of every tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePolicies(BTreeMap<String, TierPolicy>);

impl ServicePolicies {
    /// The `[service_policy]` table, checked: every tier present, durations positive.
    pub fn from_settings(settings: &crate::Settings) -> anyhow::Result<Self> {
        let table: BTreeMap<String, TierPolicy> = settings.section("service_policy")?;
        for tier in TIERS {
            let p = table
                .get(*tier)
                .ok_or_else(|| anyhow::anyhow!("service_policy.{tier} is missing"))?;
            if p.response_minutes < 1
                || p.resolution_hours < 1
                || p.visits_per_year < 0
                || p.report_every_months < 1
            {
                anyhow::bail!(
                    "service_policy.{tier}: response, resolution and report cadence must be positive, visits not negative"
                );
            }
        }
        Ok(Self(table))
    }

    /// The policy of `tier` (the ordinary one for a tier not known or not classified).
    pub fn of(&self, tier: &str) -> TierPolicy {
        self.0
            .get(tier)
            .or_else(|| self.0.get("ordinary"))
            .copied()
            .expect("checked at start")
    }
}
