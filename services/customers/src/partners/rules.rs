//! The partner rules (C-5), with no I/O: what a request and a decision hold, and how a request
//! proceeds given the customer's partner now.

use crm_kit::{Error, Violations};
use crm_proto::customers::v1 as pb;

use crate::rules::{parse_id, text, text_lines};

/// A validated partner request.
#[derive(Debug, Clone)]
pub struct PartnerRequestInput {
    /// The customer.
    pub customer_id: uuid::Uuid,
    /// The partner asked for.
    pub proposed_partner_id: String,
    /// Why.
    pub reason: String,
}

impl PartnerRequestInput {
    /// Validates a RequestPartnerChange request.
    pub fn parse(r: &pb::RequestPartnerChangeRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let customer_id = v.check("customer_id", parse_id(&r.customer_id));
        let proposed_partner_id = text(
            &mut v,
            "proposed_partner_id",
            &r.proposed_partner_id,
            1,
            100,
        );
        let reason = text_lines(&mut v, "reason", &r.reason, 1, 1000);
        v.finish()?;
        Ok(Self {
            customer_id: customer_id.expect("checked"),
            proposed_partner_id,
            reason,
        })
    }
}

/// What the partner request does, given the customer's partner now (C-5): the first partner is
/// set at once; a change waits for approval; asking for the partner it already has is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerDecision {
    /// No partner yet: set it now.
    SetInitial,
    /// A different partner: a pending request.
    AwaitApproval,
}

/// Decides how a partner request proceeds.
pub fn decide_partner_request(current: &str, proposed: &str) -> Result<PartnerDecision, Error> {
    if current.is_empty() {
        Ok(PartnerDecision::SetInitial)
    } else if current == proposed {
        Err(Error::precondition(
            "PARTNER_UNCHANGED",
            format!("{proposed} is already the customer's partner"),
        ))
    } else {
        Ok(PartnerDecision::AwaitApproval)
    }
}

/// A validated decision on a partner-change request.
#[derive(Debug, Clone)]
pub struct PartnerDecisionInput {
    /// The request.
    pub id: uuid::Uuid,
    /// The decider's comment.
    pub reason: String,
}

impl PartnerDecisionInput {
    /// Validates an approval (comment optional) or rejection (comment required).
    pub fn parse(id: &str, reason: &str, reason_required: bool) -> Result<Self, Error> {
        let mut v = Violations::new();
        let id = v.check("id", parse_id(id));
        let reason = text_lines(&mut v, "reason", reason, usize::from(reason_required), 1000);
        v.finish()?;
        Ok(Self {
            id: id.expect("checked"),
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partner_rules() {
        assert_eq!(
            decide_partner_request("", "u1").unwrap(),
            PartnerDecision::SetInitial
        );
        assert_eq!(
            decide_partner_request("u1", "u2").unwrap(),
            PartnerDecision::AwaitApproval
        );
        assert!(decide_partner_request("u1", "u1").is_err());
    }
}
