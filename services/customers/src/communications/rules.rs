//! The communication rules (C-6), with no I/O: what a communication record holds.

use crm_kit::{Error, Violations, convert};
use crm_proto::customers::v1::{self as pb, CommunicationKind};
use time::{Date, OffsetDateTime};

use crate::rules::{known, parse_id, text, text_lines};

/// A validated communication record.
#[derive(Debug, Clone)]
pub struct CommunicationInput {
    /// The customer.
    pub customer_id: uuid::Uuid,
    /// How.
    pub kind: CommunicationKind,
    /// When; `None` means now.
    pub occur_time: Option<OffsetDateTime>,
    /// What was talked about.
    pub summary: String,
    /// Needs heard.
    pub needs: String,
    /// Concerns raised.
    pub concerns: String,
    /// When to contact next.
    pub next_contact_date: Date,
    /// Care-plan step.
    pub care_plan_step: String,
}

impl CommunicationInput {
    /// Validates a CreateCommunication request.
    pub fn parse(r: &pb::CreateCommunicationRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let customer_id = v.check("customer_id", parse_id(&r.customer_id));
        let default = pb::Communication::default();
        let c = r.communication.as_ref().unwrap_or(&default);
        if r.communication.is_none() {
            v.add("communication", "is required");
        }
        let kind = known(&mut v, "communication.kind", c.kind, true);
        let occur_time = c
            .occur_time
            .as_ref()
            .and_then(|t| v.check("communication.occur_time", convert::from_timestamp(t)));
        let summary = text_lines(&mut v, "communication.summary", &c.summary, 1, 4000);
        let needs = text_lines(&mut v, "communication.needs", &c.needs, 0, 4000);
        let concerns = text_lines(&mut v, "communication.concerns", &c.concerns, 0, 4000);
        let next_contact_date = match &c.next_contact_date {
            Some(d) => v.check("communication.next_contact_date", convert::from_date(d)),
            None => {
                v.add("communication.next_contact_date", "is required");
                None
            }
        };
        let care_plan_step = text(
            &mut v,
            "communication.care_plan_step",
            &c.care_plan_step,
            0,
            200,
        );
        v.finish()?;
        Ok(Self {
            customer_id: customer_id.expect("checked"),
            kind: kind.expect("checked"),
            occur_time,
            summary,
            needs,
            concerns,
            next_contact_date: next_contact_date.expect("checked"),
            care_plan_step,
        })
    }
}
