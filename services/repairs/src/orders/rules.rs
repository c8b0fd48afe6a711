//! The rules of a repair order: what a new order must give and the flow of each
//! kind as a table of named transitions (what each step must record is in `steps`).
//!
//! Carry-in (送修): RECEIVED at the counter → INSPECTED with the customer → either repaired
//! while the customer waits (REPAIRED, then HAND_OVER with the customer's signature) or not
//! (ISSUE_RECEIPT: the reason told, a pickup receipt issued → IN_REPAIR → REPAIRED → the
//! coordinator tells the customer, READY → HAND_OVER only against the receipt's code).
//! Mail-in (寄修): AWAITING_ARRIVAL → RECEIVE_SHIPMENT → INSPECTED by the engineer first →
//! CUSTOMER_CONTACTED → START_REPAIR (diagnosis) → REPAIRED → READY → SHIP_BACK with the
//! customer copy of the record. Either may branch into paid service after inspection (QUOTE
//! with the price policy told → ACCEPT_QUOTE and continue, or DECLINE_QUOTE → READY
//! unrepaired).

use crm_kit::{
    Error, Result, Violations, convert, phone,
    text::{self, Lines},
};
use crm_proto::repairs::v1::{
    self as pb, OrderKind as Kind, OrderState as S, OrderTransition as T,
};
use uuid::Uuid;

/// A checked new order.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// The order as given (state, number and stamps not yet set).
    pub order: pb::RepairOrder,
    /// Its kind.
    pub kind: Kind,
    /// The centre.
    pub centre: Uuid,
}

impl NewOrder {
    /// Checks CreateRepairOrder's request: every field named in one `INVALID_ARGUMENT`.
    pub fn parse(r: &pb::CreateRepairOrderRequest) -> Result<Self> {
        let mut v = Violations::new();
        let o = r.repair_order.clone().unwrap_or_default();
        let kind = Kind::try_from(o.kind).unwrap_or_default();
        if kind == Kind::Unspecified {
            v.add("repair_order.kind", "is required: CARRY_IN or MAIL_IN");
        }
        let centre = v.check("repair_order.centre_id", convert::parse_id(&o.centre_id));
        for (field, value) in [
            ("repair_order.ticket_id", &o.ticket_id),
            ("repair_order.customer_id", &o.customer_id),
        ] {
            if !value.is_empty() {
                v.check(field, convert::parse_id(value));
            }
        }
        text::require(
            &mut v,
            "repair_order.contact_name",
            &o.contact_name,
            100,
            Lines::One,
        );
        let phone = if o.contact_phone.trim().is_empty() {
            v.add("repair_order.contact_phone", "is required");
            None
        } else {
            phone::check(&mut v, "repair_order.contact_phone", &o.contact_phone)
        };
        text::require(
            &mut v,
            "repair_order.product_model",
            &o.product_model,
            100,
            Lines::One,
        );
        text::require(
            &mut v,
            "repair_order.serial_number",
            &o.serial_number,
            100,
            Lines::One,
        );
        text::require(
            &mut v,
            "repair_order.fault_description",
            &o.fault_description,
            2000,
            Lines::Many,
        );
        for (field, value) in [
            ("repair_order.inbound_carrier", &o.inbound_carrier),
            ("repair_order.inbound_tracking", &o.inbound_tracking),
        ] {
            text::check(&mut v, field, value, 100, Lines::One);
            if kind == Kind::CarryIn && !value.is_empty() {
                v.add(field, "is for mail-in orders only");
            }
        }
        v.finish()?;
        let order = pb::RepairOrder {
            kind: kind as i32,
            centre_id: o.centre_id.clone(),
            ticket_id: o.ticket_id.clone(),
            customer_id: o.customer_id.clone(),
            contact_name: o.contact_name.trim().to_string(),
            contact_phone: phone.map(|p| p.as_str().to_string()).unwrap_or_default(),
            product_model: o.product_model.trim().to_string(),
            serial_number: o.serial_number.trim().to_string(),
            fault_description: o.fault_description.trim().to_string(),
            inbound_carrier: o.inbound_carrier.trim().to_string(),
            inbound_tracking: o.inbound_tracking.trim().to_string(),
            ..Default::default()
        };
        Ok(Self {
            order,
            kind,
            centre: centre.unwrap_or_default(),
        })
    }
}

/// Where a new order of `kind` starts: a carry-in at the counter, a mail-in on its way.
pub fn initial(kind: Kind) -> S {
    match kind {
        Kind::MailIn => S::AwaitingArrival,
        _ => S::Received,
    }
}

/// Whether an order in `state` is closed (handed back or shipped).
pub fn closed(state: S) -> bool {
    matches!(state, S::Completed | S::Shipped)
}

/// Where `t` takes an order of `kind` in `state` (`while_waiting`: it was repaired while the
/// customer waited); a transition the kind and state do not allow is `FAILED_PRECONDITION`.
pub fn next(kind: Kind, state: S, t: T, while_waiting: bool) -> Result<S> {
    use Kind::{CarryIn, MailIn};
    let to = match (kind, state, t) {
        (MailIn, S::AwaitingArrival, T::ReceiveShipment) => Some(S::Received),
        (_, S::Received, T::Inspect) => Some(S::Inspected),
        (MailIn, S::Inspected, T::ContactCustomer) => Some(S::CustomerContacted),
        (CarryIn, S::Inspected, T::Quote) | (MailIn, S::CustomerContacted, T::Quote) => {
            Some(S::Quoted)
        }
        (_, S::Quoted, T::AcceptQuote) => Some(S::QuoteAccepted),
        (_, S::Quoted, T::DeclineQuote) => Some(S::Ready),
        (CarryIn, S::Inspected | S::QuoteAccepted, T::RepairWhileWaiting) => Some(S::Repaired),
        (CarryIn, S::Inspected | S::QuoteAccepted, T::IssueReceipt) => Some(S::InRepair),
        (MailIn, S::CustomerContacted | S::QuoteAccepted, T::StartRepair) => Some(S::InRepair),
        (_, S::InRepair, T::CompleteRepair) => Some(S::Repaired),
        (_, S::Repaired, T::NotifyCustomer) if !while_waiting => Some(S::Ready),
        (CarryIn, S::Ready, T::HandOver) => Some(S::Completed),
        (CarryIn, S::Repaired, T::HandOver) if while_waiting => Some(S::Completed),
        (MailIn, S::Ready, T::ShipBack) => Some(S::Shipped),
        _ => None,
    };
    to.ok_or_else(|| {
        Error::precondition(
            "ORDER_TRANSITION_FORBIDDEN",
            format!(
                "{} is not a step of a {} order in state {}",
                name(t.as_str_name(), "ORDER_TRANSITION_"),
                name(kind.as_str_name(), "ORDER_KIND_"),
                name(state.as_str_name(), "ORDER_STATE_"),
            ),
        )
    })
}

fn name(s: &str, prefix: &str) -> String {
    s.trim_start_matches(prefix).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carry_in_has_its_two_branches_and_mail_in_its_own_path() {
        use Kind::{CarryIn, MailIn};
        let walk = |kind: Kind, steps: &[T]| {
            let mut state = initial(kind);
            let mut waiting = false;
            for t in steps {
                state = next(kind, state, *t, waiting).unwrap_or_else(|e| panic!("{t:?}: {e}"));
                waiting |= *t == T::RepairWhileWaiting;
            }
            state
        };
        assert_eq!(
            walk(CarryIn, &[T::Inspect, T::RepairWhileWaiting, T::HandOver]),
            S::Completed
        );
        assert_eq!(
            walk(
                CarryIn,
                &[
                    T::Inspect,
                    T::IssueReceipt,
                    T::CompleteRepair,
                    T::NotifyCustomer,
                    T::HandOver
                ]
            ),
            S::Completed
        );
        assert_eq!(
            walk(
                MailIn,
                &[
                    T::ReceiveShipment,
                    T::Inspect,
                    T::ContactCustomer,
                    T::Quote,
                    T::AcceptQuote,
                    T::StartRepair,
                    T::CompleteRepair,
                    T::NotifyCustomer,
                    T::ShipBack
                ]
            ),
            S::Shipped
        );
        assert_eq!(
            walk(
                CarryIn,
                &[T::Inspect, T::Quote, T::DeclineQuote, T::HandOver]
            ),
            S::Completed
        );
    }

    #[test]
    fn no_step_can_be_skipped_or_taken_by_the_other_kind() {
        use Kind::{CarryIn, MailIn};
        for (kind, state, t, waiting) in [
            // mail-in: the engineer inspects before contacting, contacts before repairing
            (MailIn, S::AwaitingArrival, T::Inspect, false),
            (MailIn, S::Inspected, T::StartRepair, false),
            (MailIn, S::Ready, T::HandOver, false),
            // carry-in never ships back, nor waits for a parcel
            (CarryIn, S::Ready, T::ShipBack, false),
            (CarryIn, S::Received, T::ReceiveShipment, false),
            // no repair before inspection, no hand-over before the customer was told
            (CarryIn, S::Received, T::RepairWhileWaiting, false),
            (CarryIn, S::Repaired, T::HandOver, false),
            (CarryIn, S::Repaired, T::NotifyCustomer, true),
            // a quote is accepted or declined before the repair goes on
            (CarryIn, S::Quoted, T::IssueReceipt, false),
            (CarryIn, S::Completed, T::HandOver, false),
        ] {
            let e = next(kind, state, t, waiting).unwrap_err();
            assert_eq!(
                e.code(),
                tonic::Code::FailedPrecondition,
                "{kind:?} {state:?} {t:?}"
            );
        }
    }
}
