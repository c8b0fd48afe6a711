//! The rules the pipeline's capabilities share: the `[pipeline]` settings — the discount limit
//! above which a quote needs the sales manager's approval, and each open stage's default
//! probability — and the stored names of the enums.

use std::collections::BTreeMap;

use crm_proto::pipeline::v1::Stage;
use serde::Deserialize;

/// The `[pipeline]` settings.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// The largest discount, in basis points, a quote may carry without approval.
    pub discount_limit_bp: i32,
    /// The contract numbers' series, e.g. `HT`.
    pub contract_series: String,
    probabilities: BTreeMap<String, i32>,
    /// Nanos of yuan per unit of each currency.
    rates: BTreeMap<String, i128>,
}

/// An exact decimal ("7.1", "0.91") in nanos; `None` when it is not one or not positive.
fn decimal_nanos(s: &str) -> Option<i128> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i128 = whole.parse().ok()?;
    let frac: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    let nanos = whole * 1_000_000_000 + frac;
    (nanos > 0).then_some(nanos)
}

/// The stored name of an enum value: its protobuf name without the enum's `prefix`.
pub fn stored(name: &'static str, prefix: &str) -> &'static str {
    name.trim_start_matches(prefix)
}

/// The stored name of a stage (`QUALIFICATION`, …).
pub fn stage_name(stage: Stage) -> &'static str {
    stored(stage.as_str_name(), "STAGE_")
}

/// The stage of a stored name.
pub fn stage_of(name: &str) -> Stage {
    Stage::from_str_name(&format!("STAGE_{name}")).unwrap_or_default()
}

/// The open stages, in order.
pub const OPEN: [Stage; 4] = [
    Stage::Qualification,
    Stage::NeedsAnalysis,
    Stage::Proposal,
    Stage::Negotiation,
];

impl PipelineSettings {
    /// Reads `[pipeline]`; a limit outside 0–10000 basis points or an open stage without a
    /// default probability of 1–99 stops the start.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Contracts {
            series: String,
        }
        #[derive(Deserialize)]
        struct Section {
            discount_limit_bp: i32,
            stage_probability: BTreeMap<String, i32>,
            contracts: Contracts,
            rates: BTreeMap<String, String>,
        }
        let s: Section = settings.section("pipeline")?;
        if !(0..=10_000).contains(&s.discount_limit_bp) {
            anyhow::bail!("pipeline.discount_limit_bp must be 0 … 10000");
        }
        for stage in OPEN {
            let key = stage_name(stage).to_lowercase();
            match s.stage_probability.get(&key) {
                Some(p) if (1..=99).contains(p) => {}
                _ => anyhow::bail!("pipeline.stage_probability.{key} must be 1 … 99"),
            }
        }
        let series = s.contracts.series.trim().to_string();
        if series.is_empty() || !series.bytes().all(|b| b.is_ascii_alphanumeric()) {
            anyhow::bail!("pipeline.contracts.series must be letters and digits, e.g. HT");
        }
        let mut rates = BTreeMap::new();
        for (currency, rate) in &s.rates {
            if !crm_kit::money::CURRENCIES.contains(&currency.as_str()) {
                anyhow::bail!("pipeline.rates.{currency}: not a known currency");
            }
            let Some(nanos) = decimal_nanos(rate) else {
                anyhow::bail!("pipeline.rates.{currency} = {rate:?} is not a positive decimal");
            };
            rates.insert(currency.clone(), nanos);
        }
        if rates.get("CNY") != Some(&1_000_000_000) {
            anyhow::bail!("pipeline.rates.CNY must be \"1\": the reporting currency");
        }
        Ok(Self {
            discount_limit_bp: s.discount_limit_bp,
            contract_series: series,
            probabilities: s.stage_probability,
            rates,
        })
    }

    /// `amount` in whole yuan at the configured rate (half a yuan rounds up); `None` for a
    /// currency without a rate.
    pub fn yuan(&self, amount: &crm_proto::common::v1::Money) -> Option<i64> {
        let rate = self.rates.get(&amount.currency_code)?;
        let nanos = crm_kit::money::to_nanos(amount) * rate / 1_000_000_000;
        i64::try_from((nanos + 500_000_000).div_euclid(1_000_000_000)).ok()
    }

    /// The rates as exact decimal strings, for a query: (currencies, yuan per unit).
    pub fn rates_decimal(&self) -> (Vec<String>, Vec<String>) {
        self.rates
            .iter()
            .map(|(c, nanos)| {
                (
                    c.clone(),
                    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000),
                )
            })
            .unzip()
    }

    /// Whether `currency` has a rate.
    pub fn has_rate(&self, currency: &str) -> bool {
        self.rates.contains_key(currency)
    }

    /// The default probability of `stage`: configured for the open ones, 100 won, 0 lost.
    pub fn probability(&self, stage: Stage) -> i32 {
        match stage {
            Stage::Won => 100,
            Stage::Lost | Stage::Unspecified => 0,
            open => *self
                .probabilities
                .get(&stage_name(open).to_lowercase())
                .unwrap_or(&10),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_give_every_stage_its_probability() {
        let settings = crm_kit::Settings::load_with(None, &[]).unwrap();
        let s = PipelineSettings::from_settings(&settings).unwrap();
        assert_eq!(s.probability(Stage::Won), 100);
        assert_eq!(s.probability(Stage::Lost), 0);
        let open: Vec<i32> = OPEN.iter().map(|st| s.probability(*st)).collect();
        assert!(open.windows(2).all(|w| w[0] < w[1]), "{open:?}");
        assert_eq!(
            stage_of(stage_name(Stage::NeedsAnalysis)),
            Stage::NeedsAnalysis
        );
        let usd = crm_proto::common::v1::Money {
            currency_code: "USD".into(),
            units: 1000,
            nanos: 500_000_000,
        };
        assert_eq!(s.yuan(&usd), Some(7104)); // 1000.50 × 7.1 = 7103.55
        assert_eq!(decimal_nanos("0.91"), Some(910_000_000));
        assert_eq!(decimal_nanos("-1"), None);
        assert_eq!(decimal_nanos("1.0000000001"), None);
    }
}
