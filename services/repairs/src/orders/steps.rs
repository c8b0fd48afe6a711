//! What each step of a repair order must record (R-2, R-6), what it changes on the order, and
//! the pickup receipt (取机凭证) whose code a hand-over is checked against.

use crm_kit::{
    Error, Result, Violations, convert,
    text::{self, Lines},
};
use crm_proto::repairs::v1::{
    self as pb, OrderKind as Kind, OrderState as S, OrderTransition as T,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// A checked TransitionRepairOrder: the transition and its details.
#[derive(Debug, Clone)]
pub struct Step {
    /// The order.
    pub id: Uuid,
    /// The request as given (texts trimmed).
    pub r: pb::TransitionRepairOrderRequest,
    /// The transition.
    pub transition: T,
}

impl Step {
    /// Checks the request at the edge: the id, the transition, every text's form, and the
    /// details the transition needs whatever the order (the order-dependent ones are checked
    /// by [`Step::check_for`]).
    pub fn parse(r: &pb::TransitionRepairOrderRequest) -> Result<Self> {
        let mut v = Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        let transition = T::try_from(r.transition).unwrap_or_default();
        if transition == T::Unspecified {
            v.add("transition", "is required");
        }
        let mut r = r.clone();
        for (field, value, max, lines) in [
            ("note", &mut r.note, 2000, Lines::Many),
            ("configuration", &mut r.configuration, 1000, Lines::Many),
            ("service_record", &mut r.service_record, 4000, Lines::Many),
            ("signature", &mut r.signature, 100, Lines::One),
            ("receipt_code", &mut r.receipt_code, 32, Lines::One),
            ("carrier", &mut r.carrier, 100, Lines::One),
            ("tracking_number", &mut r.tracking_number, 100, Lines::One),
        ] {
            text::check(&mut v, field, value, max, lines);
            *value = value.trim().to_string();
        }
        if r.accessories.len() > 50 {
            v.add("accessories", "must list at most 50 items");
        }
        for (i, a) in r.accessories.iter().enumerate() {
            text::require(&mut v, &format!("accessories[{i}]"), a, 100, Lines::One);
        }
        let need = |v: &mut Violations, field: &str, missing: bool, what: &str| {
            if missing {
                v.add(field, what.to_string());
            }
        };
        match transition {
            T::ReceiveShipment | T::ShipBack => {
                need(&mut v, "carrier", r.carrier.is_empty(), "is required");
                need(
                    &mut v,
                    "tracking_number",
                    r.tracking_number.is_empty(),
                    "is required",
                );
                if transition == T::ShipBack {
                    need(
                        &mut v,
                        "record_copy_enclosed",
                        !r.record_copy_enclosed,
                        "must be true: the customer copy of the service record goes with the unit",
                    );
                }
            }
            T::Inspect => need(
                &mut v,
                "configuration",
                r.configuration.is_empty(),
                "is required: the configuration checked at inspection",
            ),
            T::ContactCustomer | T::DeclineQuote | T::IssueReceipt | T::StartRepair => need(
                &mut v,
                "note",
                r.note.is_empty(),
                match transition {
                    T::IssueReceipt => {
                        "is required: the reason the unit is not repaired at once, as explained to the customer"
                    }
                    T::StartRepair => "is required: the diagnosis",
                    T::DeclineQuote => "is required: why the customer declined",
                    _ => "is required: what was said to the customer",
                },
            ),
            T::Quote => {
                need(
                    &mut v,
                    "price_policy_told",
                    !r.price_policy_told,
                    "must be true: the price policy is told before a quote",
                );
                if let Some(p) = crm_kit::money::problem(r.quote.as_ref()) {
                    v.add("quote", p);
                }
            }
            T::RepairWhileWaiting | T::CompleteRepair => {
                need(
                    &mut v,
                    "service_record",
                    r.service_record.is_empty(),
                    "is required",
                );
                need(
                    &mut v,
                    "tested",
                    !r.tested,
                    "must be true: the unit is tested before it goes back",
                );
            }
            T::HandOver => need(
                &mut v,
                "signature",
                r.signature.is_empty(),
                "is required: the customer inspects the unit and signs",
            ),
            T::AcceptQuote | T::NotifyCustomer | T::Unspecified => {}
        }
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            r,
            transition,
        })
    }

    /// The details that depend on the order: the customer's confirmation of a counter
    /// inspection, and the receipt code at a pickup after a receipt was issued.
    pub fn check_for(&self, order: &pb::RepairOrder, digest: Option<&[u8]>) -> Result<()> {
        let carry_in = order.kind == Kind::CarryIn as i32;
        match self.transition {
            T::Inspect if carry_in && !self.r.customer_confirmed => Err(Error::invalid(
                "customer_confirmed",
                "must be true: at the counter the customer confirms the inspection",
            )),
            T::HandOver => match digest {
                Some(_) if self.r.receipt_code.is_empty() => Err(Error::invalid(
                    "receipt_code",
                    "is required: the unit is handed back only against the customer's copy of the receipt",
                )),
                Some(d) if receipt_digest(&self.r.receipt_code) != d => Err(Error::invalid(
                    "receipt_code",
                    "does not match the customer's copy of the receipt",
                )),
                _ => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

/// What an order keeps that the API does not show, changed by steps.
#[derive(Debug, Clone, Default)]
pub struct Kept {
    /// Carry-in: when the customer arrived at the counter.
    pub arrival: Option<time::OffsetDateTime>,
    /// Repaired while the customer waited.
    pub while_waiting: bool,
    /// The pickup receipt's digest, once issued.
    pub digest: Option<Vec<u8>>,
}

/// Applies `step` (already allowed, taking the order to `to`) to the order at `now`; the new
/// pickup receipt's code when the step issued one.
pub fn apply(
    o: &mut pb::RepairOrder,
    kept: &mut Kept,
    step: &Step,
    to: S,
    now: time::OffsetDateTime,
) -> Option<String> {
    let r = &step.r;
    o.state = to as i32;
    // the customer leaves the counter: with the unit, or with a receipt
    let leaves_counter = |o: &mut pb::RepairOrder, kept: &Kept| {
        if let Some(arrival) = kept.arrival
            && o.counter_wait_seconds == 0
        {
            o.counter_wait_seconds = (now - arrival).whole_seconds().max(0);
        }
    };
    let mut receipt = None;
    match step.transition {
        T::ReceiveShipment => {
            o.inbound_carrier.clone_from(&r.carrier);
            o.inbound_tracking.clone_from(&r.tracking_number);
        }
        T::Inspect => {
            o.fault_reproduced = r.fault_reproduced;
            o.configuration.clone_from(&r.configuration);
            o.accessories = r.accessories.iter().map(|a| a.trim().to_string()).collect();
        }
        T::Quote => o.quote.clone_from(&r.quote),
        T::AcceptQuote => o.paid = true,
        T::RepairWhileWaiting => {
            o.service_record.clone_from(&r.service_record);
            kept.while_waiting = true;
        }
        T::CompleteRepair => o.service_record.clone_from(&r.service_record),
        T::IssueReceipt => {
            let code = new_receipt_code();
            kept.digest = Some(receipt_digest(&code));
            receipt = Some(code);
            leaves_counter(o, kept);
        }
        T::HandOver => {
            o.signed_by.clone_from(&r.signature);
            leaves_counter(o, kept);
        }
        T::ShipBack => {
            o.outbound_carrier.clone_from(&r.carrier);
            o.outbound_tracking.clone_from(&r.tracking_number);
        }
        T::ContactCustomer
        | T::DeclineQuote
        | T::StartRepair
        | T::NotifyCustomer
        | T::Unspecified => {}
    }
    receipt
}

/// A new pickup receipt code: ten random hexadecimal digits, grouped as `XXXXX-XXXXX`.
pub fn new_receipt_code() -> String {
    let hex = Uuid::new_v4().simple().to_string().to_uppercase();
    format!("{}-{}", &hex[..5], &hex[5..10])
}

/// The stored digest of a receipt code (case, spaces and dashes do not matter).
pub fn receipt_digest(code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    Sha256::digest(normal.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(t: T, edit: impl FnOnce(&mut pb::TransitionRepairOrderRequest)) -> Result<Step> {
        let mut r = pb::TransitionRepairOrderRequest {
            request_id: "r".into(),
            id: Uuid::nil().to_string(),
            transition: t as i32,
            ..Default::default()
        };
        edit(&mut r);
        Step::parse(&r)
    }

    fn fields(r: Result<impl std::fmt::Debug>) -> Vec<String> {
        match r {
            Err(Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn each_step_names_what_it_must_record() {
        assert_eq!(fields(step(T::Inspect, |_| {})), ["configuration"]);
        assert_eq!(fields(step(T::IssueReceipt, |_| {})), ["note"]);
        assert_eq!(
            fields(step(T::CompleteRepair, |_| {})),
            ["service_record", "tested"]
        );
        assert_eq!(
            fields(step(T::ShipBack, |_| {})),
            ["carrier", "tracking_number", "record_copy_enclosed"]
        );
        assert_eq!(
            fields(step(T::Quote, |_| {})),
            ["price_policy_told", "quote"]
        );
        assert_eq!(fields(step(T::HandOver, |_| {})), ["signature"]);
        assert!(step(T::AcceptQuote, |_| {}).is_ok());
    }

    #[test]
    fn a_pickup_needs_the_receipts_code_and_a_counter_inspection_the_customer() {
        let code = new_receipt_code();
        let digest = receipt_digest(&code);
        let carry_in = pb::RepairOrder {
            kind: Kind::CarryIn as i32,
            ..Default::default()
        };
        let hand_over = |code: &str| {
            step(T::HandOver, |r| {
                r.signature = "王晓明".into();
                r.receipt_code = code.into();
            })
            .unwrap()
        };
        assert!(
            hand_over(&code.to_lowercase())
                .check_for(&carry_in, Some(&digest))
                .is_ok()
        );
        assert_eq!(
            fields(hand_over("00000-00000").check_for(&carry_in, Some(&digest))),
            ["receipt_code"]
        );
        assert_eq!(
            fields(hand_over("").check_for(&carry_in, Some(&digest))),
            ["receipt_code"]
        );
        assert!(hand_over("").check_for(&carry_in, None).is_ok());
        let inspect = step(T::Inspect, |r| r.configuration = "8G/256G".into()).unwrap();
        assert_eq!(
            fields(inspect.check_for(&carry_in, None)),
            ["customer_confirmed"]
        );
        let mail_in = pb::RepairOrder {
            kind: Kind::MailIn as i32,
            ..Default::default()
        };
        assert!(inspect.check_for(&mail_in, None).is_ok());
    }
}
