//! The opportunities' pure rules (P-2): a checked new opportunity, a checked change, and where
//! a stage move may go.

use crm_kit::{
    Error, Result, Violations, convert,
    text::{self, Lines},
};
use crm_proto::pipeline::v1::{self as pb, OpportunityType, Stage};
use time::Date;

/// The fields UpdateOpportunity may change.
pub const UPDATABLE: &[&str] = &["name", "amount", "expected_close_date", "probability"];

/// Checks an opportunity's own fields into `v` (prefix `field`): the name, the amount (zero
/// allowed while open), the close date and the probability (0: the stage's default); only
/// those in `mask` when given; the name may be left empty unless `name_required`.
fn check(
    v: &mut Violations,
    field: &str,
    o: &pb::Opportunity,
    mask: Option<&[String]>,
    name_required: bool,
) -> Option<Date> {
    let named = |f: &str| mask.is_none_or(|m| m.iter().any(|x| x == f));
    let at = |f: &str| format!("{field}.{f}");
    if named("name") && name_required {
        text::require(v, &at("name"), &o.name, 200, Lines::One);
    } else if named("name") {
        text::check(v, &at("name"), &o.name, 200, Lines::One);
    }
    // a new opportunity's amount may be left out (zero yuan until it is known); a change names it
    let amount_given = o.amount.is_some() || mask.is_some();
    if named("amount")
        && amount_given
        && let Some(p) = crm_kit::money::problem_or_zero(o.amount.as_ref())
    {
        v.add(at("amount"), p);
    }
    if named("probability") && !(0..=100).contains(&o.probability) {
        v.add(at("probability"), "must be 0 … 100 (percent)");
    }
    if !named("expected_close_date") {
        return None;
    }
    match o.expected_close_date.as_ref().map(convert::from_date) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            v.add(at("expected_close_date"), e);
            None
        }
        None => {
            v.add(at("expected_close_date"), "is required");
            None
        }
    }
}

/// A checked CreateOpportunity (or the opportunity of a conversion).
#[derive(Debug, Clone)]
pub struct NewOpportunity {
    /// The opportunity as given, texts trimmed.
    pub opportunity: pb::Opportunity,
    /// Its expected close date (checked against today by the use case).
    pub close: Date,
}

impl NewOpportunity {
    /// Checks `o` (at `field`); `from_lead`: customer, region and owner may come from the lead.
    pub fn parse(field: &str, o: &pb::Opportunity, from_lead: bool) -> Result<Self> {
        let mut v = Violations::new();
        // a conversion's name may come from the lead
        let close = check(&mut v, field, o, None, !from_lead);
        if OpportunityType::try_from(o.r#type).unwrap_or_default() == OpportunityType::Unspecified {
            v.add(
                format!("{field}.type"),
                "must be NEW_BUSINESS, REPEAT, UPGRADE or SERVICE_RENEWAL",
            );
        }
        if !from_lead {
            if convert::parse_id(&o.customer_id).is_err() {
                v.add(format!("{field}.customer_id"), "must be a customer id");
            }
            text::require(
                &mut v,
                &format!("{field}.region"),
                &o.region,
                100,
                Lines::One,
            );
        }
        text::check(
            &mut v,
            &format!("{field}.owner_id"),
            &o.owner_id,
            100,
            Lines::One,
        );
        v.finish()?;
        let mut o = o.clone();
        o.name = o.name.trim().to_string();
        o.region = o.region.trim().to_string();
        o.owner_id = o.owner_id.trim().to_string();
        Ok(Self {
            opportunity: o,
            close: close.unwrap_or(Date::MIN),
        })
    }
}

/// A checked UpdateOpportunity.
#[derive(Debug, Clone)]
pub struct Patch {
    /// The opportunity.
    pub id: uuid::Uuid,
    /// The version the caller saw (0: any).
    pub version: i64,
    /// The new values.
    pub values: pb::Opportunity,
    /// Which fields.
    pub mask: Vec<String>,
    /// The new close date, when named.
    pub close: Option<Date>,
    /// Why.
    pub reason: String,
}

impl Patch {
    /// Checks the request.
    pub fn parse(r: &pb::UpdateOpportunityRequest) -> Result<Self> {
        let mut v = Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        if r.update_mask.is_empty() {
            v.add("update_mask", "names the fields to change");
        }
        for (i, f) in r.update_mask.iter().enumerate() {
            if !UPDATABLE.contains(&f.as_str()) {
                v.add(
                    format!("update_mask[{i}]"),
                    format!("{f:?} cannot be changed: only {}", UPDATABLE.join(", ")),
                );
            }
        }
        let values = r.opportunity.clone().unwrap_or_default();
        let close = check(&mut v, "opportunity", &values, Some(&r.update_mask), true);
        text::check(&mut v, "reason", &r.reason, 1000, Lines::Many);
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            version: r.version,
            values,
            mask: r.update_mask.clone(),
            close,
            reason: r.reason.trim().to_string(),
        })
    }
}

/// A checked MoveOpportunityStage.
#[derive(Debug, Clone)]
pub struct StageMove {
    /// The opportunity.
    pub id: uuid::Uuid,
    /// The version the caller saw (0: any).
    pub version: i64,
    /// The new stage.
    pub stage: Stage,
    /// The probability asked for an open stage (0: its default).
    pub probability: i32,
    /// Why.
    pub reason: String,
}

impl StageMove {
    /// Checks the request: a stage, a probability of 0–99 for an open one (none for won or
    /// lost), a reason for lost.
    pub fn parse(r: &pb::MoveOpportunityStageRequest) -> Result<Self> {
        let mut v = Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        let stage = Stage::try_from(r.stage).unwrap_or_default();
        if stage == Stage::Unspecified {
            v.add("stage", "must name a stage");
        }
        let open = crate::rules::OPEN.contains(&stage);
        if open && !(0..=99).contains(&r.probability) {
            v.add(
                "probability",
                "must be 1 … 99 for an open stage (0: its default)",
            );
        }
        if !open && r.probability != 0 {
            v.add("probability", "is 100 for WON and 0 for LOST: leave it 0");
        }
        if stage == Stage::Lost && r.reason.trim().is_empty() {
            v.add("reason", "is required: why the opportunity was lost");
        }
        text::check(&mut v, "reason", &r.reason, 1000, Lines::Many);
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            version: r.version,
            stage,
            probability: r.probability,
            reason: r.reason.trim().to_string(),
        })
    }
}

/// Whether an opportunity at `stage` is closed.
pub fn closed(stage: Stage) -> bool {
    matches!(stage, Stage::Won | Stage::Lost)
}

/// Whether an opportunity at `from` may move to `to`: an open one anywhere else, a closed one
/// nowhere.
pub fn may_move(from: Stage, to: Stage) -> Result<()> {
    if closed(from) {
        return Err(Error::precondition(
            "OPPORTUNITY_CLOSED",
            format!(
                "the opportunity is {}: it no longer moves",
                from.as_str_name()
            ),
        ));
    }
    if from == to {
        return Err(Error::precondition(
            "SAME_STAGE",
            format!("the opportunity is at {} already", to.as_str_name()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_proto::common::v1::{Date as PbDate, Money};

    fn fields(r: Result<impl std::fmt::Debug>) -> Vec<String> {
        match r {
            Err(Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    fn opportunity() -> pb::Opportunity {
        pb::Opportunity {
            name: "ERP 二期".into(),
            r#type: OpportunityType::Upgrade as i32,
            customer_id: uuid::Uuid::nil().to_string(),
            region: "华东".into(),
            amount: Some(Money {
                currency_code: "CNY".into(),
                units: 120_000,
                nanos: 0,
            }),
            expected_close_date: Some(PbDate {
                year: 2027,
                month: 3,
                day: 31,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn bad_amounts_probabilities_and_dates_are_named() {
        assert!(NewOpportunity::parse("opportunity", &opportunity(), false).is_ok());
        let bad = pb::Opportunity {
            amount: Some(Money {
                currency_code: "CNY".into(),
                units: -5,
                nanos: 0,
            }),
            probability: 101,
            expected_close_date: None,
            ..opportunity()
        };
        assert_eq!(
            fields(NewOpportunity::parse("opportunity", &bad, false)),
            [
                "opportunity.amount",
                "opportunity.probability",
                "opportunity.expected_close_date"
            ]
        );
        let unknown = pb::Opportunity {
            amount: Some(Money {
                currency_code: "ABC".into(),
                units: 5,
                nanos: 0,
            }),
            ..opportunity()
        };
        assert_eq!(
            fields(NewOpportunity::parse("opportunity", &unknown, false)),
            ["opportunity.amount"]
        );
    }

    #[test]
    fn won_and_lost_are_final_and_lost_needs_a_reason() {
        assert!(may_move(Stage::Qualification, Stage::Won).is_ok());
        assert!(may_move(Stage::Negotiation, Stage::NeedsAnalysis).is_ok());
        assert!(may_move(Stage::Won, Stage::Negotiation).is_err());
        assert!(may_move(Stage::Lost, Stage::Won).is_err());
        let r = pb::MoveOpportunityStageRequest {
            id: uuid::Uuid::nil().to_string(),
            stage: Stage::Lost as i32,
            ..Default::default()
        };
        assert_eq!(fields(StageMove::parse(&r)), ["reason"]);
        let r = pb::MoveOpportunityStageRequest {
            id: uuid::Uuid::nil().to_string(),
            stage: Stage::Won as i32,
            probability: 80,
            ..Default::default()
        };
        assert_eq!(fields(StageMove::parse(&r)), ["probability"]);
    }
}
