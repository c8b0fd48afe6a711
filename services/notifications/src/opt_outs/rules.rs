//! The checked SetOptOut (N-6).

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::notifications::v1 as pb;

use crate::rules::{Channel, is_email, is_phone, normalise_address};

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
