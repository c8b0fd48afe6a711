//! The notification rules, with no I/O: channels, languages, recipient selectors, the kinds of
//! message and their variables, templates (checked when saved, rendered when a message is
//! made), addresses (normalised, masked) and the retry back-off.

use std::{collections::BTreeMap, time::Duration};

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::notifications::v1 as pb;
use minijinja::{Environment, UndefinedBehavior};

/// The kind of messages sent by hand with SendNotification.
pub const MANUAL: &str = "manual";

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    /// Text message.
    Sms,
    /// E-mail.
    Email,
    /// In-app inbox.
    Inbox,
    /// Partner webhook.
    Webhook,
}

impl Channel {
    /// From the API.
    pub fn from_pb(value: i32) -> Result<Self, String> {
        match pb::Channel::try_from(value) {
            Ok(pb::Channel::Sms) => Ok(Self::Sms),
            Ok(pb::Channel::Email) => Ok(Self::Email),
            Ok(pb::Channel::Inbox) => Ok(Self::Inbox),
            Ok(pb::Channel::Webhook) => Ok(Self::Webhook),
            _ => Err("must be SMS, EMAIL, INBOX or WEBHOOK".into()),
        }
    }

    /// From configuration: `sms`, `email`, `inbox`, `webhook`.
    pub fn parse_config(value: &str) -> Result<Self, String> {
        match value {
            "sms" => Ok(Self::Sms),
            "email" => Ok(Self::Email),
            "inbox" => Ok(Self::Inbox),
            "webhook" => Ok(Self::Webhook),
            other => Err(format!("no channel {other:?} (sms, email, inbox, webhook)")),
        }
    }

    /// The API value.
    pub fn to_pb(self) -> pb::Channel {
        match self {
            Self::Sms => pb::Channel::Sms,
            Self::Email => pb::Channel::Email,
            Self::Inbox => pb::Channel::Inbox,
            Self::Webhook => pb::Channel::Webhook,
        }
    }

    /// The stored name (the protobuf value name).
    pub fn as_str(self) -> &'static str {
        self.to_pb().as_str_name()
    }

    /// From the stored name.
    pub fn from_stored(value: &str) -> Option<Self> {
        pb::Channel::from_str_name(value).and_then(|c| Self::from_pb(c as i32).ok())
    }
}

/// A message language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// Chinese.
    Zh,
    /// English.
    En,
}

impl Language {
    /// `zh` or `en`.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "zh" => Ok(Self::Zh),
            "en" => Ok(Self::En),
            _ => Err("must be \"zh\" or \"en\"".into()),
        }
    }

    /// `zh` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Zh => "zh",
            Self::En => "en",
        }
    }

    /// The other language, tried when a template is missing in this one.
    pub fn other(self) -> Self {
        match self {
            Self::Zh => Self::En,
            Self::En => Self::Zh,
        }
    }
}

/// Who a rule sends to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The customer's sales rep.
    Owner,
    /// The customer's tech-support partner.
    Partner,
    /// The customer's contacts.
    Contacts,
    /// Who caused the event.
    Actor,
    /// The engineer a ticket is assigned to.
    Assignee,
    /// Users with a role (region-bound users only for customers of their region).
    Role(String),
    /// One user.
    User(String),
    /// One partner organisation.
    PartnerOrg(String),
}

impl Selector {
    /// From configuration.
    pub fn parse(value: &str) -> Result<Self, String> {
        let named = |prefix: &str| {
            value
                .strip_prefix(prefix)
                .filter(|rest| !rest.is_empty())
                .map(str::to_string)
        };
        match value {
            "owner" => Ok(Self::Owner),
            "partner" => Ok(Self::Partner),
            "contacts" => Ok(Self::Contacts),
            "actor" => Ok(Self::Actor),
            "assignee" => Ok(Self::Assignee),
            _ => named("role:")
                .map(Self::Role)
                .or_else(|| named("user:").map(Self::User))
                .or_else(|| named("partner_org:").map(Self::PartnerOrg))
                .ok_or_else(|| {
                    format!(
                        "no recipient selector {value:?} (owner, partner, contacts, actor, \
                         assignee, role:<role>, user:<id>, partner_org:<id>)"
                    )
                }),
        }
    }
}

/// A recipient, resolved: a platform user, a partner organisation or an outside contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A user by id.
    User(String),
    /// A partner organisation by id.
    PartnerOrg(String),
    /// An outside contact.
    Contact(Contact),
}

/// An outside contact's addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// The name for greetings.
    pub name: String,
    /// Phone for SMS.
    pub phone: String,
    /// E-mail address.
    pub email: String,
    /// Their language, if known.
    pub language: Option<Language>,
}

impl Recipient {
    /// The key deliveries and inboxes are stored under.
    pub fn key(&self) -> String {
        match self {
            Self::User(id) => format!("user:{id}"),
            Self::PartnerOrg(id) => format!("partner:{id}"),
            Self::Contact(c) => {
                let address = if c.email.is_empty() {
                    crm_kit::phone::key(&c.phone)
                } else {
                    crm_kit::email::key(&c.email)
                };
                format!("contact:{address}")
            }
        }
    }
}

/// One kind of message: what triggers it and the variables its templates may use.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The event type, schedule, or `manual`.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The variables it provides.
    pub variables: &'static [&'static str],
}

/// A kind about a customer: the variables every such message provides, and its own.
macro_rules! customer_kind {
    ($name:literal, $description:literal, [$($extra:literal),*]) => {
        Kind {
            name: $name,
            description: $description,
            variables: &[
                "recipient_name", "customer_id", "customer_name", "region", "tier", "stage",
                "owner_name", "partner_name", "actor_name" $(, $extra)*
            ],
        }
    };
}

/// A tickets event's kind: every ticket variable (the latest breach, the latest escalation).
macro_rules! ticket_kind {
    ($name:literal, $description:literal) => {
        Kind {
            name: $name,
            description: $description,
            variables: &[
                "recipient_name",
                "ticket_id",
                "customer_id",
                "region",
                "tier",
                "priority",
                "state",
                "deadline",
                "deadline_zh",
                "state_zh",
                "priority_zh",
                "tier_zh",
                "due_time",
                "product_model",
                "symptom",
                "contact_name",
                "contact_phone",
                "ticket_number",
                "contact_due",
                "engineer_name",
                "escalation_kind",
                "escalation_state",
                "escalation_note",
                "escalation_due",
                "routed_to",
            ],
        }
    };
}

/// Every kind of message.
pub const KINDS: &[Kind] = &[
    Kind {
        name: MANUAL,
        description: "sent with SendNotification; its template declares its variables",
        variables: &["recipient_name"],
    },
    customer_kind!(
        "customers.stage_changed",
        "a customer moved to another maturity stage (C-4)",
        ["from_stage", "to_stage", "reason"]
    ),
    customer_kind!(
        "customers.partner_change_requested",
        "a tech-support partner was asked for: the first is set at once (decision \"initial\"), \
         a change awaits a sales manager's decision (\"pending\") (C-5)",
        [
            "current_partner_name",
            "proposed_partner_name",
            "reason",
            "decision"
        ]
    ),
    customer_kind!(
        "customers.partner_change_decided",
        "a partner change was approved, rejected or set as the first partner (C-5)",
        [
            "current_partner_name",
            "proposed_partner_name",
            "reason",
            "decision",
            "decision_reason"
        ]
    ),
    customer_kind!(
        "customers.care_due",
        "the customer's fortnightly care message is due (温馨速递, N-5)",
        []
    ),
    ticket_kind!(
        "tickets.created",
        "a ticket was opened (T-1): the contact is told its number"
    ),
    ticket_kind!(
        "tickets.dispatched",
        "a ticket was dispatched to an engineer (T-6): the engineer gets the work, the contact \
         is told who comes and when to expect the call (contact_due)"
    ),
    ticket_kind!(
        "tickets.resolved",
        "a ticket was resolved (T-7): the contact is told, and how the result is confirmed"
    ),
    ticket_kind!(
        "tickets.sla_breached",
        "a ticket missed an SLA deadline: response, hand-off, resolution or escalation (T-5)"
    ),
    ticket_kind!(
        "tickets.record_due",
        "work started on a ticket today has no service record at the day's close (T-9)"
    ),
    ticket_kind!(
        "tickets.escalation_requested",
        "an engineer applied to escalate a hard problem; the hotline engineer filters it (T-8)"
    ),
    ticket_kind!(
        "tickets.escalation_rejected",
        "the hotline engineer rejected an escalation, with the reason (T-8)"
    ),
    ticket_kind!(
        "tickets.escalation_routed",
        "an escalation was routed to its department: quality, QA with the product department, or the tech supervisor (T-8)"
    ),
    ticket_kind!(
        "tickets.escalation_changed",
        "an escalation was routed, progressed or resolved: the customer is kept informed (T-8)"
    ),
    Kind {
        name: "customers.import_done",
        description: "an import finished: new, unassigned customers of a region (one message per region, C-3)",
        variables: &[
            "recipient_name",
            "import_id",
            "file_name",
            "region",
            "accepted_in_region",
            "rows",
            "accepted",
            "rejected",
            "duplicates",
        ],
    },
    customer_kind!(
        "customers.service_overdue",
        "a signed customer's service plan lags: visits behind the tier's quota or the service report overdue (C-8)",
        []
    ),
    customer_kind!(
        "customers.next_contact_overdue",
        "the customer's next contact date has passed with no contact (C-6, N-5)",
        ["next_contact_date"]
    ),
];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// Checks a template name: 1 to 64 of `a-z`, `0-9`, `_`, `.`.
pub fn check_template_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 of a-z, 0-9, '_' and '.'".into())
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

/// The variables `source` uses, or why it does not parse.
fn variables_used(source: &str) -> Result<Vec<String>, String> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| format!("does not parse: {}", e.detail().unwrap_or("syntax error")))?;
    let mut used: Vec<String> = template.undeclared_variables(false).into_iter().collect();
    used.sort();
    Ok(used)
}

/// A template as saved: checked for syntax and for variables its kind does not provide.
#[derive(Debug, Clone)]
pub struct TemplateInput {
    /// Name.
    pub name: String,
    /// Language.
    pub language: Language,
    /// Kind.
    pub kind: String,
    /// Subject source.
    pub subject: String,
    /// Body source.
    pub body: String,
    /// Declared variables (manual kind).
    pub variables: Vec<String>,
    /// The version replaced (0: any).
    pub version: i64,
}

impl TemplateInput {
    /// Checks a SaveTemplate request (N-2): a variable its kind does not provide is an error
    /// now, naming the field and the variable, so no message fails for it later.
    pub fn parse(r: &pb::SaveTemplateRequest) -> Result<Self, Error> {
        let t = r.template.clone().unwrap_or_default();
        let mut v = Violations::new();
        v.check("template.name", check_template_name(&t.name));
        let language = v.check("template.language", Language::parse(&t.language));
        let kind = match kind(&t.kind) {
            Some(k) => Some(k),
            None => {
                v.add(
                    "template.kind",
                    format!("no kind {:?}; ListKinds lists them", t.kind),
                );
                None
            }
        };
        text::require(&mut v, "template.subject", &t.subject, 200, Lines::One);
        text::require(&mut v, "template.body", &t.body, 10_000, Lines::Many);
        let mut declared: Vec<String> = Vec::new();
        if let Some(k) = kind {
            if k.name == MANUAL {
                for (i, name) in t.variables.iter().enumerate() {
                    if !is_identifier(name) {
                        v.add(
                            format!("template.variables[{i}]"),
                            "must be a name of a-z, 0-9 and '_', starting with a letter",
                        );
                    }
                }
                declared = t.variables.clone();
                declared.extend(k.variables.iter().map(|s| s.to_string()));
            } else {
                if !t.variables.is_empty() {
                    v.add(
                        "template.variables",
                        "only templates of kind \"manual\" declare variables",
                    );
                }
                declared = k.variables.iter().map(|s| s.to_string()).collect();
            }
        }
        for (field, source) in [("template.subject", &t.subject), ("template.body", &t.body)] {
            match variables_used(source) {
                Err(e) => v.add(field, e),
                Ok(used) if kind.is_some() => {
                    let missing: Vec<&String> =
                        used.iter().filter(|u| !declared.contains(u)).collect();
                    if !missing.is_empty() {
                        v.add(
                            field,
                            format!(
                                "uses {} that kind {:?} does not provide (it provides {})",
                                join(&missing),
                                t.kind,
                                declared.join(", ")
                            ),
                        );
                    }
                }
                Ok(_) => {}
            }
        }
        if r.version < 0 {
            v.add("version", "must not be negative");
        }
        v.finish()?;
        Ok(Self {
            name: t.name,
            language: language.expect("checked"),
            kind: t.kind,
            subject: t.subject,
            body: t.body,
            variables: t.variables,
            version: r.version,
        })
    }
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| format!("{{{{ {n} }}}}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

/// Renders a subject and body with `variables`. Templates were checked when saved, so a
/// failure here means a stored template is broken; the message records it as failed.
pub fn render(
    subject: &str,
    body: &str,
    variables: &BTreeMap<String, String>,
) -> Result<(String, String), String> {
    let env = environment();
    let one = |source: &str| {
        env.render_str(source, variables)
            .map_err(|e| format!("template does not render: {e}"))
    };
    Ok((one(subject)?, one(body)?))
}

/// An address as opt-outs store it: a phone's E.164 key, an e-mail in lower case (the kit's
/// `phone` and `email` keys, the same as customers compare contacts by).
pub fn normalise_address(channel: Channel, address: &str) -> String {
    match channel {
        Channel::Sms => crm_kit::phone::key(address),
        _ => crm_kit::email::key(address),
    }
}

/// An address with its middle hidden, for status views: `138****5678`, `w***@example.com`.
pub fn mask(address: &str) -> String {
    if let Some((user, domain)) = address.split_once('@') {
        let first: String = user.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    if address.starts_with("http://") || address.starts_with("https://") {
        return address.to_string();
    }
    // a stored phone key as it is dialled at home: `+8613800138000` shows as `138****8000`
    let address = if address.starts_with('+') {
        crm_kit::phone::national(address)
    } else {
        address.to_string()
    };
    let chars: Vec<char> = address.chars().collect();
    if chars.len() <= 7 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..3].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}****{tail}")
}

/// Checks an e-mail address by the platform's one rule (`crm_kit::email`).
pub fn is_email(address: &str) -> bool {
    crm_kit::email::Email::parse(address).is_ok()
}

/// Checks a phone number by the platform's one rule (`crm_kit::phone`).
pub fn is_phone(phone: &str) -> bool {
    crm_kit::phone::Phone::parse(phone).is_ok()
}

/// The wait before attempt `attempt + 1` after `attempt` failed ones: `base * 2^(attempt-1)`,
/// capped at `max`, less a random part of up to half (`jitter` in `0.0..1.0`), so senders that
/// failed together do not retry together.
pub fn retry_delay(attempt: i32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    full.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
}

/// A SendNotification request, checked.
#[derive(Debug, Clone)]
pub struct SendInput {
    /// The template name.
    pub template: String,
    /// The recipients.
    pub recipients: Vec<Recipient>,
    /// The channels.
    pub channels: Vec<Channel>,
    /// The variables.
    pub variables: BTreeMap<String, String>,
    /// Urgent.
    pub urgent: bool,
    /// The customer, if any.
    pub customer_id: String,
}

impl SendInput {
    /// Checks the request's shape; the template's variables are checked against it once the
    /// template is loaded ([`SendInput::check_variables`]).
    pub fn parse(r: &pb::SendNotificationRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        v.check("template", check_template_name(&r.template));
        if r.recipients.is_empty() || r.recipients.len() > 100 {
            v.add("recipients", "must hold 1 to 100 recipients");
        }
        let mut recipients = Vec::new();
        for (i, p) in r.recipients.iter().enumerate() {
            let field = format!("recipients[{i}]");
            match &p.target {
                Some(pb::recipient::Target::UserId(id)) if !id.trim().is_empty() => {
                    recipients.push(Recipient::User(id.clone()));
                }
                Some(pb::recipient::Target::PartnerId(id)) if !id.trim().is_empty() => {
                    recipients.push(Recipient::PartnerOrg(id.clone()));
                }
                Some(pb::recipient::Target::Contact(c)) => {
                    let language = if c.language.is_empty() {
                        None
                    } else {
                        v.check(
                            &format!("{field}.contact.language"),
                            Language::parse(&c.language),
                        )
                    };
                    if c.phone.is_empty() && c.email.is_empty() {
                        v.add(format!("{field}.contact"), "needs a phone or an e-mail");
                    }
                    text::check(
                        &mut v,
                        &format!("{field}.contact.name"),
                        &c.name,
                        100,
                        Lines::One,
                    );
                    if !c.phone.is_empty() && !is_phone(&c.phone) {
                        v.add(format!("{field}.contact.phone"), "is not a phone number");
                    }
                    if !c.email.is_empty() && !is_email(&c.email) {
                        v.add(format!("{field}.contact.email"), "is not an e-mail address");
                    }
                    recipients.push(Recipient::Contact(Contact {
                        name: c.name.clone(),
                        phone: c.phone.clone(),
                        email: c.email.clone(),
                        language,
                    }));
                }
                _ => v.add(field, "must name a user, a partner or a contact"),
            }
        }
        if r.channels.is_empty() {
            v.add("channels", "must name at least one channel");
        }
        let mut channels = Vec::new();
        for (i, c) in r.channels.iter().enumerate() {
            if let Some(c) = v.check(&format!("channels[{i}]"), Channel::from_pb(*c))
                && !channels.contains(&c)
            {
                channels.push(c);
            }
        }
        for (name, value) in &r.variables {
            text::check(
                &mut v,
                &format!("variables[{name}]"),
                value,
                2000,
                Lines::Many,
            );
        }
        text::check(&mut v, "customer_id", &r.customer_id, 100, Lines::One);
        v.finish()?;
        Ok(Self {
            template: r.template.clone(),
            recipients,
            channels,
            variables: r.variables.clone().into_iter().collect(),
            urgent: r.urgent,
            customer_id: r.customer_id.clone(),
        })
    }

    /// Checks that every variable the template declares is given (`recipient_name` is filled
    /// in per recipient).
    pub fn check_variables(&self, declared: &[String]) -> Result<(), Error> {
        let mut v = Violations::new();
        for name in declared {
            if !self.variables.contains_key(name) {
                v.add(format!("variables[{name}]"), "is required by the template");
            }
        }
        v.finish()
    }
}

/// A SetOptOut request, checked.
#[derive(Debug, Clone)]
pub struct OptOutInput {
    /// SMS or e-mail.
    pub channel: Channel,
    /// Normalised address.
    pub address: String,
    /// Out (true) or back in.
    pub opted_out: bool,
    /// Why.
    pub reason: String,
    /// The customer, if given.
    pub customer_id: String,
}

impl OptOutInput {
    /// Checks a SetOptOut request.
    pub fn parse(r: &pb::SetOptOutRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let channel = match Channel::from_pb(r.channel) {
            Ok(c @ (Channel::Sms | Channel::Email)) => Some(c),
            _ => {
                v.add("channel", "must be SMS or EMAIL");
                None
            }
        };
        match channel {
            Some(Channel::Sms) if !is_phone(&r.address) => {
                v.add("address", "is not a phone number")
            }
            Some(Channel::Email) if !is_email(&r.address) => {
                v.add("address", "is not an e-mail address")
            }
            _ => {}
        }
        text::require(&mut v, "reason", &r.reason, 500, Lines::Many);
        text::check(&mut v, "customer_id", &r.customer_id, 100, Lines::One);
        v.finish()?;
        let channel = channel.expect("checked");
        Ok(Self {
            channel,
            address: normalise_address(channel, &r.address),
            opted_out: r.opted_out,
            reason: r.reason.trim().to_string(),
            customer_id: r.customer_id.clone(),
        })
    }
}

/// A SetPartnerEndpoint request, checked.
#[derive(Debug, Clone)]
pub struct EndpointInput {
    /// Partner organisation.
    pub partner_id: String,
    /// URL.
    pub url: String,
    /// HMAC secret.
    pub secret: String,
    /// Language.
    pub language: Language,
}

impl EndpointInput {
    /// Checks a SetPartnerEndpoint request.
    pub fn parse(r: &pb::SetPartnerEndpointRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        text::require(&mut v, "partner_id", &r.partner_id, 100, Lines::One);
        let scheme_ok = r.url.starts_with("https://") || r.url.starts_with("http://");
        if !scheme_ok || r.url.len() > 500 || r.url.contains(char::is_whitespace) {
            v.add("url", "must be an http(s):// URL of at most 500 characters");
        }
        text::check(&mut v, "secret", &r.secret, 200, Lines::One);
        if r.secret.chars().count() < 16 || r.secret.chars().count() > 200 {
            v.add("secret", "must be 16 to 200 characters");
        }
        let language = if r.language.is_empty() {
            Some(Language::Zh)
        } else {
            v.check("language", Language::parse(&r.language))
        };
        v.finish()?;
        Ok(Self {
            partner_id: r.partner_id.trim().to_string(),
            url: r.url.clone(),
            secret: r.secret.clone(),
            language: language.expect("checked"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(
        kind: &str,
        subject: &str,
        body: &str,
        variables: &[&str],
    ) -> Result<TemplateInput, Error> {
        TemplateInput::parse(&pb::SaveTemplateRequest {
            template: Some(pb::Template {
                name: "t".into(),
                language: "zh".into(),
                kind: kind.into(),
                subject: subject.into(),
                body: body.into(),
                variables: variables.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            version: 0,
        })
    }

    fn violations(e: Error) -> Vec<(String, String)> {
        match e {
            Error::InvalidArgument(v) => v.into_iter().map(|v| (v.field, v.description)).collect(),
            other => panic!("not invalid: {other}"),
        }
    }

    #[test]
    fn a_variable_the_kind_lacks_is_refused_at_save() {
        let ok = save(
            "customers.stage_changed",
            "客户 {{ customer_name }}",
            "{{ from_stage }} → {{ to_stage }}",
            &[],
        );
        assert!(ok.is_ok());
        let e = save(
            "customers.stage_changed",
            "客户 {{ customer_name }}",
            "{{ amount }} {{ to_stage }}",
            &[],
        )
        .unwrap_err();
        let v = violations(e);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, "template.body");
        assert!(v[0].1.contains("{{ amount }}"), "{}", v[0].1);
    }

    #[test]
    fn manual_templates_use_declared_variables_only() {
        assert!(
            save(
                "manual",
                "{{ title }}",
                "{{ text }} {{ recipient_name }}",
                &["title", "text"]
            )
            .is_ok()
        );
        let v = violations(save("manual", "{{ title }}", "{{ text }}", &["title"]).unwrap_err());
        assert_eq!(v[0].0, "template.body");
        let v = violations(save("customers.care_due", "x", "y", &["title"]).unwrap_err());
        assert_eq!(v[0].0, "template.variables");
    }

    #[test]
    fn syntax_errors_unknown_kinds_and_languages_are_refused() {
        let v = violations(save("nope", "{{ x", "", &[]).unwrap_err());
        let fields: Vec<&str> = v.iter().map(|(f, _)| f.as_str()).collect();
        assert!(fields.contains(&"template.kind"));
        assert!(fields.contains(&"template.subject"));
        assert!(fields.contains(&"template.body"));
    }

    #[test]
    fn renders_chinese_and_english() {
        let vars: BTreeMap<String, String> =
            [("customer_name".to_string(), "上海精工".to_string())].into();
        let (s, b) = render(
            "客户 {{ customer_name }}",
            "Dear {{ customer_name }}",
            &vars,
        )
        .unwrap();
        assert_eq!(s, "客户 上海精工");
        assert_eq!(b, "Dear 上海精工");
        assert!(render("{{ missing }}", "", &vars).is_err());
    }

    #[test]
    fn back_off_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        assert_eq!(retry_delay(1, base, max, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(3, base, max, 0.0), Duration::from_secs(8));
        assert_eq!(retry_delay(30, base, max, 0.0), max);
        assert_eq!(retry_delay(3, base, max, 1.0), Duration::from_secs(4));
        let d = retry_delay(3, base, max, 0.5);
        assert!(d > Duration::from_secs(4) && d < Duration::from_secs(8));
    }

    #[test]
    fn addresses_normalise_and_mask() {
        assert_eq!(
            normalise_address(Channel::Sms, "+86 138-0013-8000"),
            normalise_address(Channel::Sms, "8613800138000")
        );
        assert_eq!(
            normalise_address(Channel::Sms, "0086 13800138000"),
            normalise_address(Channel::Sms, "13800138000")
        );
        assert_eq!(
            normalise_address(Channel::Email, " Wang@Example.COM "),
            "wang@example.com"
        );
        assert_eq!(mask("13800138000"), "138****8000");
        assert_eq!(mask("wang@example.com"), "w***@example.com");
        assert!(is_email("a@b.cn") && !is_email("a@b") && !is_email("a b@c.cn"));
        assert!(is_phone("+86 138 0013 8000") && !is_phone("12ab"));
    }

    #[test]
    fn selectors_parse() {
        assert_eq!(
            Selector::parse("role:sales_manager").unwrap(),
            Selector::Role("sales_manager".into())
        );
        assert_eq!(Selector::parse("owner").unwrap(), Selector::Owner);
        assert!(Selector::parse("role:").is_err());
        assert!(Selector::parse("all").is_err());
    }
}
