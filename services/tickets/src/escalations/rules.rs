//! The escalation rules (T-8), with no I/O: what an application must hold, where an approved
//! escalation goes, which states are open.

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::tickets::v1 as pb;

/// Whether an escalation in `state` is still open (not rejected or resolved).
pub fn escalation_open(state: i32) -> bool {
    matches!(
        pb::EscalationState::try_from(state),
        Ok(pb::EscalationState::Requested | pb::EscalationState::Routed)
    )
}

/// The department an approved escalation goes to (T-8).
pub fn route(kind: pb::EscalationKind) -> &'static str {
    match kind {
        pb::EscalationKind::MajorQuality => "quality",
        pb::EscalationKind::Hardware => "qa_product",
        pb::EscalationKind::System | pb::EscalationKind::Unspecified => "tech_supervisor",
    }
}

/// A checked RequestEscalation.
#[derive(Debug, Clone)]
pub struct EscalationRequest {
    /// The ticket.
    pub ticket_id: uuid::Uuid,
    /// The kind.
    pub kind: pb::EscalationKind,
    /// The symptom, empty for the ticket's.
    pub symptom: String,
    /// Why.
    pub reason: String,
    /// Business hours to the time limit.
    pub time_limit_hours: i64,
    /// A batch failure (major quality only).
    pub batch_failure: bool,
}

impl EscalationRequest {
    /// Checks the form (T-8).
    pub fn parse(r: &pb::RequestEscalationRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let ticket_id = v.check(
            "ticket_id",
            uuid::Uuid::parse_str(&r.ticket_id).map_err(|_| "is not a valid id"),
        );
        let kind = match pb::EscalationKind::try_from(r.kind) {
            Ok(pb::EscalationKind::Unspecified) | Err(_) => {
                v.add("kind", "must be MAJOR_QUALITY, HARDWARE or SYSTEM");
                None
            }
            Ok(k) => Some(k),
        };
        text::check(&mut v, "symptom", &r.symptom, 4000, Lines::Many);
        text::require(&mut v, "reason", &r.reason, 1000, Lines::Many);
        if !(1..=720).contains(&r.time_limit_hours) {
            v.add("time_limit_hours", "must be 1 to 720 business hours");
        }
        if r.batch_failure && kind != Some(pb::EscalationKind::MajorQuality) {
            v.add("batch_failure", "is for MAJOR_QUALITY problems only");
        }
        v.finish()?;
        Ok(Self {
            ticket_id: ticket_id.expect("checked"),
            kind: kind.expect("checked"),
            symptom: r.symptom.trim().to_string(),
            reason: r.reason.trim().to_string(),
            time_limit_hours: i64::from(r.time_limit_hours),
            batch_failure: r.batch_failure,
        })
    }
}

/// Checks an escalation id and a note of at most 2000 characters (required when `required`).
pub fn parse_note(id: &str, note: &str, required: bool) -> Result<(uuid::Uuid, String), Error> {
    let mut v = Violations::new();
    let id = v.check(
        "id",
        uuid::Uuid::parse_str(id).map_err(|_| "is not a valid id"),
    );
    if let Some(p) = text::problem(note, 2000, Lines::Many) {
        v.add("note", p);
    } else if required && note.trim().is_empty() {
        v.add("note", "is required");
    }
    v.finish()?;
    Ok((id.expect("checked"), note.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalations_have_their_route_and_required_fields() {
        assert_eq!(route(pb::EscalationKind::MajorQuality), "quality");
        assert_eq!(route(pb::EscalationKind::Hardware), "qa_product");
        assert_eq!(route(pb::EscalationKind::System), "tech_supervisor");
        let bad = EscalationRequest::parse(&pb::RequestEscalationRequest {
            ticket_id: "x".into(),
            kind: pb::EscalationKind::Hardware as i32,
            batch_failure: true,
            time_limit_hours: 0,
            ..Default::default()
        })
        .unwrap_err();
        let Error::InvalidArgument(v) = bad else {
            panic!("{bad}")
        };
        let fields: Vec<_> = v.into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            ["ticket_id", "reason", "time_limit_hours", "batch_failure"]
        );
    }
}
