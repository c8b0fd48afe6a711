//! Tickets routed to a repair centre: when the repairs service opens a repair order
//! for a ticket, the ticket records the centre and, for a partner centre or agent, its partner
//! organisation, whose users and API keys then see the ticket ([`crate::service::Scope`]) and
//! nothing else of the tickets service. The order's event is acted on once (the kit's consumer)
//! and a repeated or older one changes nothing.

mod store;

use crm_kit::{Error, convert, events};
use crm_proto::{
    repairs::v1::{OrderEvent, OrderTransition},
    tickets::v1::{self as pb, Transition},
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::Tickets;

/// The topics the routing consumes: the repairs service's.
pub const TOPICS_CONSUMED: &[&str] = &["repairs"];

/// Routes a ticket to the centre of a repair order opened for it.
pub struct Routing {
    /// The service.
    pub tickets: Tickets,
}

#[tonic::async_trait]
impl events::Handler for Routing {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &crm_proto::events::v1::Event,
    ) -> std::result::Result<(), Error> {
        let Some(data) = events::payload_as::<OrderEvent>(event)? else {
            return Ok(());
        };
        // only the order's registration routes: its later steps do not move it
        if data.transition != OrderTransition::Unspecified as i32 {
            return Ok(());
        }
        let (Some(order), Some(centre)) = (data.repair_order, data.centre) else {
            return Ok(());
        };
        let Ok(ticket) = Uuid::parse_str(&order.ticket_id) else {
            return Ok(()); // registered by the centre, not from a ticket
        };
        let now = self.tickets.clock.now();
        let routed = store::route(
            tx,
            ticket,
            &centre.id,
            &centre.partner_id,
            now,
            &event.actor,
        )
        .await?;
        let Some(state) = routed else {
            tracing::warn!(%ticket, order = %order.id, "repair order for a ticket not known here, or already routed there");
            return Ok(());
        };
        let entry = pb::TicketHistoryEntry {
            transition: Transition::RouteToCentre as i32,
            from_state: state,
            to_state: state,
            reason: format!(
                "repair order {} at {} ({})",
                order.number, centre.name, centre.code
            ),
            changed: Some(convert::stamp(now, &event.actor)),
            ..Default::default()
        };
        crate::store::insert_history(tx, ticket, &entry, now, &event.actor).await
    }
}
