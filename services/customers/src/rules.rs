//! The customers service's shared rules: its configured policy and the checks every capability
//! applies to text, enums and ids. No I/O here; each capability's own rules are in its folder's
//! `rules.rs`.

use crm_kit::Violations;

use crate::tiers::rules::TierRules;
use crm_proto::customers::v1 as pb;
use time::Date;
use unicode_normalization::UnicodeNormalization;

/// The customers service's configured policy: tier thresholds (C-7) and assignment rules (C-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Tier thresholds.
    pub tiers: TierRules,
    /// Assignment rules, first match wins.
    pub assignment_rules: Vec<crate::assignment::AssignmentRule>,
    /// Days after signing the return visit is due (C-9).
    pub return_visit_days: i64,
    /// Months after signing the satisfaction visit is due (C-9).
    pub satisfaction_visit_months: u8,
    /// The tier policy table (C-8).
    pub services: crm_kit::service_policy::ServicePolicies,
    /// The largest import file accepted, in bytes (C-2).
    pub import_max_bytes: u64,
    /// Rows of an import decided and written per transaction.
    pub import_batch_rows: usize,
}

impl Policy {
    /// The `[customers]` policy from the loaded configuration, checked.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        #[derive(serde::Deserialize)]
        struct Section {
            #[serde(default)]
            assignment_rules: Vec<crate::assignment::AssignmentRule>,
            return_visit_days: i64,
            satisfaction_visit_months: u8,
            import_max_bytes: u64,
            import_batch_rows: usize,
        }
        let section = settings.section::<Section>("customers")?;
        let rules = section.assignment_rules;
        if !(1..=365).contains(&section.return_visit_days)
            || !(1..=24).contains(&section.satisfaction_visit_months)
        {
            anyhow::bail!(
                "customers.return_visit_days must be 1 to 365 and satisfaction_visit_months 1 to 24"
            );
        }
        if !(1..=10_000).contains(&section.import_batch_rows) {
            anyhow::bail!("customers.import_batch_rows must be 1 to 10000");
        }
        for (i, r) in rules.iter().enumerate() {
            if r.region.trim().is_empty() || r.owner.trim().is_empty() {
                anyhow::bail!("customers.assignment_rules[{i}]: region and owner are required");
            }
        }
        Ok(Self {
            tiers: TierRules::from_settings(settings)?,
            assignment_rules: rules,
            return_visit_days: section.return_visit_days,
            satisfaction_visit_months: section.satisfaction_visit_months,
            services: crm_kit::service_policy::ServicePolicies::from_settings(settings)?,
            import_max_bytes: section.import_max_bytes,
            import_batch_rows: section.import_batch_rows,
        })
    }

    /// The visits a customer signed on `signed` is due (C-9): the return visit after
    /// `return_visit_days`, the satisfaction visit `satisfaction_visit_months` later (on the
    /// same day of the month, or the month's last day).
    pub fn visits_after_signing(&self, signed: Date) -> [(pb::VisitKind, Date); 2] {
        let satisfaction = add_months(signed, i64::from(self.satisfaction_visit_months));
        [
            (
                pb::VisitKind::Return,
                signed + time::Duration::days(self.return_visit_days),
            ),
            (pb::VisitKind::Satisfaction, satisfaction),
        ]
    }
}

/// `d` plus `months` calendar months: the same day of the month, or the month's last day.
pub fn add_months(d: Date, months: i64) -> Date {
    let index = i64::from(d.year()) * 12 + i64::from(d.month() as u8) - 1 + months.max(0);
    let year = i32::try_from(index / 12).unwrap_or(9999);
    let month = time::Month::try_from(u8::try_from(index % 12 + 1).unwrap_or(1))
        .unwrap_or(time::Month::January);
    let day = d.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(d)
}

/// A name, region or other text as it is compared: NFKC (full-width letters and digits become
/// half-width), lowercase, whitespace removed.
pub fn name_key(s: &str) -> String {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// Legal-form words dropped from the end of a normalised name, so that "杭州云帆软件股份有限公司",
/// "杭州云帆软件" and "杭州云帆软件 Co., Ltd." are one customer.
const SUFFIXES: &[&str] = &[
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "集团",
    "公司",
    "co.,ltd.",
    "co.,ltd",
    "co.ltd.",
    "co.ltd",
    "company limited",
    "companylimited",
    "limited",
    "ltd.",
    "ltd",
    "inc.",
    "inc",
    "corporation",
    "corp.",
    "corp",
    "llc",
    "gmbh",
    "co.",
];

/// The name as duplicates are found by: [`name_key`] (NFKC, lowercase, no spaces) without the
/// legal form and trailing punctuation.
pub fn name_dedup_key(name: &str) -> String {
    let mut key = name_key(name);
    loop {
        let trimmed = key.trim_end_matches([',', '.', '，', '。', '、', '(', ')', '（', '）']);
        let stripped = SUFFIXES
            .iter()
            .find_map(|s| trimmed.strip_suffix(s))
            .filter(|rest| !rest.is_empty());
        match stripped {
            Some(rest) => key = rest.to_string(),
            None => {
                key = trimmed.to_string();
                return key;
            }
        }
    }
}

pub(crate) fn text(v: &mut Violations, field: &str, value: &str, min: usize, max: usize) -> String {
    checked_text(v, field, value, min, max, crm_kit::text::Lines::One)
}

/// [`text`] for a field of several lines (a reason, a summary): newlines and tabs allowed.
pub(crate) fn text_lines(
    v: &mut Violations,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> String {
    checked_text(v, field, value, min, max, crm_kit::text::Lines::Many)
}

fn checked_text(
    v: &mut Violations,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
    lines: crm_kit::text::Lines,
) -> String {
    let value = value.trim();
    let n = value.chars().count();
    if n < min {
        v.add(field, "is required");
    } else if n > max {
        v.add(field, format!("must be at most {max} characters"));
    } else if let Some(problem) = crm_kit::text::problem(value, max, lines) {
        v.add(field, problem);
    }
    value.to_string()
}

pub(crate) fn known<E>(v: &mut Violations, field: &str, value: i32, required: bool) -> Option<E>
where
    E: TryFrom<i32>,
{
    match E::try_from(value) {
        Ok(e) if !(required && value == 0) => Some(e),
        Ok(_) => {
            v.add(field, "is required");
            None
        }
        Err(_) => {
            v.add(field, format!("unknown value {value}"));
            None
        }
    }
}

/// A contact, validated and with its comparison keys.
pub use crm_kit::convert::parse_id;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_added_to_the_same_day_or_the_months_last() {
        let d = |y, m: u8, day| {
            Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), day).unwrap()
        };
        assert_eq!(add_months(d(2026, 1, 31), 1), d(2026, 2, 28));
        assert_eq!(add_months(d(2026, 11, 15), 3), d(2027, 2, 15));
        assert_eq!(add_months(d(2026, 3, 2), 12), d(2027, 3, 2));
    }

    #[test]
    fn the_satisfaction_visit_falls_on_the_same_day_two_months_later_or_the_months_last() {
        let settings = crm_kit::Settings::load(None).unwrap();
        let policy = Policy::from_settings(&settings).unwrap();
        let d = |y, m: u8, day| {
            Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), day).unwrap()
        };
        assert_eq!(
            policy.visits_after_signing(d(2026, 3, 2)),
            [
                (pb::VisitKind::Return, d(2026, 3, 9)),
                (pb::VisitKind::Satisfaction, d(2026, 5, 2))
            ]
        );
        assert_eq!(
            policy.visits_after_signing(d(2026, 12, 31))[1].1,
            d(2027, 2, 28)
        );
        assert_eq!(
            policy.visits_after_signing(d(2027, 12, 30))[1].1,
            d(2028, 2, 29)
        );
    }

    #[test]
    fn keys_normalise_width_case_space_and_country_code() {
        assert_eq!(name_key("ＡＢＣ  Tech Co"), "abctechco");
        // the kit's phone key (E.164, issue 15): the same number however it is written
        let key = crm_kit::phone::key;
        assert_eq!(key("+86 138-0013-8000"), key("13800138000"));
        assert_eq!(key("0086 13800138000"), key("13800138000"));
        assert_eq!(key("010-8888 6666"), key("01088886666"));
        assert_eq!(key("+86 (20) 3888 9999"), key("02038889999"));
        assert_eq!(key("8613800138000"), key("13800138000"));
        assert_eq!(key("+1 415 555 0100"), key("001 415 555 0100"));
    }
}
