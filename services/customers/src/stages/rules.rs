//! The maturity-stage rules (C-4): which moves are allowed, and the checked change request.

use crm_kit::{Error, Violations};
use crm_proto::customers::v1::{self as pb, Stage};

use crate::rules::{known, parse_id, text_lines};

/// Whether the maturity stages allow moving `from` → `to` (C-4). Stages move forward through
/// initial contact → potential → target → trial → signed, may skip ahead, and may fall back to
/// non-target or an earlier stage while unsigned (non-target customers stay in contact and can
/// come back). Nothing returns to initial contact, and a signed customer stays signed.
pub fn check_stage_change(from: Stage, to: Stage) -> Result<(), Error> {
    use Stage::*;
    let allowed = match (from, to) {
        (_, Unspecified) | (Unspecified, _) => false,
        (a, b) if a == b => false,
        (_, InitialContact) => false,
        (Signed, _) => false,
        // everything else among the unsigned stages is allowed
        _ => true,
    };
    if allowed {
        Ok(())
    } else {
        Err(Error::precondition(
            "STAGE_TRANSITION_FORBIDDEN",
            format!(
                "a customer cannot move from {} to {}",
                from.as_str_name(),
                to.as_str_name()
            ),
        ))
    }
}

/// A validated stage change request.
#[derive(Debug, Clone)]
pub struct StageChangeInput {
    /// The customer.
    pub customer_id: uuid::Uuid,
    /// The target stage.
    pub stage: Stage,
    /// Why.
    pub reason: String,
    /// Expected version; 0 skips the check.
    pub version: i64,
}

impl StageChangeInput {
    /// Validates a ChangeCustomerStage request.
    pub fn parse(r: &pb::ChangeCustomerStageRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let customer_id = v.check("customer_id", parse_id(&r.customer_id));
        let stage = known(&mut v, "stage", r.stage, true);
        let reason = text_lines(&mut v, "reason", &r.reason, 1, 1000);
        if r.version < 0 {
            v.add("version", "must not be negative");
        }
        v.finish()?;
        Ok(Self {
            customer_id: customer_id.expect("checked"),
            stage: stage.expect("checked"),
            reason,
            version: r.version,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_rules() {
        use Stage::*;
        assert!(check_stage_change(InitialContact, Potential).is_ok());
        assert!(check_stage_change(InitialContact, NonTarget).is_ok());
        assert!(check_stage_change(NonTarget, Potential).is_ok());
        assert!(check_stage_change(Target, Signed).is_ok());
        assert!(check_stage_change(Trial, NonTarget).is_ok());
        assert!(check_stage_change(Potential, InitialContact).is_err());
        assert!(check_stage_change(Signed, Trial).is_err());
        assert!(check_stage_change(Trial, Trial).is_err());
    }
}
