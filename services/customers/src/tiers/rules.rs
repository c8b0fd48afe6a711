//! The tier rules (C-7): classification by the configured thresholds, the tier in force when a
//! manager overrides it, and the checked SetTierOverride.

use crm_kit::{Error, Violations};
use crm_proto::customers::v1::{self as pb, Tier};

use crate::rules::{known, text_lines};

/// The tier thresholds of C-7 (`[customers.tiers]`), in whole CNY; a customer is in a tier when
/// an amount is strictly above its threshold.
#[derive(Debug, Clone, Copy, serde::Deserialize, PartialEq, Eq)]
pub struct TierRules {
    /// VIP above this cumulative investment.
    pub vip_investment_cny: i64,
    /// VIP above this annual service fee.
    pub vip_annual_fee_cny: i64,
    /// Core above this cumulative investment.
    pub core_investment_cny: i64,
    /// Core above this annual service fee.
    pub core_annual_fee_cny: i64,
}

/// What a customer's tier is computed from (C-7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TierInputs {
    /// Cumulative IT investment with us.
    pub investment_cny: i64,
    /// Annual service fee.
    pub annual_service_fee_cny: i64,
    /// Industry reference or strategic account.
    pub reference_account: bool,
    /// Flagged potential by sales.
    pub potential_flag: bool,
}

impl TierRules {
    /// The section from the loaded configuration, checked: VIP thresholds above core ones,
    /// none negative.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        #[derive(serde::Deserialize)]
        struct Section {
            tiers: TierRules,
        }
        let rules = settings.section::<Section>("customers")?.tiers;
        if rules.core_investment_cny < 0
            || rules.core_annual_fee_cny < 0
            || rules.vip_investment_cny < rules.core_investment_cny
            || rules.vip_annual_fee_cny < rules.core_annual_fee_cny
        {
            anyhow::bail!(
                "customers.tiers: thresholds must not be negative and VIP's must not be below core's"
            );
        }
        Ok(rules)
    }

    /// The tier the inputs give, and the rule that gave it.
    pub fn classify(&self, i: &TierInputs) -> (Tier, String) {
        if i.reference_account {
            return (Tier::Vip, "industry reference or strategic account".into());
        }
        if i.investment_cny > self.vip_investment_cny {
            return (
                Tier::Vip,
                format!(
                    "investment {} CNY > {}",
                    i.investment_cny, self.vip_investment_cny
                ),
            );
        }
        if i.annual_service_fee_cny > self.vip_annual_fee_cny {
            return (
                Tier::Vip,
                format!(
                    "annual service fee {} CNY > {}",
                    i.annual_service_fee_cny, self.vip_annual_fee_cny
                ),
            );
        }
        if i.investment_cny > self.core_investment_cny {
            return (
                Tier::Core,
                format!(
                    "investment {} CNY > {}",
                    i.investment_cny, self.core_investment_cny
                ),
            );
        }
        if i.annual_service_fee_cny > self.core_annual_fee_cny {
            return (
                Tier::Core,
                format!(
                    "annual service fee {} CNY > {}",
                    i.annual_service_fee_cny, self.core_annual_fee_cny
                ),
            );
        }
        if i.potential_flag {
            return (Tier::Potential, "flagged potential by sales".into());
        }
        (
            Tier::Ordinary,
            "no VIP, core or potential criterion met".into(),
        )
    }
}

/// The name the service policy table gives a tier (`vip`, …; unclassified: `ordinary`).
pub fn tier_key(tier: Tier) -> &'static str {
    match tier {
        Tier::Vip => "vip",
        Tier::Core => "core",
        Tier::Potential => "potential",
        Tier::Ordinary | Tier::Unspecified => "ordinary",
    }
}

/// The tier in force: a manager's override wins over the computed tier.
pub fn tier_in_force(computed: Tier, override_tier: Option<Tier>) -> Tier {
    override_tier
        .filter(|t| *t != Tier::Unspecified)
        .unwrap_or(computed)
}

/// A change of the tier in force from `from` to `to`, and why.
pub fn tier_change(from: Tier, to: Tier, reason: String, by_override: bool) -> pb::TierChange {
    pb::TierChange {
        from_tier: from.into(),
        to_tier: to.into(),
        reason,
        r#override: by_override,
        ..Default::default()
    }
}

/// A checked SetTierOverride: the tier (None clears the override) and the reason.
pub fn parse_tier_override(
    r: &pb::SetTierOverrideRequest,
) -> Result<(Option<Tier>, String), Error> {
    let mut v = Violations::new();
    let tier: Option<Tier> = known(&mut v, "tier", r.tier, false);
    let reason = text_lines(&mut v, "reason", &r.reason, 0, 1000);
    let setting = tier.is_some_and(|t| t != Tier::Unspecified);
    if setting && reason.is_empty() {
        v.add("reason", "is required: why the computed tier does not fit");
    }
    if r.version <= 0 {
        v.add("version", "is required: send the version you read");
    }
    v.finish()?;
    Ok((tier.filter(|t| *t != Tier::Unspecified), reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_are_classified_by_the_configured_thresholds_strictly_above() {
        let settings = crm_kit::Settings::load(None).unwrap();
        let rules = TierRules::from_settings(&settings).unwrap();
        let tier = |investment_cny, annual_service_fee_cny, reference_account, potential_flag| {
            rules
                .classify(&TierInputs {
                    investment_cny,
                    annual_service_fee_cny,
                    reference_account,
                    potential_flag,
                })
                .0
        };
        assert_eq!(tier(500_001, 0, false, false), Tier::Vip);
        assert_eq!(
            tier(500_000, 0, false, false),
            Tier::Core,
            "not above 500,000"
        );
        assert_eq!(tier(0, 10_001, false, false), Tier::Vip);
        assert_eq!(tier(0, 0, true, false), Tier::Vip, "reference account");
        assert_eq!(
            tier(200_001, 0, false, true),
            Tier::Core,
            "core before potential"
        );
        assert_eq!(tier(0, 5_000, false, false), Tier::Ordinary);
        assert_eq!(tier(0, 0, false, true), Tier::Potential);
        // other thresholds, from configuration
        let lower = TierRules {
            vip_investment_cny: 100_000,
            ..rules
        };
        assert_eq!(
            lower
                .classify(&TierInputs {
                    investment_cny: 150_000,
                    ..Default::default()
                })
                .0,
            Tier::Vip
        );
        assert_eq!(
            tier_in_force(Tier::Vip, Some(Tier::Ordinary)),
            Tier::Ordinary
        );
        assert_eq!(tier_in_force(Tier::Vip, None), Tier::Vip);
    }
}
