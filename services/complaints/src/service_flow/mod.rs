//! Service complaints in the service flow: the tickets service answers a routed service
//! complaint with `tickets.complaint_linked` once it opened, reopened or linked a ticket; the
//! complaint records that ticket, so the two are linked both ways. A repeated event changes
//! nothing.

use crm_kit::{Error, convert, events};
use crm_proto::tickets::v1::Ticket;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{deadlines, service::Complaints, store};

/// The topics this capability consumes: the tickets service's.
pub const TOPICS_CONSUMED: &[&str] = &["tickets"];

/// Records the ticket a service complaint went to.
pub struct TicketLinks {
    /// The service.
    pub complaints: Complaints,
}

#[tonic::async_trait]
impl events::Handler for TicketLinks {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &crm_proto::events::v1::Event,
    ) -> std::result::Result<(), Error> {
        if event.r#type != "tickets.complaint_linked" {
            return Ok(());
        }
        let Some(ticket) = events::payload_as::<Ticket>(event)? else {
            return Ok(());
        };
        let Ok(id) = Uuid::parse_str(&ticket.complaint_id) else {
            return Ok(());
        };
        let Some(mut r) = store::get(tx, id, true).await? else {
            tracing::warn!(complaint = %id, "a ticket names a complaint not known here");
            return Ok(());
        };
        if r.complaint.ticket_id == ticket.id {
            return Ok(());
        }
        let now = self.complaints.clock.now();
        r.complaint.ticket_id.clone_from(&ticket.id);
        r.complaint.version += 1;
        r.complaint.updated = Some(convert::stamp(now, "tickets"));
        store::save(tx, &r).await?;
        let state = r.state();
        deadlines::record(
            tx,
            &r.complaint.id,
            (state, state),
            "LINK_TICKET",
            &format!("in the service flow as ticket {}", ticket.number),
            &event.actor,
            now,
        )
        .await
    }
}
