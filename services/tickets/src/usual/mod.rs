//! The customer's usual engineer (T-6, C-8): a fact of its own, not the customer's tech-support
//! partner (who cannot work a ticket, issue 14). Service history sets it — whoever resolves a
//! customer's ticket is its usual engineer from then on — unless a service manager named one;
//! a manager's choice stands until the manager clears it. VIP and core tickets are dispatched
//! to the usual engineer first while they are still an engineer.

pub mod rules;

use crm_kit::{
    Error, Result, Role, audit, context::Call, convert, directory, events, idempotency::RequestKey,
};
use crm_proto::tickets::v1::{self as pb, UsualEngineerSource};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::service::{ENGINEER, TOPIC, Tickets, USUAL_ENGINEER_CHANGED};

mod store;

/// The usual engineer of `customer`, if one is known (dispatch reads it in its transaction).
pub(crate) async fn of(
    conn: &mut PgConnection,
    customer: Uuid,
) -> Result<Option<pb::UsualEngineer>> {
    store::usual_engineer(conn, customer).await
}

/// The roles that may name a customer's usual engineer: service managers.
const MANAGING: &[Role] = &[Role::Admin, Role::Supervisor];

fn subject(customer: Uuid) -> String {
    format!("customers/{customer}/usual_engineer")
}

impl Tickets {
    /// A customer's usual engineer; `NOT_FOUND` when none is known.
    pub async fn usual_engineer(&self, customer: Uuid) -> Result<pb::UsualEngineer> {
        let mut conn = self.pool.acquire().await?;
        store::usual_engineer(&mut conn, customer)
            .await?
            .filter(|u| !u.engineer_id.is_empty())
            .ok_or_else(|| Error::NotFound {
                kind: "usual engineer of customer",
                id: customer.to_string(),
            })
    }

    /// A service manager names the usual engineer of `customer` (or clears the choice with an
    /// empty `engineer`). The engineer must be one; the customer must be known here.
    pub async fn set_usual_engineer(
        &self,
        key: RequestKey,
        customer: Uuid,
        engineer: String,
        call: &Call,
    ) -> Result<pb::SetUsualEngineerResponse> {
        if !call.principal.has_any(MANAGING) {
            return Err(Error::PermissionDenied {
                permission: "naming a customer's usual engineer (service managers)".into(),
            });
        }
        self.known_customer(customer, "customer_id").await?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        if !engineer.is_empty()
            && directory::region_of(&mut tx, &engineer, ENGINEER)
                .await?
                .is_none()
        {
            return Err(Error::precondition(
                "NOT_AN_ENGINEER",
                format!(
                    "{engineer} is not an engineer (users with the engineer role, as the gateway announces them)"
                ),
            ));
        }
        let now = self.clock.now();
        let usual = pb::UsualEngineer {
            customer_id: customer.to_string(),
            engineer_id: engineer,
            source: UsualEngineerSource::Manager as i32,
            updated: Some(convert::stamp(now, &call.principal.subject)),
        };
        store::set_usual_engineer(&mut tx, &usual).await?;
        announce(&mut tx, call, now, &usual).await?;
        audit::record(&mut tx, call, now, &subject(customer), &["engineer_id"]).await?;
        let response = pb::SetUsualEngineerResponse {
            usual_engineer: Some(usual),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Service history: the engineer of a resolved ticket becomes the customer's usual
    /// engineer, unless a manager named one.
    pub(crate) async fn learn_usual_engineer(
        &self,
        tx: &mut PgConnection,
        call: &Call,
        now: OffsetDateTime,
        ticket: &pb::Ticket,
    ) -> Result<()> {
        if ticket.assignee_id.is_empty() {
            return Ok(());
        }
        let usual = pb::UsualEngineer {
            customer_id: ticket.customer_id.clone(),
            engineer_id: ticket.assignee_id.clone(),
            source: UsualEngineerSource::ServiceHistory as i32,
            updated: Some(convert::stamp(now, &call.principal.subject)),
        };
        if store::set_usual_engineer(tx, &usual).await? {
            announce(tx, call, now, &usual).await?;
        }
        Ok(())
    }
}

/// Publishes `tickets.usual_engineer_changed` (the customers service shows it in the service
/// policy status).
async fn announce(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    usual: &pb::UsualEngineer,
) -> Result<()> {
    let aggregate = format!("customers/{}", usual.customer_id);
    events::publish(
        tx,
        call,
        now,
        events::NewEvent {
            topic: TOPIC,
            event_type: USUAL_ENGINEER_CHANGED,
            aggregate: &aggregate,
            payload: events::Payload::of(usual),
            urgent: false,
        },
    )
    .await?;
    Ok(())
}
