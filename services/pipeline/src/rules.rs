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
    probabilities: BTreeMap<String, i32>,
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
        struct Section {
            discount_limit_bp: i32,
            stage_probability: BTreeMap<String, i32>,
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
        Ok(Self {
            discount_limit_bp: s.discount_limit_bp,
            probabilities: s.stage_probability,
        })
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
    }
}
