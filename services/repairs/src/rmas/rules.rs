//! The rules of returns and exchanges (R-4, R-6): what a request and a delivery must give,
//! the steps in order, what each step must record, and who may take it. Engineers may not
//! promise or decide an outcome, nor skip the judgement (严禁维修人员个人承诺, 严禁维修人员不经
//! 判断): the handling centre's engineer files the diagnosis — with its cause, always, whether
//! or not the unit qualifies, and never on another department's behalf — the tech centre
//! judges, and a supervisor who is not the requester decides.

use crm_kit::{
    Error, Result, Role, Violations,
    auth::Principal,
    convert,
    text::{self, Lines},
};
use crm_proto::repairs::v1::{self as pb, RmaOutcome as Outcome, RmaState as S, RmaStep as Step};
use uuid::Uuid;

use crate::{service::stored, stock::rules::quantity};

/// A checked RegisterDelivery.
pub fn parse_delivery(r: &pb::RegisterDeliveryRequest) -> Result<pb::Delivery> {
    let mut v = Violations::new();
    let d = r.delivery.clone().unwrap_or_default();
    v.check("delivery.customer_id", convert::parse_id(&d.customer_id));
    text::require(
        &mut v,
        "delivery.product_model",
        &d.product_model,
        100,
        Lines::One,
    );
    text::require(
        &mut v,
        "delivery.serial_number",
        &d.serial_number,
        100,
        Lines::One,
    );
    v.check("delivery.quantity", quantity(d.quantity));
    v.finish()?;
    Ok(pb::Delivery {
        id: String::new(),
        customer_id: d.customer_id,
        product_model: d.product_model.trim().to_string(),
        serial_number: d.serial_number.trim().to_string(),
        quantity: d.quantity,
        created: None,
    })
}

/// A checked RequestRma.
#[derive(Debug, Clone)]
pub struct NewRma {
    /// The handling centre.
    pub centre: Uuid,
    /// The request as given (trimmed).
    pub rma: pb::Rma,
}

impl NewRma {
    /// Checks RequestRma's request: every field named in one `INVALID_ARGUMENT`.
    pub fn parse(r: &pb::RequestRmaRequest) -> Result<Self> {
        let mut v = Violations::new();
        let a = r.rma.clone().unwrap_or_default();
        let centre = v.check("rma.centre_id", convert::parse_id(&a.centre_id));
        v.check("rma.customer_id", convert::parse_id(&a.customer_id));
        text::require(
            &mut v,
            "rma.serial_number",
            &a.serial_number,
            100,
            Lines::One,
        );
        v.check("rma.quantity", quantity(a.quantity));
        text::require(&mut v, "rma.reason", &a.reason, 2000, Lines::Many);
        v.finish()?;
        Ok(Self {
            centre: centre.unwrap_or_default(),
            rma: pb::Rma {
                centre_id: a.centre_id,
                customer_id: a.customer_id,
                serial_number: a.serial_number.trim().to_string(),
                quantity: a.quantity,
                reason: a.reason.trim().to_string(),
                ..Default::default()
            },
        })
    }
}

/// A checked TransitionRma.
#[derive(Debug, Clone)]
pub struct RmaStepInput {
    /// The request.
    pub id: Uuid,
    /// The step.
    pub step: Step,
    /// The request as given (texts trimmed).
    pub r: pb::TransitionRmaRequest,
    /// DECIDE an exchange: the replacement part.
    pub replacement: Option<Uuid>,
}

impl RmaStepInput {
    /// Checks the request at the edge: the id, the step, and what the step must record.
    pub fn parse(r: &pb::TransitionRmaRequest) -> Result<Self> {
        let mut v = Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        let step = Step::try_from(r.step).unwrap_or_default();
        if step == Step::Unspecified {
            v.add("step", "is required");
        }
        let mut r = r.clone();
        for (field, value, max, lines) in [
            ("fault_cause", &mut r.fault_cause, 2000, Lines::Many),
            (
                "customer_situation",
                &mut r.customer_situation,
                2000,
                Lines::Many,
            ),
            ("return_reason", &mut r.return_reason, 2000, Lines::Many),
            ("note", &mut r.note, 2000, Lines::Many),
            ("carrier", &mut r.carrier, 100, Lines::One),
            ("tracking_number", &mut r.tracking_number, 100, Lines::One),
        ] {
            text::check(&mut v, field, value, max, lines);
            *value = value.trim().to_string();
        }
        let outcome = Outcome::try_from(r.outcome).unwrap_or_default();
        let mut replacement = None;
        let required = |v: &mut Violations, field: &str, value: &str, what: &str| {
            if value.is_empty() {
                v.add(field, format!("is required: {what}"));
            }
        };
        match step {
            Step::Diagnose => {
                required(
                    &mut v,
                    "fault_cause",
                    &r.fault_cause,
                    "no report with an unclear cause",
                );
                required(
                    &mut v,
                    "customer_situation",
                    &r.customer_situation,
                    "the report states it",
                );
                required(
                    &mut v,
                    "return_reason",
                    &r.return_reason,
                    "the report states it",
                );
            }
            Step::Judge => required(&mut v, "note", &r.note, "the technical judgement"),
            Step::Decide => {
                required(&mut v, "note", &r.note, "the reason for the decision");
                if outcome == Outcome::Unspecified {
                    v.add("outcome", "is required: RETURN, EXCHANGE or REJECT");
                }
                if outcome == Outcome::Exchange {
                    replacement = v.check(
                        "replacement_part_id",
                        convert::parse_id(&r.replacement_part_id),
                    );
                }
            }
            Step::ShipReplacement => {
                required(&mut v, "carrier", &r.carrier, "the replacement's carrier");
                required(
                    &mut v,
                    "tracking_number",
                    &r.tracking_number,
                    "the replacement's tracking number",
                );
            }
            Step::HandToCommercial | Step::ReceiveFaultyUnit | Step::Unspecified => {}
        }
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            step,
            r,
            replacement,
        })
    }
}

/// Where `step` takes a request in `state` (with the decided `outcome`, and whether the faulty
/// unit is back); a step out of order is `FAILED_PRECONDITION`.
pub fn next(state: S, step: Step, outcome: Outcome, faulty_back: bool) -> Result<S> {
    let to = match (state, step) {
        (S::Requested, Step::Diagnose) => Some(S::Diagnosed),
        (S::Diagnosed, Step::Judge) => Some(S::Judged),
        (S::Judged, Step::Decide) => Some(match outcome {
            Outcome::Return => S::ReturnApproved,
            Outcome::Exchange => S::ExchangeApproved,
            _ => S::Closed,
        }),
        (S::ReturnApproved, Step::HandToCommercial) => Some(S::Closed),
        (S::ExchangeApproved, Step::ShipReplacement) => Some(if faulty_back {
            S::Closed
        } else {
            S::AwaitingReturn
        }),
        (S::ExchangeApproved, Step::ReceiveFaultyUnit) if !faulty_back => Some(S::ExchangeApproved),
        (S::AwaitingReturn, Step::ReceiveFaultyUnit) => Some(S::Closed),
        _ => None,
    };
    to.ok_or_else(|| {
        Error::precondition(
            "RMA_STEP_OUT_OF_ORDER",
            format!(
                "{} is not a step of a request in state {} (diagnosis → technical judgement → decision → return or exchange)",
                stored(step.as_str_name(), "RMA_STEP_").to_lowercase(),
                stored(state.as_str_name(), "RMA_STATE_").to_lowercase(),
            ),
        )
    })
}

/// Who may take `step`, for a request handled by `centre` and requested by `requester`.
pub fn may(caller: &Principal, step: Step, centre: &pb::Centre, requester: &str) -> Result<()> {
    let denied = |permission: &str| {
        Err(Error::PermissionDenied {
            permission: permission.to_string(),
        })
    };
    let admin = caller.has(Role::Admin);
    match step {
        Step::Diagnose => {
            let of_the_centre = if centre.partner_id.is_empty() {
                // an HQ or branch centre: its region's engineers, or the hotline engineers
                caller.has(Role::HotlineEngineer)
                    || (caller.has(Role::Engineer)
                        && !centre.region.is_empty()
                        && caller.region == centre.region)
            } else {
                // a partner centre or agent: its own organisation's people
                caller.partner_id == centre.partner_id
            };
            if of_the_centre {
                Ok(())
            } else {
                denied(
                    "filing the diagnosis report (an engineer of the handling centre; never on another department's behalf)",
                )
            }
        }
        Step::Judge if admin || caller.has(Role::TechCenter) => Ok(()),
        Step::Judge => denied("the technical judgement (the tech centre)"),
        Step::Decide if caller.subject == requester => {
            denied("deciding one's own request (the approver is never the requester)")
        }
        Step::Decide if admin || caller.has(Role::Supervisor) => Ok(()),
        Step::Decide => {
            denied("deciding a return or exchange (a supervisor; engineers never decide)")
        }
        Step::ShipReplacement | Step::HandToCommercial
            if admin
                || caller.has_any(&[Role::Supervisor, Role::Coordinator, Role::TechSupport]) =>
        {
            Ok(())
        }
        Step::ShipReplacement | Step::HandToCommercial => {
            denied("carrying out a decided return or exchange (tech support, coordinators)")
        }
        Step::ReceiveFaultyUnit => Ok(()),
        Step::Unspecified => denied("an unnamed step"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[&str], region: &str, partner: &str, subject: &str) -> Principal {
        Principal {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: region.into(),
            partner_id: partner.into(),
            ..Principal::system(subject)
        }
    }

    #[test]
    fn the_steps_go_in_order_and_none_is_skipped() {
        use Outcome::*;
        assert_eq!(
            next(S::Requested, Step::Diagnose, Unspecified, false).unwrap(),
            S::Diagnosed
        );
        assert_eq!(
            next(S::Judged, Step::Decide, Exchange, false).unwrap(),
            S::ExchangeApproved
        );
        assert_eq!(
            next(S::Judged, Step::Decide, Reject, false).unwrap(),
            S::Closed
        );
        assert_eq!(
            next(S::ExchangeApproved, Step::ShipReplacement, Exchange, false).unwrap(),
            S::AwaitingReturn
        );
        assert_eq!(
            next(S::ExchangeApproved, Step::ShipReplacement, Exchange, true).unwrap(),
            S::Closed
        );
        assert_eq!(
            next(S::AwaitingReturn, Step::ReceiveFaultyUnit, Exchange, false).unwrap(),
            S::Closed
        );
        for (state, step) in [
            (S::Requested, Step::Judge),
            (S::Requested, Step::Decide),
            (S::Diagnosed, Step::Decide),
            (S::ReturnApproved, Step::ShipReplacement),
            (S::Closed, Step::Diagnose),
        ] {
            assert_eq!(
                next(state, step, Exchange, false).unwrap_err().code(),
                tonic::Code::FailedPrecondition,
                "{state:?} {step:?}"
            );
        }
    }

    #[test]
    fn only_the_centres_engineer_diagnoses_and_nobody_decides_their_own_request() {
        let branch = pb::Centre {
            region: "华东".into(),
            ..Default::default()
        };
        let partner_centre = pb::Centre {
            partner_id: "p.a".into(),
            ..Default::default()
        };
        let east = principal(&["engineer"], "华东", "", "e1");
        let south = principal(&["engineer"], "华南", "", "e2");
        assert!(may(&east, Step::Diagnose, &branch, "r").is_ok());
        assert!(may(&south, Step::Diagnose, &branch, "r").is_err());
        assert!(may(&east, Step::Diagnose, &partner_centre, "r").is_err());
        assert!(
            may(
                &principal(&["partner"], "", "p.a", "k"),
                Step::Diagnose,
                &partner_centre,
                "r"
            )
            .is_ok()
        );
        assert!(
            may(
                &principal(&["partner"], "", "p.b", "k"),
                Step::Diagnose,
                &partner_centre,
                "r"
            )
            .is_err()
        );
        // an engineer never judges nor decides
        assert!(may(&east, Step::Judge, &branch, "r").is_err());
        assert!(may(&east, Step::Decide, &branch, "r").is_err());
        let boss = principal(&["supervisor"], "", "", "boss");
        assert!(may(&boss, Step::Decide, &branch, "r").is_ok());
        assert!(may(&boss, Step::Decide, &branch, "boss").is_err());
    }

    #[test]
    fn a_report_without_a_cause_is_refused() {
        let r = pb::TransitionRmaRequest {
            request_id: "r".into(),
            id: Uuid::nil().to_string(),
            step: Step::Diagnose as i32,
            customer_situation: "用户急需".into(),
            return_reason: "主板故障".into(),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(v)) = RmaStepInput::parse(&r) else {
            panic!("accepted");
        };
        assert_eq!(v[0].field, "fault_cause");
    }
}
