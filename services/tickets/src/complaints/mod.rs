//! Service complaints back in the service flow: the complaints service routes a service
//! complaint here with an event (`complaints.routed`, routed to "tickets"). A complaint naming
//! a resolved or closed ticket reopens it (REOPEN_FOR_COMPLAINT: with the hotline engineer
//! again, new hand-off and resolution deadlines); naming an open ticket it is linked; naming
//! none (or one not known here) it opens a new ticket from the complaint. Either way the ticket
//! records the complaint and `tickets.complaint_linked` tells the complaints service, so they
//! are linked both ways. The kit's consumer acts on an event once; a complaint already linked
//! changes nothing more, and a table index keeps one opened ticket per complaint.

mod store;

use crm_kit::{Error, context::Call, convert, events, timers};
use crm_proto::{
    complaints::v1::ComplaintEvent,
    tickets::v1::{self as pb, Deadline, TicketState, Transition},
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::{COMPLAINT_LINKED, Tickets, ts};

/// The topics this capability consumes: the complaints service's.
pub const TOPICS_CONSUMED: &[&str] = &["complaints"];

/// Where the complaints service routes service complaints.
const ROUTED_HERE: &str = "tickets";

/// Opens, reopens or links tickets for routed service complaints.
pub struct FromComplaints {
    /// The service.
    pub tickets: Tickets,
}

/// The states a complaint reopens.
const REOPENED_FROM: &[TicketState] = &[
    TicketState::Resolved,
    TicketState::SolvedByPhone,
    TicketState::Closed,
];

#[tonic::async_trait]
impl events::Handler for FromComplaints {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &crm_proto::events::v1::Event,
    ) -> std::result::Result<(), Error> {
        if event.r#type != "complaints.routed" {
            return Ok(());
        }
        let Some(data) = events::payload_as::<ComplaintEvent>(event)? else {
            return Ok(());
        };
        let Some(complaint) = data.complaint.filter(|_| data.routed_to == ROUTED_HERE) else {
            return Ok(());
        };
        if store::linked_to(tx, &complaint.id).await?.is_some() {
            return Ok(()); // acted on already
        }
        let call = Call::system("complaints", "complaints.routed");
        let tickets = &self.tickets;
        let now = tickets.clock.now();
        let named = match Uuid::parse_str(&complaint.ticket_id) {
            Ok(id) => crate::store::get(tx, id, true).await?,
            Err(_) => None,
        };
        let reason = format!(
            "service complaint {}: {}",
            complaint.number, complaint.content
        );
        let (ticket, armed) = if let Some(mut record) = named {
            let t = &mut record.ticket;
            let from = TicketState::try_from(t.state).unwrap_or_default();
            let mut new = Vec::new();
            let (to, transition) = if REOPENED_FROM.contains(&from) {
                let sla = tickets.settings.sla(&t.tier);
                let handoff = now + time::Duration::minutes(tickets.settings.handoff_minutes);
                let resolution = tickets
                    .calendar
                    .add(now, time::Duration::hours(sla.resolution_hours));
                t.state = TicketState::WithHotlineEngineer as i32;
                t.assignee_id.clear();
                t.handoff_due = ts(handoff);
                t.resolution_due = ts(resolution);
                t.satisfaction = 0;
                t.satisfaction_refusal.clear();
                new.extend(tickets.deadline_timers(&t.id, Deadline::Handoff, now, handoff, false));
                new.extend(tickets.deadline_timers(
                    &t.id,
                    Deadline::Resolution,
                    now,
                    resolution,
                    true,
                ));
                (
                    TicketState::WithHotlineEngineer,
                    Transition::ReopenForComplaint,
                )
            } else {
                (from, Transition::Unspecified) // open: linked, the flow goes on
            };
            t.version += 1;
            t.updated = Some(convert::stamp(now, &call.principal.subject));
            crate::store::save(tx, &record).await?;
            let id = record.ticket.id.clone();
            crate::store::insert_history(
                tx,
                Uuid::parse_str(&id).unwrap_or_default(),
                &pb::TicketHistoryEntry {
                    transition: transition as i32,
                    from_state: from as i32,
                    to_state: to as i32,
                    reason: reason.clone(),
                    ..Default::default()
                },
                now,
                &event.actor,
            )
            .await?;
            let armed = timers::schedule(tx, &new, now).await?;
            (record.ticket, armed)
        } else {
            let customer =
                Uuid::parse_str(&complaint.customer_id).map_err(|e| Error::Internal(e.into()))?;
            let tier = crate::tiers::tier(tx, customer)
                .await?
                .unwrap_or_else(|| "ordinary".into());
            let new = pb::Ticket {
                channel: pb::Channel::Complaint as i32,
                customer_id: complaint.customer_id.clone(),
                contact_name: complaint.contact_name.clone(),
                contact_phone: complaint.contact_phone.clone(),
                contact_language: complaint.contact_language.clone(),
                product_model: complaint.product_model.clone(),
                serial_number: complaint.serial_number.clone(),
                symptom: reason.clone(),
                ..Default::default()
            };
            tickets.open(tx, new, tier, now, &call).await?
        };
        let mut ticket = ticket;
        store::link(tx, &ticket.id, &complaint.id).await?;
        ticket.complaint_id.clone_from(&complaint.id);
        Tickets::publish(tx, &call, now, COMPLAINT_LINKED, &ticket, false).await?;
        // armed before the commit: a timer popped early finds nothing and the reconciler puts
        // it back from Postgres
        tickets.timers.arm(&armed).await;
        tracing::info!(ticket = %ticket.id, complaint = %complaint.id, "service complaint in the service flow");
        Ok(())
    }
}
