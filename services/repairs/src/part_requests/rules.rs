//! The rules of part requests (R-3): what a request must give, the order of its steps, and
//! the settlement that accounts for every part taken out.

use crm_kit::{
    Error, Result, Violations, convert,
    text::{self, Lines},
};
use crm_proto::repairs::v1::{self as pb, PartRequestState as State};
use uuid::Uuid;

use crate::stock::rules::quantity;

/// A checked RequestParts.
#[derive(Debug, Clone)]
pub struct NewPartRequest {
    /// The centre whose stock to draw on.
    pub centre: Uuid,
    /// The part.
    pub part: Uuid,
    /// Units wanted.
    pub quantity: i32,
    /// The ticket the parts are for (empty when none).
    pub ticket_id: String,
    /// What they are for.
    pub note: String,
}

impl NewPartRequest {
    /// Checks RequestParts' request: every field named in one `INVALID_ARGUMENT`.
    pub fn parse(r: &pb::RequestPartsRequest) -> Result<Self> {
        let mut v = Violations::new();
        let centre = v.check("centre_id", convert::parse_id(&r.centre_id));
        let part = v.check("part_id", convert::parse_id(&r.part_id));
        v.check("quantity", quantity(r.quantity));
        if !r.ticket_id.is_empty() {
            v.check("ticket_id", convert::parse_id(&r.ticket_id));
        }
        text::check(&mut v, "note", &r.note, 500, Lines::Many);
        v.finish()?;
        Ok(Self {
            centre: centre.unwrap_or_default(),
            part: part.unwrap_or_default(),
            quantity: r.quantity,
            ticket_id: r.ticket_id.clone(),
            note: r.note.trim().to_string(),
        })
    }
}

/// A step of a part request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The parts are handed out.
    Issue,
    /// Every part taken out is accounted for.
    Settle,
    /// The reservation is released.
    Cancel,
}

impl Step {
    /// Its name in the history.
    pub fn name(self) -> &'static str {
        match self {
            Step::Issue => "issue",
            Step::Settle => "settle",
            Step::Cancel => "cancel",
        }
    }
}

/// The stored name of a state (`RESERVED`, …).
pub fn state_name(state: State) -> &'static str {
    state
        .as_str_name()
        .trim_start_matches("PART_REQUEST_STATE_")
}

/// The state stored as `name`.
pub fn state_of(name: &str) -> State {
    State::from_str_name(&format!("PART_REQUEST_STATE_{name}")).unwrap_or_default()
}

/// Where `step` takes a request in `state`; a step out of order is `FAILED_PRECONDITION`.
pub fn next(state: State, step: Step) -> Result<State> {
    match (state, step) {
        (State::Reserved, Step::Issue) => Ok(State::Issued),
        (State::Issued, Step::Settle) => Ok(State::Settled),
        (State::Reserved, Step::Cancel) => Ok(State::Cancelled),
        _ => Err(Error::precondition(
            "PART_REQUEST_STEP_OUT_OF_ORDER",
            format!(
                "a {} part request cannot be {}d (reserved → issued → settled, or reserved → cancelled)",
                state_name(state).to_lowercase(),
                step.name().trim_end_matches('e')
            ),
        )),
    }
}

/// Checks a settlement of `quantity` units: `used` and `returned` not negative and adding up
/// to the quantity (every part taken out comes back, used or not).
pub fn settlement(quantity: i32, used: i32, returned: i32) -> Result<()> {
    let mut v = Violations::new();
    if used < 0 {
        v.add("used", "must not be negative");
    }
    if returned < 0 {
        v.add("returned", "must not be negative");
    }
    if v.is_empty() && used.checked_add(returned) != Some(quantity) {
        v.add(
            "returned",
            format!("used + returned must equal the {quantity} units issued: every part comes back, used or not"),
        );
    }
    v.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_go_in_order() {
        assert_eq!(next(State::Reserved, Step::Issue).unwrap(), State::Issued);
        assert_eq!(next(State::Issued, Step::Settle).unwrap(), State::Settled);
        assert_eq!(
            next(State::Reserved, Step::Cancel).unwrap(),
            State::Cancelled
        );
        for (state, step) in [
            (State::Reserved, Step::Settle),
            (State::Issued, Step::Issue),
            (State::Issued, Step::Cancel),
            (State::Settled, Step::Settle),
            (State::Cancelled, Step::Issue),
        ] {
            let e = next(state, step).unwrap_err();
            assert_eq!(
                e.code(),
                tonic::Code::FailedPrecondition,
                "{state:?} {step:?}"
            );
        }
    }

    #[test]
    fn a_settlement_accounts_for_every_unit() {
        assert!(settlement(3, 1, 2).is_ok());
        assert!(settlement(3, 0, 3).is_ok());
        for (used, returned) in [(1, 1), (3, 1), (-1, 4), (i32::MAX, 1)] {
            assert!(
                settlement(3, used, returned).is_err(),
                "{used} + {returned}"
            );
        }
    }

    #[test]
    fn a_request_names_each_bad_field() {
        let r = pb::RequestPartsRequest {
            request_id: "r".into(),
            centre_id: "nope".into(),
            part_id: String::new(),
            quantity: 0,
            ticket_id: "x".into(),
            note: "a\0b".into(),
        };
        let Err(Error::InvalidArgument(v)) = NewPartRequest::parse(&r) else {
            panic!("accepted");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["centre_id", "part_id", "quantity", "ticket_id", "note"]
        );
    }

    #[test]
    fn states_round_trip_through_their_stored_names() {
        for s in [
            State::Reserved,
            State::Issued,
            State::Settled,
            State::Cancelled,
        ] {
            assert_eq!(state_of(state_name(s)), s);
        }
    }
}
