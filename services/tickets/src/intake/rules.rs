//! The intake checks (T-1): a checked CreateTicket and the fields UpdateTicket may change.

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::tickets::v1::{self as pb, ServiceMode, Warranty};

/// A checked CreateTicket.
pub fn parse_new(r: &pb::CreateTicketRequest) -> Result<pb::Ticket, Error> {
    let t = r.ticket.clone().unwrap_or_default();
    let mut v = Violations::new();
    if pb::Channel::try_from(t.channel).is_err()
        || t.channel == 0
        || t.channel == pb::Channel::Complaint as i32
    {
        v.add(
            "ticket.channel",
            "must be HOTLINE, EMAIL, WEB, PARTNER or ON_SITE",
        );
    }
    if uuid::Uuid::parse_str(&t.customer_id).is_err() {
        v.add("ticket.customer_id", "must be a customer id");
    }
    text::require(&mut v, "ticket.region", &t.region, 50, Lines::One);
    check_fields(&mut v, &t);
    v.finish()?;
    Ok(t)
}

/// Field checks shared by create and update.
pub fn check_fields(v: &mut Violations, t: &pb::Ticket) {
    for (field, value, max, lines) in [
        ("ticket.contact_name", &t.contact_name, 100, Lines::One),
        ("ticket.product_model", &t.product_model, 100, Lines::One),
        ("ticket.serial_number", &t.serial_number, 100, Lines::One),
        ("ticket.symptom", &t.symptom, 4000, Lines::Many),
    ] {
        text::check(v, field, value, max, lines);
    }
    crm_kit::phone::check(v, "ticket.contact_phone", &t.contact_phone);
    if !matches!(t.contact_language.as_str(), "" | "zh" | "en") {
        v.add("ticket.contact_language", "must be \"zh\", \"en\" or empty");
    }
    if Warranty::try_from(t.warranty).is_err() {
        v.add("ticket.warranty", "is not a warranty status");
    }
    if ServiceMode::try_from(t.service_mode).is_err() {
        v.add("ticket.service_mode", "is not a service mode");
    }
    if let Some(q) = &t.accepted_quote
        && (q.currency_code.len() != 3 || q.units < 0 || q.nanos < 0)
    {
        v.add(
            "ticket.accepted_quote",
            "must be a non-negative amount with a 3-letter currency",
        );
    }
}

/// The intake fields UpdateTicket may change.
pub const UPDATABLE: &[&str] = &[
    "contact_name",
    "contact_phone",
    "product_model",
    "serial_number",
    "symptom",
    "warranty",
    "service_mode",
    "price_policy_told",
    "accepted_quote",
    "contact_language",
];

/// Applies the masked fields of `patch` to `current`.
pub fn apply_update(
    current: &mut pb::Ticket,
    patch: &pb::Ticket,
    mask: &[String],
) -> Result<(), Error> {
    let mut v = Violations::new();
    let fields = crm_kit::mask::Mask {
        updatable: UPDATABLE,
        elsewhere: &[],
    };
    fields.apply(&mut v, mask, |path| match path {
        "contact_name" => current.contact_name.clone_from(&patch.contact_name),
        "contact_phone" => current.contact_phone.clone_from(&patch.contact_phone),
        "product_model" => current.product_model.clone_from(&patch.product_model),
        "serial_number" => current.serial_number.clone_from(&patch.serial_number),
        "symptom" => current.symptom.clone_from(&patch.symptom),
        "warranty" => current.warranty = patch.warranty,
        "service_mode" => current.service_mode = patch.service_mode,
        "price_policy_told" => current.price_policy_told = patch.price_policy_told,
        "accepted_quote" => current.accepted_quote.clone_from(&patch.accepted_quote),
        "contact_language" => current.contact_language.clone_from(&patch.contact_language),
        _ => unreachable!("every updatable field is copied"),
    });
    check_fields(&mut v, current);
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_updatable_field_is_copied() {
        let paths: Vec<String> = UPDATABLE.iter().map(ToString::to_string).collect();
        let mut current = pb::Ticket::default();
        let patch = pb::Ticket {
            symptom: "x".into(),
            ..Default::default()
        };
        apply_update(&mut current, &patch, &paths).unwrap();
        assert_eq!(current.symptom, "x");
        assert!(apply_update(&mut current, &patch, &[]).is_err());
    }
}
