//! The customer record's rules (C-1, C-10): its validated fields and contacts, the update mask,
//! and the search criteria.

use crm_kit::{Error, Violations};
use crm_proto::customers::v1::{
    self as pb, CreditRating, InvalidReason, SourceChannel, Stage, Tier, Validity,
};

use crate::{
    rules::{known, name_key, text, text_lines},
    tiers::rules::TierInputs,
};

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
const MAX_TAGS: usize = 30;

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
            dedup_name: crate::rules::name_dedup_key(&display_name),
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

#[cfg(test)]
mod tests {
    use super::*;

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
