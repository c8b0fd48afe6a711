//! The rules of a part swap (R-3): what a swap must record — the removed unit's fault label
//! and the installed unit — and the states of a serialised unit.

use crm_kit::{
    Result, Violations, convert,
    text::{self, Lines},
};
use crm_proto::repairs::v1::{self as pb, SerialState};
use uuid::Uuid;

/// A checked RecordSwap.
#[derive(Debug, Clone)]
pub struct NewSwap {
    /// The swapping centre.
    pub centre: Uuid,
    /// The part.
    pub part: Uuid,
    /// The repair order, when for one.
    pub order: Option<Uuid>,
    /// The on-site ticket, when for one (empty otherwise).
    pub ticket_id: String,
    /// The removed unit's serial.
    pub removed_serial: String,
    /// The fault on its label.
    pub fault: String,
    /// The installed unit's serial.
    pub installed_serial: String,
    /// Where the removed unit goes back to.
    pub return_centre: Uuid,
}

impl NewSwap {
    /// Checks RecordSwap's request: every field named in one `INVALID_ARGUMENT`.
    pub fn parse(r: &pb::RecordSwapRequest) -> Result<Self> {
        let mut v = Violations::new();
        let s = r.swap.clone().unwrap_or_default();
        let centre = v.check("swap.centre_id", convert::parse_id(&s.centre_id));
        let part = v.check("swap.part_id", convert::parse_id(&s.part_id));
        let return_centre = v.check(
            "swap.return_centre_id",
            convert::parse_id(&s.return_centre_id),
        );
        let order = match (s.order_id.is_empty(), s.ticket_id.is_empty()) {
            (true, true) => {
                v.add(
                    "swap.order_id",
                    "is required, or else swap.ticket_id (on-site work)",
                );
                None
            }
            (false, false) => {
                v.add(
                    "swap.ticket_id",
                    "must be empty when swap.order_id is given",
                );
                None
            }
            (false, true) => v.check("swap.order_id", convert::parse_id(&s.order_id)),
            (true, false) => {
                v.check("swap.ticket_id", convert::parse_id(&s.ticket_id));
                None
            }
        };
        text::require(
            &mut v,
            "swap.removed_serial",
            &s.removed_serial,
            100,
            Lines::One,
        );
        text::require(&mut v, "swap.fault", &s.fault, 500, Lines::Many);
        text::require(
            &mut v,
            "swap.installed_serial",
            &s.installed_serial,
            100,
            Lines::One,
        );
        let (removed, installed) = (s.removed_serial.trim(), s.installed_serial.trim());
        if !removed.is_empty() && removed == installed {
            v.add(
                "swap.installed_serial",
                "must differ from the removed unit's serial",
            );
        }
        v.finish()?;
        Ok(Self {
            centre: centre.unwrap_or_default(),
            part: part.unwrap_or_default(),
            order,
            ticket_id: s.ticket_id.clone(),
            removed_serial: removed.to_string(),
            fault: s.fault.trim().to_string(),
            installed_serial: installed.to_string(),
            return_centre: return_centre.unwrap_or_default(),
        })
    }
}

/// The state stored as `name`.
pub fn serial_state(name: &str) -> SerialState {
    SerialState::from_str_name(&format!("SERIAL_STATE_{name}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(edit: impl FnOnce(&mut pb::Swap)) -> pb::RecordSwapRequest {
        let mut swap = pb::Swap {
            centre_id: Uuid::nil().to_string(),
            part_id: Uuid::nil().to_string(),
            order_id: Uuid::nil().to_string(),
            removed_serial: "PSU-0001".into(),
            fault: "无输出".into(),
            installed_serial: "PSU-0002".into(),
            return_centre_id: Uuid::nil().to_string(),
            ..Default::default()
        };
        edit(&mut swap);
        pb::RecordSwapRequest {
            request_id: "r".into(),
            swap: Some(swap),
        }
    }

    fn fields(r: Result<NewSwap>) -> Vec<String> {
        match r {
            Err(crm_kit::Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn a_swap_is_for_an_order_or_a_ticket_and_labels_its_fault() {
        assert!(NewSwap::parse(&request(|_| {})).is_ok());
        let on_site = NewSwap::parse(&request(|s| {
            s.order_id.clear();
            s.ticket_id = Uuid::nil().to_string();
        }))
        .unwrap();
        assert_eq!(on_site.order, None);
        assert_eq!(
            fields(NewSwap::parse(&request(|s| s.order_id.clear()))),
            ["swap.order_id"]
        );
        assert_eq!(
            fields(NewSwap::parse(&request(
                |s| s.ticket_id = Uuid::nil().to_string()
            ))),
            ["swap.ticket_id"]
        );
        assert_eq!(
            fields(NewSwap::parse(&request(|s| s.fault.clear()))),
            ["swap.fault"]
        );
        assert_eq!(
            fields(NewSwap::parse(&request(
                |s| s.installed_serial = "PSU-0001".into()
            ))),
            ["swap.installed_serial"]
        );
    }
}
