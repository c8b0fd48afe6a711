//! The intake checks: a checked CreateComplaint — content, customer, contact, channel,
//! kind, the apology and a committed deadline in the future — every wrong field named.

use crm_kit::{
    Result, Violations, convert,
    text::{self, Lines},
};
use crm_proto::complaints::v1::{self as pb, ComplaintChannel, ComplaintKind};
use time::OffsetDateTime;

/// A checked CreateComplaint: the complaint with its texts trimmed, and its committed deadline.
#[derive(Debug, Clone)]
pub struct NewComplaint {
    /// The complaint as given (output-only fields cleared).
    pub complaint: pb::Complaint,
    /// Its kind.
    pub kind: ComplaintKind,
    /// The committed deadline (checked against the clock by the use case).
    pub committed_due: OffsetDateTime,
}

impl NewComplaint {
    /// Checks the request.
    pub fn parse(r: &pb::CreateComplaintRequest) -> Result<Self> {
        let c = r.complaint.clone().unwrap_or_default();
        let mut v = Violations::new();
        let kind = ComplaintKind::try_from(c.kind).unwrap_or_default();
        if kind == ComplaintKind::Unspecified {
            v.add("complaint.kind", "must be PRODUCT, SERVICE or STAFF");
        }
        if ComplaintChannel::try_from(c.channel).unwrap_or_default()
            == ComplaintChannel::Unspecified
        {
            v.add(
                "complaint.channel",
                "must be HOTLINE, EMAIL, WEB, IN_PERSON or PARTNER",
            );
        }
        if convert::parse_id(&c.customer_id).is_err() {
            v.add("complaint.customer_id", "must be a customer id");
        }
        text::require(&mut v, "complaint.content", &c.content, 8000, Lines::Many);
        text::require(
            &mut v,
            "complaint.contact_name",
            &c.contact_name,
            100,
            Lines::One,
        );
        text::require(&mut v, "complaint.apology", &c.apology, 500, Lines::Many);
        crm_kit::phone::check(&mut v, "complaint.contact_phone", &c.contact_phone);
        crm_kit::email::check(&mut v, "complaint.contact_email", &c.contact_email);
        if c.contact_phone.trim().is_empty() && c.contact_email.trim().is_empty() {
            v.add(
                "complaint.contact_phone",
                "a phone or an e-mail is required",
            );
        }
        if !matches!(c.contact_language.as_str(), "zh" | "en") {
            v.add("complaint.contact_language", "must be \"zh\" or \"en\"");
        }
        for (field, value, max, lines) in [
            (
                "complaint.staff_comment",
                &c.staff_comment,
                4000,
                Lines::Many,
            ),
            ("complaint.product_model", &c.product_model, 100, Lines::One),
            ("complaint.serial_number", &c.serial_number, 100, Lines::One),
            ("complaint.staff_id", &c.staff_id, 100, Lines::One),
            ("complaint.partner_id", &c.partner_id, 100, Lines::One),
        ] {
            text::check(&mut v, field, value, max, lines);
        }
        if !c.ticket_id.is_empty() && convert::parse_id(&c.ticket_id).is_err() {
            v.add("complaint.ticket_id", "must be a ticket id");
        }
        if kind == ComplaintKind::Staff && c.staff_id.trim().is_empty() {
            v.add(
                "complaint.staff_id",
                "a staff complaint names the staff member",
            );
        }
        let committed_due = match c.committed_due.as_ref().map(convert::from_timestamp) {
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                v.add("complaint.committed_due", e);
                None
            }
            None => {
                v.add(
                    "complaint.committed_due",
                    "is required: the processing deadline committed to the customer",
                );
                None
            }
        };
        v.finish()?;
        let trim = |s: &str| s.trim().to_string();
        Ok(Self {
            complaint: pb::Complaint {
                kind: kind as i32,
                channel: c.channel,
                customer_id: trim(&c.customer_id),
                contact_name: trim(&c.contact_name),
                contact_phone: trim(&c.contact_phone),
                contact_email: trim(&c.contact_email),
                contact_language: c.contact_language.clone(),
                content: trim(&c.content),
                staff_comment: trim(&c.staff_comment),
                product_model: trim(&c.product_model),
                serial_number: trim(&c.serial_number),
                ticket_id: trim(&c.ticket_id),
                staff_id: trim(&c.staff_id),
                partner_id: trim(&c.partner_id),
                apology: trim(&c.apology),
                ..Default::default()
            },
            kind,
            committed_due: committed_due.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_kit::Error;

    fn fields(e: Error) -> Vec<String> {
        match e {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("not INVALID_ARGUMENT: {other:?}"),
        }
    }

    #[test]
    fn an_empty_complaint_names_every_missing_field() {
        let got = fields(NewComplaint::parse(&pb::CreateComplaintRequest::default()).unwrap_err());
        for f in [
            "complaint.kind",
            "complaint.channel",
            "complaint.customer_id",
            "complaint.content",
            "complaint.contact_name",
            "complaint.apology",
            "complaint.contact_phone",
            "complaint.contact_language",
            "complaint.committed_due",
        ] {
            assert!(got.contains(&f.to_string()), "{f} missing from {got:?}");
        }
    }
}
