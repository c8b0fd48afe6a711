//! The customers service's rules: validated inputs, normalisation for search, the maturity-stage
//! machine (C-4), the partner-change rules (C-5) and the tier classification (C-7). No I/O
//! here.

use crm_kit::{Error, Role, Violations, auth::Principal};
use crm_proto::customers::v1::{
    self as pb, CreditRating, InvalidReason, SourceChannel, Stage, Tier, Validity,
};
use time::Date;
use unicode_normalization::UnicodeNormalization;

/// The fields UpdateCustomer may name in its mask.
pub const UPDATABLE_FIELDS: &[&str] = &[
    "display_name",
    "industry",
    "region",
    "address",
    "source_channel",
    "contacts",
    "tags",
    "owner_id",
    "investment_cny",
    "annual_service_fee_cny",
    "reference_account",
    "potential_flag",
    "credit_rating",
    "blacklisted",
    "blacklist_reason",
    "validity",
    "invalid_reason",
];

const MAX_CONTACTS: usize = 50;
/// The largest amount an investment or fee may have: 10^13 CNY.
const MAX_CNY: i64 = 10_000_000_000_000;

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
const MAX_TAGS: usize = 30;

/// A name, region or other text as it is compared: NFKC (full-width letters and digits become
/// half-width), lowercase, whitespace removed.
pub fn name_key(s: &str) -> String {
    s.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !c.is_whitespace())
        .collect()
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFields {
    /// Full name.
    pub name: String,
    /// Phone as entered.
    pub phone: String,
    /// The phone's key (E.164, `crm_kit::phone`).
    pub phone_key: String,
    /// E-mail address.
    pub email: String,
    /// Role at the customer.
    pub role: String,
}

impl ContactFields {
    fn parse(v: &mut Violations, field: &str, c: &pb::Contact) -> Self {
        let name = text(v, &format!("{field}.name"), &c.name, 1, 100);
        // the platform's one phone and e-mail rules (tickets copy this number onto a ticket)
        let phone = crm_kit::phone::check(v, &format!("{field}.phone"), &c.phone);
        let phone_key = phone
            .as_ref()
            .map(|p| p.key().to_string())
            .unwrap_or_default();
        let phone = phone.map(|p| p.as_str().to_string()).unwrap_or_default();
        let email = crm_kit::email::check(v, &format!("{field}.email"), &c.email)
            .map(|e| e.as_str().to_string())
            .unwrap_or_default();
        let role = text(v, &format!("{field}.role"), &c.role, 0, 100);
        if c.phone.trim().is_empty() && c.email.trim().is_empty() {
            v.add(
                format!("{field}.phone"),
                "a contact needs a phone or an e-mail address",
            );
        }
        Self {
            name,
            phone,
            phone_key,
            email,
            role,
        }
    }

    /// The contact as its protobuf message.
    pub fn to_proto(&self) -> pb::Contact {
        pb::Contact {
            name: self.name.clone(),
            phone: self.phone.clone(),
            email: self.email.clone(),
            role: self.role.clone(),
        }
    }
}

/// The client-writable fields of a customer, validated: once a value exists, it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerFields {
    /// Organisation name.
    pub display_name: String,
    /// Normalised name for search.
    pub name_key: String,
    /// The name as duplicates are found by (without its legal form, C-2).
    pub dedup_name: String,
    /// Industry.
    pub industry: String,
    /// Sales region.
    pub region: String,
    /// Postal address.
    pub address: String,
    /// How the customer came to us.
    pub source_channel: SourceChannel,
    /// People at the customer.
    pub contacts: Vec<ContactFields>,
    /// Tags, trimmed and without duplicates.
    pub tags: Vec<String>,
    /// Owning sales rep.
    pub owner_id: String,
    /// What the tier is computed from.
    pub tier_inputs: TierInputs,
    /// The tier in force: not read from the request (it is computed, or overridden), set by
    /// the service before the fields are stored.
    pub tier: Tier,
    /// The tier the inputs give, set with `tier`.
    pub computed_tier: Tier,
    /// Credit rating.
    pub credit_rating: CreditRating,
    /// Blacklisted or not.
    pub blacklisted: bool,
    /// Why blacklisted.
    pub blacklist_reason: String,
    /// Whether the data is usable.
    pub validity: Validity,
    /// Why not.
    pub invalid_reason: InvalidReason,
}

impl CustomerFields {
    /// Validates the client-writable fields of `c`; violations are named `{prefix}.{field}`.
    pub fn parse(prefix: &str, c: &pb::Customer) -> Result<Self, Error> {
        let mut v = Violations::new();
        let f = |name: &str| format!("{prefix}.{name}");
        let display_name = text(&mut v, &f("display_name"), &c.display_name, 1, 200);
        let industry = text(&mut v, &f("industry"), &c.industry, 0, 100);
        let region = text(&mut v, &f("region"), &c.region, 1, 64);
        let address = text(&mut v, &f("address"), &c.address, 0, 500);
        let source_channel = known(&mut v, &f("source_channel"), c.source_channel, false);
        if c.contacts.len() > MAX_CONTACTS {
            v.add(f("contacts"), format!("at most {MAX_CONTACTS} contacts"));
        }
        let contacts = c
            .contacts
            .iter()
            .enumerate()
            .map(|(i, contact)| {
                ContactFields::parse(&mut v, &format!("{}[{i}]", f("contacts")), contact)
            })
            .collect();
        if c.tags.len() > MAX_TAGS {
            v.add(f("tags"), format!("at most {MAX_TAGS} tags"));
        }
        let mut tags: Vec<String> = Vec::new();
        for (i, tag) in c.tags.iter().enumerate() {
            let tag = text(&mut v, &format!("{}[{i}]", f("tags")), tag, 1, 40);
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        let owner_id = text(&mut v, &f("owner_id"), &c.owner_id, 0, 100);
        for (name, amount) in [
            ("investment_cny", c.investment_cny),
            ("annual_service_fee_cny", c.annual_service_fee_cny),
        ] {
            if !(0..=MAX_CNY).contains(&amount) {
                v.add(f(name), format!("must be 0 to {MAX_CNY} CNY"));
            }
        }
        let credit_rating = known(&mut v, &f("credit_rating"), c.credit_rating, false);
        let blacklist_reason =
            text_lines(&mut v, &f("blacklist_reason"), &c.blacklist_reason, 0, 1000);
        if c.blacklisted && blacklist_reason.is_empty() {
            v.add(
                f("blacklist_reason"),
                "is required when the customer is blacklisted",
            );
        }
        if !c.blacklisted && !blacklist_reason.is_empty() {
            v.add(
                f("blacklist_reason"),
                "must be empty when the customer is not blacklisted",
            );
        }
        let validity: Option<Validity> = known(&mut v, &f("validity"), c.validity, false);
        let invalid_reason: Option<InvalidReason> =
            known(&mut v, &f("invalid_reason"), c.invalid_reason, false);
        if let (Some(validity), Some(reason)) = (validity, invalid_reason) {
            let invalid = validity == Validity::Invalid;
            let has_reason = reason != InvalidReason::Unspecified;
            if invalid && !has_reason {
                v.add(f("invalid_reason"), "is required when validity is INVALID");
            } else if !invalid && has_reason {
                v.add(
                    f("invalid_reason"),
                    "must be unspecified unless validity is INVALID",
                );
            }
        }
        v.finish()?;
        Ok(Self {
            name_key: name_key(&display_name),
            dedup_name: crate::import::rules::name_dedup_key(&display_name),
            display_name,
            industry,
            region,
            address,
            source_channel: source_channel.expect("checked"),
            contacts,
            tags,
            owner_id,
            tier_inputs: TierInputs {
                investment_cny: c.investment_cny,
                annual_service_fee_cny: c.annual_service_fee_cny,
                reference_account: c.reference_account,
                potential_flag: c.potential_flag,
            },
            tier: Tier::Unspecified,
            computed_tier: Tier::Unspecified,
            credit_rating: credit_rating.expect("checked"),
            blacklisted: c.blacklisted,
            blacklist_reason,
            validity: validity.expect("checked"),
            invalid_reason: invalid_reason.expect("checked"),
        })
    }
}

impl CustomerFields {
    /// The names of the fields that have a value (what a Create sets), for the audit trail.
    pub fn present(&self) -> Vec<&'static str> {
        let mut names = vec!["display_name", "region"];
        for (name, set) in [
            ("industry", !self.industry.is_empty()),
            ("address", !self.address.is_empty()),
            (
                "source_channel",
                self.source_channel != SourceChannel::Unspecified,
            ),
            ("contacts", !self.contacts.is_empty()),
            ("tags", !self.tags.is_empty()),
            ("owner_id", !self.owner_id.is_empty()),
            ("investment_cny", self.tier_inputs.investment_cny != 0),
            (
                "annual_service_fee_cny",
                self.tier_inputs.annual_service_fee_cny != 0,
            ),
            ("reference_account", self.tier_inputs.reference_account),
            ("potential_flag", self.tier_inputs.potential_flag),
            (
                "credit_rating",
                self.credit_rating != CreditRating::Unspecified,
            ),
            ("blacklisted", self.blacklisted),
            ("validity", self.validity != Validity::Unspecified),
        ] {
            if set {
                names.push(name);
            }
        }
        names
    }
}

/// Why the tier is not in an update mask.
const TIER_COMPUTED: &str = "the tier is computed from investment_cny, annual_service_fee_cny, reference_account and potential_flag; a manager overrides it with SetTierOverride";

/// Copies the fields named by `paths` from `patch` into `current` (both as stored protobuf),
/// rejecting unknown and output-only paths. An empty mask is an error: the caller must say
/// what to change.
pub fn apply_mask(
    current: &mut pb::Customer,
    patch: &pb::Customer,
    paths: &[String],
) -> Result<(), Error> {
    let mask = crm_kit::mask::Mask {
        updatable: UPDATABLE_FIELDS,
        elsewhere: &[
            ("tier", TIER_COMPUTED),
            ("computed_tier", TIER_COMPUTED),
            ("tier_override", TIER_COMPUTED),
            ("stage", "the stage changes through ChangeCustomerStage"),
            (
                "tech_partner_id",
                "the partner changes through RequestPartnerChange",
            ),
        ],
    };
    let mut v = Violations::new();
    mask.apply(&mut v, paths, |path| match path {
        "display_name" => current.display_name.clone_from(&patch.display_name),
        "industry" => current.industry.clone_from(&patch.industry),
        "region" => current.region.clone_from(&patch.region),
        "address" => current.address.clone_from(&patch.address),
        "source_channel" => current.source_channel = patch.source_channel,
        "contacts" => current.contacts.clone_from(&patch.contacts),
        "tags" => current.tags.clone_from(&patch.tags),
        "owner_id" => current.owner_id.clone_from(&patch.owner_id),
        "investment_cny" => current.investment_cny = patch.investment_cny,
        "annual_service_fee_cny" => current.annual_service_fee_cny = patch.annual_service_fee_cny,
        "reference_account" => current.reference_account = patch.reference_account,
        "potential_flag" => current.potential_flag = patch.potential_flag,
        "credit_rating" => current.credit_rating = patch.credit_rating,
        "blacklisted" => current.blacklisted = patch.blacklisted,
        "blacklist_reason" => current.blacklist_reason.clone_from(&patch.blacklist_reason),
        "validity" => current.validity = patch.validity,
        "invalid_reason" => current.invalid_reason = patch.invalid_reason,
        _ => unreachable!("every updatable field is copied"),
    });
    v.finish()
}

/// Whether the maturity stages allow moving `from` → `to` (C-4). Stages move forward through
/// initial contact → potential → target → trial → signed, may skip ahead, and may fall back to
/// non-target or an earlier stage while unsigned (non-target customers stay in contact and can
/// come back). Nothing returns to initial contact, and a signed customer stays signed.
pub fn check_stage_change(from: Stage, to: Stage) -> Result<(), Error> {
    use Stage::*;
    let allowed = match (from, to) {
        (_, Unspecified) | (Unspecified, _) => false,
        (a, b) if a == b => false,
        (_, InitialContact) => false,
        (Signed, _) => false,
        // everything else among the unsigned stages is allowed
        _ => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::precondition(
            "STAGE_TRANSITION_FORBIDDEN",
            format!(
                "a customer cannot move from {} to {}",
                from.as_str_name(),
                to.as_str_name()
            ),
        ))
    }
}

/// A validated stage change request.
#[derive(Debug, Clone)]
pub struct StageChangeInput {
    /// The customer.
    pub customer_id: uuid::Uuid,
    /// The target stage.
    pub stage: Stage,
    /// Why.
    pub reason: String,
    /// Expected version; 0 skips the check.
    pub version: i64,
}

impl StageChangeInput {
    /// Validates a ChangeCustomerStage request.
    pub fn parse(r: &pb::ChangeCustomerStageRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let customer_id = v.check("customer_id", parse_id(&r.customer_id));
        let stage = known(&mut v, "stage", r.stage, true);
        let reason = text_lines(&mut v, "reason", &r.reason, 1, 1000);
        if r.version < 0 {
            v.add("version", "must not be negative");
        }
        v.finish()?;
        Ok(Self {
            customer_id: customer_id.expect("checked"),
            stage: stage.expect("checked"),
            reason,
            version: r.version,
        })
    }
}

/// Validated search criteria (C-10).
#[derive(Debug, Clone, Default)]
pub struct CustomerQuery {
    /// Normalised name fragment.
    pub name_contains: Option<String>,
    /// The phone's key (E.164, `crm_kit::phone`).
    pub phone_key: Option<String>,
    /// Exact region.
    pub region: Option<String>,
    /// Exact owner.
    pub owner_id: Option<String>,
    /// Tier.
    pub tier: Option<Tier>,
    /// Stage.
    pub stage: Option<Stage>,
    /// Tag.
    pub tag: Option<String>,
    /// Only customers without an owner.
    pub unassigned: bool,
}

impl CustomerQuery {
    /// Validates a filter; empty criteria match everything.
    pub fn parse(f: Option<&pb::CustomerFilter>) -> Result<Self, Error> {
        let default = pb::CustomerFilter::default();
        let f = f.unwrap_or(&default);
        let mut v = Violations::new();
        let opt = |s: String| (!s.is_empty()).then_some(s);
        let name = text(&mut v, "filter.name_contains", &f.name_contains, 0, 200);
        let phone = text(&mut v, "filter.phone", &f.phone, 0, 40);
        let phone_key = crm_kit::phone::key(&phone);
        if !phone.is_empty() && phone_key.is_empty() {
            v.add("filter.phone", "must contain digits");
        }
        let region = text(&mut v, "filter.region", &f.region, 0, 64);
        let owner_id = text(&mut v, "filter.owner_id", &f.owner_id, 0, 100);
        let tag = text(&mut v, "filter.tag", &f.tag, 0, 40);
        let tier: Option<Tier> = known(&mut v, "filter.tier", f.tier, false);
        let stage: Option<Stage> = known(&mut v, "filter.stage", f.stage, false);
        v.finish()?;
        Ok(Self {
            name_contains: opt(name_key(&name)),
            phone_key: opt(phone_key),
            region: opt(region),
            owner_id: opt(owner_id),
            tier: tier.filter(|t| *t != Tier::Unspecified),
            stage: stage.filter(|s| *s != Stage::Unspecified),
            tag: opt(tag),
            unassigned: f.unassigned,
        })
    }

    /// A stable rendering, to bind page tokens to this query.
    pub fn fingerprint(&self) -> String {
        format!("{self:?}")
    }
}

/// The roles that see every customer.
const UNSCOPED_ROLES: &[Role] = &[
    Role::Admin,
    Role::SalesManager,
    Role::DataClerk,
    Role::HotlineAgent,
    Role::HotlineEngineer,
    Role::Coordinator,
    Role::Engineer,
    Role::TechCenter,
    Role::ComplaintOfficer,
    Role::Supervisor,
    Role::CrmLead,
    Role::Finance,
];

/// Which customers a caller may see and change (G-2): everyone for the roles in
/// [`UNSCOPED_ROLES`]; a sales rep the customers they own and those of their region; a tech
/// support the customers they partner; a partner none. Roles add up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Sees every customer.
    pub all: bool,
    /// Sees the customers with this owner.
    pub owner: Option<String>,
    /// Sees the customers of this region.
    pub region: Option<String>,
    /// Sees the customers with this tech-support partner.
    pub tech_partner: Option<String>,
}

impl Scope {
    /// The scope of `caller`.
    pub fn of(caller: &Principal) -> Self {
        let mut scope = Self {
            all: caller.has_any(UNSCOPED_ROLES),
            ..Self::default()
        };
        if caller.has(Role::SalesRep) {
            scope.owner = Some(caller.subject.clone());
            scope.region = (!caller.region.is_empty()).then(|| caller.region.clone());
        }
        if caller.has(Role::TechSupport) {
            scope.tech_partner = Some(caller.subject.clone());
        }
        scope
    }

    /// Whether a customer with this owner, region and partner is in the scope.
    pub fn permits(&self, owner: &str, region: &str, tech_partner: &str) -> bool {
        self.all
            || self.owner.as_deref().is_some_and(|o| o == owner)
            || self.region.as_deref().is_some_and(|r| r == region)
            || self
                .tech_partner
                .as_deref()
                .is_some_and(|t| !t.is_empty() && t == tech_partner)
    }

    /// Whether `customer` is in the scope.
    pub fn permits_customer(&self, customer: &pb::Customer) -> bool {
        self.permits(
            &customer.owner_id,
            &customer.region,
            &customer.tech_partner_id,
        )
    }
}

/// Parses a resource id.
pub fn parse_id(id: &str) -> Result<uuid::Uuid, String> {
    if id.is_empty() {
        return Err("is required".into());
    }
    uuid::Uuid::parse_str(id).map_err(|_| "is not a valid id".into())
}

#[cfg(test)]
mod tests {

    #[test]
    fn every_updatable_field_is_copied() {
        let paths: Vec<String> = UPDATABLE_FIELDS.iter().map(ToString::to_string).collect();
        let mut current = pb::Customer::default();
        let patch = pb::Customer {
            display_name: "x".into(),
            ..Default::default()
        };
        apply_mask(&mut current, &patch, &paths).unwrap();
        assert_eq!(current.display_name, "x");
        let e = apply_mask(&mut current, &patch, &["stage".to_string()]).unwrap_err();
        assert!(format!("{e:?}").contains("ChangeCustomerStage"));
    }

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

    use super::*;

    fn customer() -> pb::Customer {
        pb::Customer {
            display_name: "上海精工电子有限公司".into(),
            region: "华东".into(),
            contacts: vec![pb::Contact {
                name: "王晓明".into(),
                phone: "+86 138-0013-8000".into(),
                ..Default::default()
            }],
            tags: vec!["制造".into(), "制造".into()],
            ..Default::default()
        }
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

    #[test]
    fn a_valid_customer_parses_and_dedupes_tags() {
        let f = CustomerFields::parse("customer", &customer()).unwrap();
        assert_eq!(f.tags, ["制造"]);
        assert_eq!(f.contacts[0].phone_key, crm_kit::phone::key("13800138000"));
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut c = customer();
        c.display_name = " ".into();
        c.region.clear();
        c.blacklisted = true;
        c.validity = Validity::Invalid as i32;
        c.contacts[0].email = "not-an-email".into();
        c.annual_service_fee_cny = -5;
        let Err(Error::InvalidArgument(v)) = CustomerFields::parse("customer", &c) else {
            panic!("expected invalid")
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "customer.display_name",
                "customer.region",
                "customer.contacts[0].email",
                "customer.annual_service_fee_cny",
                "customer.blacklist_reason",
                "customer.invalid_reason"
            ]
        );
    }

    #[test]
    fn stage_rules() {
        use Stage::*;
        assert!(check_stage_change(InitialContact, Potential).is_ok());
        assert!(check_stage_change(InitialContact, NonTarget).is_ok());
        assert!(check_stage_change(NonTarget, Potential).is_ok());
        assert!(check_stage_change(Target, Signed).is_ok());
        assert!(check_stage_change(Trial, NonTarget).is_ok());
        assert!(check_stage_change(Potential, InitialContact).is_err());
        assert!(check_stage_change(Signed, Trial).is_err());
        assert!(check_stage_change(Trial, Trial).is_err());
    }

    fn principal(roles: &[&str], region: &str) -> Principal {
        Principal {
            subject: "u1".into(),
            name: "u1".into(),
            kind: crm_kit::auth::PrincipalKind::User,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: region.into(),
            partner_id: String::new(),
            session_id: String::new(),
        }
    }

    #[test]
    fn scopes_by_role() {
        let rep = Scope::of(&principal(&["sales_rep"], "华东"));
        assert!(rep.permits("u1", "华南", ""));
        assert!(rep.permits("u2", "华东", ""));
        assert!(!rep.permits("u2", "华南", ""));
        let ts = Scope::of(&principal(&["tech_support"], ""));
        assert!(ts.permits("u2", "华南", "u1"));
        assert!(!ts.permits("u2", "华南", ""));
        assert!(!Scope::of(&principal(&["partner"], "")).permits("u2", "华东", ""));
        assert!(Scope::of(&principal(&["sales_manager"], "")).permits("u2", "华南", ""));
    }

    #[test]
    fn mask_rejects_unknown_and_output_only_paths() {
        let mut current = customer();
        let patch = pb::Customer {
            industry: "energy".into(),
            ..Default::default()
        };
        apply_mask(&mut current, &patch, &["industry".into()]).unwrap();
        assert_eq!(current.industry, "energy");
        assert!(apply_mask(&mut current, &patch, &["stage".into()]).is_err());
        assert!(apply_mask(&mut current, &patch, &["nope".into()]).is_err());
        assert!(apply_mask(&mut current, &patch, &[]).is_err());
    }
}
