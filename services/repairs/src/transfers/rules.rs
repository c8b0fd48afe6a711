//! The rules of a transfer between centres (R-3).

use crm_kit::{
    Result, Violations, convert,
    text::{self, Lines},
};
use crm_proto::repairs::v1 as pb;
use uuid::Uuid;

use crate::stock::rules::quantity;

/// A checked TransferStock.
#[derive(Debug, Clone)]
pub struct NewTransfer {
    /// The sending centre.
    pub from: Uuid,
    /// The receiving centre.
    pub to: Uuid,
    /// The part.
    pub part: Uuid,
    /// Units sent.
    pub quantity: i32,
    /// Why.
    pub note: String,
}

impl NewTransfer {
    /// Checks TransferStock's request: every field named in one `INVALID_ARGUMENT`.
    pub fn parse(r: &pb::TransferStockRequest) -> Result<Self> {
        let mut v = Violations::new();
        let t = r.transfer.clone().unwrap_or_default();
        let from = v.check(
            "transfer.from_centre_id",
            convert::parse_id(&t.from_centre_id),
        );
        let to = v.check("transfer.to_centre_id", convert::parse_id(&t.to_centre_id));
        let part = v.check("transfer.part_id", convert::parse_id(&t.part_id));
        v.check("transfer.quantity", quantity(t.quantity));
        text::check(&mut v, "transfer.note", &t.note, 500, Lines::Many);
        if from.is_some() && from == to {
            v.add(
                "transfer.to_centre_id",
                "must differ from the sending centre",
            );
        }
        v.finish()?;
        Ok(Self {
            from: from.unwrap_or_default(),
            to: to.unwrap_or_default(),
            part: part.unwrap_or_default(),
            quantity: t.quantity,
            note: t.note.trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_goes_between_two_centres() {
        let a = Uuid::now_v7().to_string();
        let b = Uuid::now_v7().to_string();
        let request = |to: &str, quantity| pb::TransferStockRequest {
            request_id: "r".into(),
            transfer: Some(pb::Transfer {
                from_centre_id: a.clone(),
                to_centre_id: to.into(),
                part_id: Uuid::nil().to_string(),
                quantity,
                ..Default::default()
            }),
        };
        assert!(NewTransfer::parse(&request(&b, 2)).is_ok());
        let Err(crm_kit::Error::InvalidArgument(v)) = NewTransfer::parse(&request(&a, 0)) else {
            panic!("accepted");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["transfer.quantity", "transfer.to_centre_id"]);
    }
}
