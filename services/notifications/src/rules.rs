//! The notification rules every capability shares, with no I/O: channels, languages,
//! recipient selectors and recipients, and addresses (normalised, masked).

use crm_proto::notifications::v1 as pb;

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
    /// Who requested what the event is about (a return/exchange request's requester).
    Requester,
    /// A repair centre's people: a partner centre's own organisation (inbox and webhook), an
    /// HQ or branch centre's coordinators.
    Centre,
    /// A repair centre's supervisor, or without one the supervisors of its region.
    CentreSupervisor,
    /// The staff member a complaint is about (the person responsible, Q-2).
    Staff,
    /// The supervisors of the region of the staff member a complaint is about.
    StaffSupervisors,
    /// The users with the roles a complaint was routed to (the product department's, Q-2).
    RoutedRoles,
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
            "centre" => Ok(Self::Centre),
            "centre_supervisor" => Ok(Self::CentreSupervisor),
            "staff" => Ok(Self::Staff),
            "staff_supervisors" => Ok(Self::StaffSupervisors),
            "routed_roles" => Ok(Self::RoutedRoles),
            "requester" => Ok(Self::Requester),
            _ => named("role:")
                .map(Self::Role)
                .or_else(|| named("user:").map(Self::User))
                .or_else(|| named("partner_org:").map(Self::PartnerOrg))
                .ok_or_else(|| {
                    format!(
                        "no recipient selector {value:?} (owner, partner, contacts, actor, \
                         assignee, centre, centre_supervisor, requester, staff, \
                         staff_supervisors, routed_roles, role:<role>, user:<id>, partner_org:<id>)"
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(Selector::parse("centre").unwrap(), Selector::Centre);
        assert_eq!(
            Selector::parse("centre_supervisor").unwrap(),
            Selector::CentreSupervisor
        );
        assert_eq!(Selector::parse("staff").unwrap(), Selector::Staff);
        assert_eq!(
            Selector::parse("staff_supervisors").unwrap(),
            Selector::StaffSupervisors
        );
        assert_eq!(
            Selector::parse("routed_roles").unwrap(),
            Selector::RoutedRoles
        );
        assert!(Selector::parse("role:").is_err());
        assert!(Selector::parse("all").is_err());
    }
}
