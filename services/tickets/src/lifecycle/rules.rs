//! The checked TransitionTicket (T-3, T-7): the step, its parts and the service record.

use crm_kit::{
    Error, Violations,
    text::{self, Lines},
};
use crm_proto::tickets::v1::{self as pb, Transition};

/// A checked TransitionTicket.
#[derive(Debug, Clone)]
pub struct TransitionInput {
    /// The ticket.
    pub id: uuid::Uuid,
    /// The transition.
    pub transition: Transition,
    /// The version read (0: no check).
    pub version: i64,
    /// Why.
    pub reason: String,
    /// For dispatch.
    pub assignee_id: String,
    /// For close: 1–5, or 0 with a reason.
    pub satisfaction: i32,
    /// For resolve (finished) and an unfinished visit: the service record, checked.
    pub record: Option<pb::ServiceRecord>,
    /// For dispatch: the spare parts to prepare, checked.
    pub parts_to_prepare: Vec<pb::PartUsed>,
}

/// Checks a list of parts: numbers of 1 to 100 characters, quantities of at least 1.
fn check_parts(v: &mut Violations, field: &str, parts: &[pb::PartUsed]) {
    if parts.len() > 100 {
        v.add(field, "must list at most 100 parts");
    }
    for (i, p) in parts.iter().enumerate() {
        text::require(
            v,
            &format!("{field}[{i}].part_number"),
            &p.part_number,
            100,
            Lines::One,
        );
        if p.quantity < 1 {
            v.add(format!("{field}[{i}].quantity"), "must be at least 1");
        }
    }
}

/// Checks a service record (T-7): work done and diagnosis, parts with quantities; a finished
/// visit needs the customer's confirmation (a signature by name and time, or an image
/// reference); an unfinished one its reason and the booked second visit.
fn check_record(
    v: &mut Violations,
    r: Option<&pb::ServiceRecord>,
    finished: bool,
) -> Option<pb::ServiceRecord> {
    let Some(r) = r else {
        v.add("service_record", "is required: what the visit did");
        return None;
    };
    let f = |name: &str| format!("service_record.{name}");
    for (name, value, max) in [
        ("work_done", &r.work_done, 4000),
        ("diagnosis", &r.diagnosis, 4000),
    ] {
        text::require(v, &f(name), value, max, Lines::Many);
    }
    check_parts(v, &f("parts_used"), &r.parts_used);
    text::check(
        v,
        &f("unfinished_reason"),
        &r.unfinished_reason,
        1000,
        Lines::Many,
    );
    match r.confirmation.as_ref().and_then(|c| c.proof.as_ref()) {
        Some(pb::confirmation::Proof::Signature(s)) => {
            text::check(
                v,
                &f("confirmation.signature.name"),
                &s.name,
                100,
                Lines::One,
            );
        }
        Some(pb::confirmation::Proof::ImageRef(i)) => {
            text::check(v, &f("confirmation.image_ref"), i, 500, Lines::One);
        }
        None => {}
    }
    if finished {
        use pb::confirmation::Proof;
        match r.confirmation.as_ref().and_then(|c| c.proof.as_ref()) {
            Some(Proof::Signature(s)) if !s.name.trim().is_empty() && s.time.is_some() => {}
            Some(Proof::ImageRef(i)) if !i.trim().is_empty() && i.chars().count() <= 500 => {}
            _ => v.add(
                f("confirmation"),
                "the customer's confirmation is required: a signature (name and time) or an image reference",
            ),
        }
    } else {
        if r.unfinished_reason.trim().is_empty() {
            v.add(
                f("unfinished_reason"),
                "is required for an unfinished visit",
            );
        }
        if r.second_visit_time.is_none() {
            v.add(f("second_visit_time"), "is required: book the second visit");
        }
    }
    let mut record = r.clone();
    record.finished = finished;
    Some(record)
}

impl TransitionInput {
    /// Checks the request's shape (the state rules are checked against the stored ticket).
    pub fn parse(r: &pb::TransitionTicketRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let id = v.check(
            "id",
            uuid::Uuid::parse_str(&r.id).map_err(|_| "is not a valid id"),
        );
        let transition = match Transition::try_from(r.transition) {
            Ok(Transition::Unspecified) | Err(_) => {
                v.add("transition", "must name a transition");
                None
            }
            Ok(Transition::RouteToCentre) => {
                v.add(
                    "transition",
                    "ROUTE_TO_CENTRE is recorded when a repair order is opened for the ticket",
                );
                None
            }
            Ok(Transition::ReopenForComplaint) => {
                v.add(
                    "transition",
                    "REOPEN_FOR_COMPLAINT is recorded when a service complaint names the ticket",
                );
                None
            }
            Ok(t) => Some(t),
        };
        text::check(&mut v, "reason", &r.reason, 1000, Lines::Many);
        text::check(&mut v, "assignee_id", &r.assignee_id, 100, Lines::One);
        match transition {
            Some(Transition::WaitForCustomer) if r.reason.trim().is_empty() => {
                v.add("reason", "is required: what the customer is to do")
            }
            Some(Transition::Close) => {
                if !(0..=5).contains(&r.satisfaction) {
                    v.add("satisfaction", "must be 1 to 5, or 0 with a refusal reason");
                } else if r.satisfaction == 0 && r.reason.trim().is_empty() {
                    v.add(
                        "satisfaction",
                        "closing needs the satisfaction result, or a reason why there is none",
                    );
                }
            }
            _ => {}
        }
        if r.version < 0 {
            v.add("version", "must not be negative");
        }
        let record = match transition {
            Some(Transition::Resolve) => check_record(&mut v, r.service_record.as_ref(), true),
            Some(Transition::RecordUnfinishedVisit) => {
                check_record(&mut v, r.service_record.as_ref(), false)
            }
            _ => None,
        };
        if !r.parts_to_prepare.is_empty() {
            if transition == Some(Transition::Dispatch) {
                check_parts(&mut v, "parts_to_prepare", &r.parts_to_prepare);
            } else {
                v.add("parts_to_prepare", "is for DISPATCH only");
            }
        }
        v.finish()?;
        Ok(Self {
            record,
            parts_to_prepare: r.parts_to_prepare.clone(),
            id: id.expect("checked"),
            transition: transition.expect("checked"),
            version: r.version,
            reason: r.reason.trim().to_string(),
            assignee_id: r.assignee_id.trim().to_string(),
            satisfaction: r.satisfaction,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_needs_satisfaction_or_a_refusal() {
        let r = |satisfaction, reason: &str| pb::TransitionTicketRequest {
            request_id: "r".into(),
            id: uuid::Uuid::now_v7().to_string(),
            transition: Transition::Close as i32,
            satisfaction,
            reason: reason.into(),
            ..Default::default()
        };
        assert!(TransitionInput::parse(&r(4, "")).is_ok());
        assert!(TransitionInput::parse(&r(0, "customer declined the survey")).is_ok());
        assert!(TransitionInput::parse(&r(0, "")).is_err());
        assert!(TransitionInput::parse(&r(6, "")).is_err());
    }

    #[test]
    fn a_service_record_needs_its_parts_confirmation_or_second_visit() {
        let record = pb::ServiceRecord {
            work_done: "更换主板".into(),
            diagnosis: "主板电源模块损坏".into(),
            parts_used: vec![pb::PartUsed {
                part_number: "MB-200".into(),
                quantity: 1,
            }],
            ..Default::default()
        };
        let r = |t: Transition, record: pb::ServiceRecord| pb::TransitionTicketRequest {
            request_id: "r".into(),
            id: uuid::Uuid::now_v7().to_string(),
            transition: t as i32,
            service_record: Some(record),
            ..Default::default()
        };
        let fields = |e: Error| match e {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect::<Vec<_>>(),
            other => panic!("{other}"),
        };
        assert_eq!(
            fields(TransitionInput::parse(&r(Transition::Resolve, record.clone())).unwrap_err()),
            ["service_record.confirmation"]
        );
        let mut signed = record.clone();
        signed.confirmation = Some(pb::Confirmation {
            proof: Some(pb::confirmation::Proof::Signature(pb::Signature {
                name: "王晓明".into(),
                time: Some(prost_types::Timestamp::default()),
            })),
        });
        let ok = TransitionInput::parse(&r(Transition::Resolve, signed)).unwrap();
        assert!(ok.record.unwrap().finished);
        assert_eq!(
            fields(
                TransitionInput::parse(&r(Transition::RecordUnfinishedVisit, record.clone()))
                    .unwrap_err()
            ),
            [
                "service_record.unfinished_reason",
                "service_record.second_visit_time"
            ]
        );
        let mut bad = record;
        bad.parts_used[0].quantity = 0;
        bad.work_done.clear();
        assert_eq!(
            fields(TransitionInput::parse(&r(Transition::Resolve, bad)).unwrap_err()),
            [
                "service_record.work_done",
                "service_record.parts_used[0].quantity",
                "service_record.confirmation"
            ]
        );
    }
}
