//! The checked SendNotification (N-2).

use std::collections::BTreeMap;

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::notifications::v1 as pb;

use crate::{
    rules::{Channel, Contact, Language, Recipient, is_email, is_phone},
    templates::rules::check_template_name,
};

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
