//! The events the customers service consumes: the gateway's users keep the sales reps (a user
//! holding the sales_rep role is a rep of their region; one who loses it is kept, inactive),
//! the tickets service's usual engineers show in the service policy status (C-8), and the
//! pipeline's signed and amended contracts are applied to their customers (`signings`, P-4).

use crm_kit::{Error, directory, events};
use crm_proto::{events::v1::Event, tickets::v1 as tickets};
use sqlx::PgConnection;

use crate::{Customers, assignment::SALES_REP};

/// The topics consumed.
pub const TOPICS: &[&str] = &["gateway", "tickets", "pipeline"];

/// The tickets service's event of a changed usual engineer.
const USUAL_ENGINEER_CHANGED: &str = "tickets.usual_engineer_changed";

/// The consumer.
pub struct Inbound {
    /// The service.
    pub customers: Customers,
}

#[tonic::async_trait]
impl events::Handler for Inbound {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), Error> {
        if let Some(user) = directory::user_of(event)? {
            let now = self.customers.clock.now();
            return directory::record_user(tx, &user, &[SALES_REP], now).await;
        }
        if event.r#type == crate::signings::SIGNED || event.r#type == crate::signings::AMENDED {
            return self.customers.apply_contract(tx, event).await;
        }
        if event.r#type == USUAL_ENGINEER_CHANGED {
            let usual: tickets::UsualEngineer = events::decode(event)?;
            return crate::visits::set_usual_engineer(tx, &usual).await;
        }
        Ok(())
    }
}
