//! The contracts' pure rules (P-4): the terms of a contract checked, and the payment schedule
//! adding up to the amount; the number's form.

use crm_kit::{Error, Result, Violations, convert, money};
use crm_proto::{common::v1::Money, pipeline::v1 as pb};
use time::Date;

/// A contract number: `<series>-<year>-<six digits>`.
pub fn number(series: &str, year: i32, n: i64) -> String {
    format!("{series}-{year}-{n:06}")
}

/// Checked contract terms.
#[derive(Debug, Clone)]
pub struct Terms {
    /// The amount, when given (else the opportunity's).
    pub amount: Option<Money>,
    /// The annual service fee (zero when none).
    pub fee: Option<Money>,
    /// The term in months.
    pub term_months: i32,
    /// The start.
    pub start: Date,
    /// The schedule: due dates and amounts.
    pub instalments: Vec<(Date, Money)>,
}

impl Terms {
    /// Checks `c` (at `field`): amounts in a known currency (the fee may be zero), a term of
    /// 1–120 months, a start date, and a schedule of positive instalments with due dates.
    pub fn parse(field: &str, c: &pb::Contract) -> Result<Self> {
        let mut v = Violations::new();
        let at = |f: &str| format!("{field}.{f}");
        if c.amount.is_some()
            && let Some(p) = money::problem(c.amount.as_ref())
        {
            v.add(at("amount"), p);
        }
        if c.annual_service_fee.is_some()
            && let Some(p) = money::problem_or_zero(c.annual_service_fee.as_ref())
        {
            v.add(at("annual_service_fee"), p);
        }
        if !(1..=120).contains(&c.term_months) {
            v.add(at("term_months"), "must be 1 … 120");
        }
        let start = match c.start_date.as_ref().map(convert::from_date) {
            Some(Ok(d)) => Some(d),
            Some(Err(e)) => {
                v.add(at("start_date"), e);
                None
            }
            None => {
                v.add(at("start_date"), "is required");
                None
            }
        };
        if c.instalments.is_empty() {
            v.add(at("instalments"), "a contract has a payment schedule");
        }
        let mut instalments = Vec::with_capacity(c.instalments.len());
        for (i, inst) in c.instalments.iter().enumerate() {
            let due = match inst.due_date.as_ref().map(convert::from_date) {
                Some(Ok(d)) => Some(d),
                _ => {
                    v.add(format!("{field}.instalments[{i}].due_date"), "is required");
                    None
                }
            };
            if let Some(p) = money::problem(inst.amount.as_ref()) {
                v.add(format!("{field}.instalments[{i}].amount"), p);
            }
            if let (Some(d), Some(m)) = (due, inst.amount.clone()) {
                instalments.push((d, m));
            }
        }
        v.finish()?;
        Ok(Self {
            amount: c.amount.clone(),
            fee: c.annual_service_fee.clone(),
            term_months: c.term_months,
            start: start.unwrap_or(Date::MIN),
            instalments,
        })
    }

    /// Checks the schedule against `amount`: one currency, and instalments adding up exactly.
    pub fn check_schedule(&self, field: &str, amount: &Money) -> Result<()> {
        let mut v = Violations::new();
        if self
            .instalments
            .iter()
            .any(|(_, m)| m.currency_code != amount.currency_code)
            || self
                .fee
                .as_ref()
                .is_some_and(|f| f.currency_code != amount.currency_code)
        {
            v.add(
                format!("{field}.instalments"),
                "every amount is in the contract's currency",
            );
        }
        let sum: i128 = self
            .instalments
            .iter()
            .map(|(_, m)| money::to_nanos(m))
            .sum();
        if sum != money::to_nanos(amount) {
            v.add(
                format!("{field}.instalments"),
                format!(
                    "add up to {} but the amount is {}",
                    money::display(&money::from_nanos(&amount.currency_code, sum)),
                    money::display(amount)
                ),
            );
        }
        v.finish()
    }
}

/// `FAILED_PRECONDITION` unless an opportunity at `stage` may have a contract signed.
pub fn may_sign(stage: pb::Stage) -> Result<()> {
    if stage == pb::Stage::Won {
        Ok(())
    } else {
        Err(Error::precondition(
            "OPPORTUNITY_NOT_WON",
            format!(
                "a contract is signed for a won opportunity; this one is {}",
                stage.as_str_name()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_proto::common::v1::Date as PbDate;

    fn cny(units: i64) -> Option<Money> {
        Some(Money {
            currency_code: "CNY".into(),
            units,
            nanos: 0,
        })
    }

    fn contract(instalments: &[i64]) -> pb::Contract {
        pb::Contract {
            amount: cny(100),
            term_months: 12,
            start_date: Some(PbDate {
                year: 2027,
                month: 1,
                day: 1,
            }),
            instalments: instalments
                .iter()
                .enumerate()
                .map(|(i, u)| pb::Instalment {
                    due_date: Some(PbDate {
                        year: 2027,
                        month: i as i32 + 1,
                        day: 15,
                    }),
                    amount: cny(*u),
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_schedule_adds_up_to_the_amount_exactly() {
        let t = Terms::parse("contract", &contract(&[60, 40])).unwrap();
        assert!(t.check_schedule("contract", &cny(100).unwrap()).is_ok());
        let t = Terms::parse("contract", &contract(&[60, 39])).unwrap();
        assert!(t.check_schedule("contract", &cny(100).unwrap()).is_err());
        assert!(Terms::parse("contract", &contract(&[])).is_err());
        assert_eq!(number("HT", 2026, 42), "HT-2026-000042");
        assert!(may_sign(pb::Stage::Negotiation).is_err());
    }
}
