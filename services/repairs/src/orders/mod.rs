//! Repair orders: carry-in and mail-in repairs at a centre, from the counter or the
//! parcel to the hand-over or the shipment back, each step a named transition recorded in the
//! kit's history with who, when and why and published as `repairs.order_changed`. The
//! customer's wait at the counter is measured (R-5 "do not keep the customer waiting"); a unit
//! not repaired at once is handed back only against its receipt's code.

pub mod rules;
pub mod steps;
mod store;

pub(crate) use store::{get as visible_order, lock as lock_order};

use crm_kit::{
    Result, audit, auth::Principal, context::Call, convert, history, idempotency::RequestKey,
    timers,
};
use crm_proto::{
    common::v1::PageRequest,
    repairs::v1::{self as pb, OrderKind, OrderState, OrderTransition},
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::service::stored;
use crate::{
    centres,
    service::{ORDER_CHANGED, Repairs, holder, not_found, publish, scope},
};
use rules::NewOrder;
use steps::{Kept, Step};

fn subject(id: &str) -> String {
    format!("repair_orders/{id}")
}

/// Publishes `repairs.order_changed` for `order` after `transition`.
async fn announce(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    order: &pb::RepairOrder,
    centre: &pb::Centre,
    transition: OrderTransition,
) -> Result<()> {
    let event = pb::OrderEvent {
        repair_order: Some(order.clone()),
        centre: Some(centre.clone()),
        transition: transition as i32,
    };
    publish(tx, call, now, ORDER_CHANGED, &subject(&order.id), &event).await
}

impl Repairs {
    /// Registers a repair order at a centre in the caller's scope.
    pub async fn create_repair_order(
        &self,
        key: RequestKey,
        new: NewOrder,
        call: &Call,
    ) -> Result<pb::CreateRepairOrderResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let centre = centres::visible(&mut tx, new.centre, &scope(&call.principal)).await?;
        let now = self.clock.now();
        let due = self
            .calendar
            .add(now, self.settings.turnaround(&centre, new.kind));
        let state = rules::initial(new.kind);
        let id = Uuid::now_v7();
        let insert = store::Insert {
            id,
            order: &new.order,
            centre: &centre,
            state,
            due,
            arrival: (new.kind == OrderKind::CarryIn).then_some(now),
        };
        let order = store::insert(&mut tx, &insert, now, &call.principal.subject)
            .await?
            .to_proto();
        history::record(
            &mut tx,
            &history::Change {
                subject: &subject(&order.id),
                kind: "state",
                from: "",
                to: stored(state.as_str_name(), "ORDER_STATE_"),
                reason: &order.fault_description,
                via: "CREATE",
                actor: &call.principal.subject,
                at: now,
            },
        )
        .await?;
        announce(
            &mut tx,
            call,
            now,
            &order,
            &centre,
            OrderTransition::Unspecified,
        )
        .await?;
        let armed = timers::schedule(&mut tx, &self.turnaround_timers(id, now, due), now).await?;
        audit::record(&mut tx, call, now, &subject(&order.id), &["created"]).await?;
        let response = pb::CreateRepairOrderResponse {
            repair_order: Some(order),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// Takes an order one step along its flow.
    pub async fn transition_repair_order(
        &self,
        key: RequestKey,
        step: Step,
        call: &Call,
    ) -> Result<pb::TransitionRepairOrderResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let row = store::lock(&mut tx, step.id)
            .await?
            .filter(|r| scope.permits(holder(&r.partner_id)))
            .ok_or_else(|| not_found("repair order", step.id))?;
        let mut order = row.to_proto();
        let kind = OrderKind::try_from(order.kind).unwrap_or_default();
        let from = OrderState::try_from(order.state).unwrap_or_default();
        let to = rules::next(kind, from, step.transition, row.repaired_while_waiting)?;
        step.check_for(&order, row.receipt_digest.as_deref())?;
        let centre = centres::visible(&mut tx, row.centre_id(), &scope).await?;
        let now = self.clock.now();
        let mut kept = Kept {
            arrival: row.arrival_time,
            while_waiting: row.repaired_while_waiting,
            digest: row.receipt_digest.clone(),
        };
        let receipt_code = steps::apply(&mut order, &mut kept, &step, to, now);
        let hidden = store::Hidden {
            repaired_while_waiting: kept.while_waiting,
            receipt_digest: kept.digest.as_deref(),
            closed: rules::closed(to),
        };
        let order = store::save(&mut tx, &order, &hidden, now, &call.principal.subject)
            .await?
            .to_proto();
        if hidden.closed {
            // handed back or shipped: the turnaround is over, on time or not
            timers::cancel(&mut tx, &subject(&order.id), None).await?;
        }
        let transition = step.transition.as_str_name();
        history::record(
            &mut tx,
            &history::Change {
                subject: &subject(&order.id),
                kind: "state",
                from: stored(from.as_str_name(), "ORDER_STATE_"),
                to: stored(to.as_str_name(), "ORDER_STATE_"),
                reason: &step.r.note,
                via: stored(transition, "ORDER_TRANSITION_"),
                actor: &call.principal.subject,
                at: now,
            },
        )
        .await?;
        announce(&mut tx, call, now, &order, &centre, step.transition).await?;
        audit::record(&mut tx, call, now, &subject(&order.id), &["state"]).await?;
        let response = pb::TransitionRepairOrderResponse {
            repair_order: Some(order),
            receipt_code: receipt_code.unwrap_or_default(),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// One order in the caller's scope.
    pub async fn get_repair_order(&self, id: Uuid, caller: &Principal) -> Result<pb::RepairOrder> {
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, &scope(caller), id)
            .await?
            .map(|r| r.to_proto())
            .ok_or_else(|| not_found("repair order", id))
    }

    /// Orders in the caller's scope by turnaround deadline; a centre out of scope is
    /// `NOT_FOUND`.
    pub async fn list_repair_orders(
        &self,
        r: &pb::ListRepairOrdersRequest,
        caller: &Principal,
    ) -> Result<pb::ListRepairOrdersResponse> {
        let centre = match r.centre_id.as_str() {
            "" => None,
            id => Some(convert::id("centre_id", id)?),
        };
        let filter = format!("repair_orders/{centre:?}/{}", r.include_closed);
        let page = self.pager.read::<(i64, Uuid)>(r.page.as_ref(), &filter)?;
        let scope = scope(caller);
        let mut conn = self.pool.acquire().await?;
        if let Some(centre) = centre {
            centres::visible(&mut conn, centre, &scope).await?;
        }
        let after = page.after.map(|(nanos, id)| {
            (
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                id,
            )
        });
        let rows = store::list(
            &mut conn,
            &scope,
            centre,
            r.include_closed,
            after,
            page.limit(),
        )
        .await?;
        let mut repair_orders: Vec<pb::RepairOrder> = rows.iter().map(|r| r.to_proto()).collect();
        let next = self.pager.finish(&page, &mut repair_orders, &filter, |o| {
            let due = o
                .due_time
                .as_ref()
                .and_then(|t| convert::from_timestamp(t).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            (
                due.unix_timestamp_nanos() as i64,
                Uuid::parse_str(&o.id).unwrap_or_default(),
            )
        });
        Ok(pb::ListRepairOrdersResponse {
            repair_orders,
            page: Some(next),
        })
    }

    /// An order's steps, oldest first.
    pub async fn repair_order_history(
        &self,
        id: Uuid,
        page: Option<&PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListRepairOrderHistoryResponse> {
        let filter = format!("repair_order_history/{id}");
        let page = self.pager.read::<Uuid>(page, &filter)?;
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, &scope(caller), id)
            .await?
            .ok_or_else(|| not_found("repair order", id))?;
        let mut entries = history::page(
            &mut conn,
            &subject(&id.to_string()),
            "state",
            page.after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut entries, &filter, |e| e.id);
        let state = |s: &str| {
            OrderState::from_str_name(&format!("ORDER_STATE_{s}")).map_or(0, |s| s as i32)
        };
        Ok(pb::ListRepairOrderHistoryResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::OrderHistoryEntry {
                    from_state: state(&e.from_value),
                    to_state: state(&e.to_value),
                    transition: OrderTransition::from_str_name(&format!(
                        "ORDER_TRANSITION_{}",
                        e.via
                    ))
                    .map_or(0, |t| t as i32),
                    note: e.reason,
                    changed: Some(convert::stamp(e.change_time, &e.actor)),
                })
                .collect(),
            page: Some(next),
        })
    }
}
