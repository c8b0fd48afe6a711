//! Part swaps with serials: an engineer replaces a serialised part for an open repair
//! order or an on-site ticket; one transaction records the removed unit's fault label (part,
//! serial, fault, order) and the installed unit, marks the removed unit in transit to its
//! return centre (its stock's in-transit count) until the warehouse receives it, and refuses
//! a serial that was installed before or removed as faulty. A serial's history gives the chain
//! of units that held its place.

pub mod rules;
mod store;

use crm_kit::{Error, Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::repairs::v1::{self as pb, OrderState};
use uuid::Uuid;

use crate::{
    catalogue, centres, orders,
    service::{PART_SWAPPED, Repairs, holder, not_found, publish, scope},
    stock,
};
use rules::NewSwap;

/// The most swaps a serial's chain follows each way.
const MAX_CHAIN: usize = 1000;

fn subject(id: Uuid) -> String {
    format!("swaps/{id}")
}

impl Repairs {
    /// Records a swap.
    pub async fn record_swap(
        &self,
        key: RequestKey,
        s: NewSwap,
        call: &Call,
    ) -> Result<pb::RecordSwapResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let centre = centres::visible(&mut tx, s.centre, &scope).await?;
        let return_centre = centres::get_centre(&mut tx, s.return_centre)
            .await?
            .ok_or_else(|| Error::invalid("swap.return_centre_id", "is not a repair centre"))?;
        let part = catalogue::known(&mut tx, s.part, "swap.part_id").await?;
        if !part.serialised {
            return Err(Error::invalid(
                "swap.part_id",
                format!(
                    "{} does not carry serials: its use is a part request's",
                    part.part_number
                ),
            ));
        }
        if let Some(order) = s.order {
            let row = orders::visible_order(&mut tx, &scope, order)
                .await?
                .ok_or_else(|| not_found("repair order", order))?;
            if row.centre_id() != s.centre {
                return Err(Error::invalid(
                    "swap.order_id",
                    "is an order of another centre",
                ));
            }
            let state = OrderState::try_from(row.to_proto().state).unwrap_or_default();
            if !matches!(
                state,
                OrderState::Inspected
                    | OrderState::CustomerContacted
                    | OrderState::QuoteAccepted
                    | OrderState::InRepair
            ) {
                return Err(Error::precondition(
                    "ORDER_NOT_IN_REPAIR",
                    "parts are swapped on an order after its inspection and before it is repaired",
                ));
            }
        }
        let now = self.clock.now();
        if !store::remove(&mut tx, s.part, &s.removed_serial, now).await? {
            return Err(Error::precondition(
                "SERIAL_NOT_INSTALLED",
                format!(
                    "{} {} was removed as faulty already",
                    part.part_number, s.removed_serial
                ),
            ));
        }
        if !store::install(&mut tx, s.part, &s.installed_serial, now).await? {
            return Err(Error::precondition(
                "SERIAL_NOT_INSTALLABLE",
                format!(
                    "{} {} was installed before or removed as faulty: a serial is installed once",
                    part.part_number, s.installed_serial
                ),
            ));
        }
        let id = Uuid::now_v7();
        let swap = store::insert(
            &mut tx,
            id,
            &s,
            &centre.partner_id,
            now,
            &call.principal.subject,
        )
        .await?
        .to_proto();
        let return_stock = stock::add(&mut tx, &return_centre, &part, 0, 1, now).await?;
        publish(&mut tx, call, now, PART_SWAPPED, &subject(id), &swap).await?;
        audit::record(&mut tx, call, now, &subject(id), &["created"]).await?;
        let response = pb::RecordSwapResponse {
            swap: Some(swap),
            return_stock: Some(return_stock),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// The return centre receives a swap's removed unit.
    pub async fn receive_returned_part(
        &self,
        key: RequestKey,
        id: Uuid,
        call: &Call,
    ) -> Result<pb::ReceiveReturnedPartResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let row = store::lock(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("swap", id))?;
        // the receiving centre's staff act here; the swapping centre only sees it
        let receiver = centres::get_centre(&mut tx, row.return_centre())
            .await?
            .filter(|c| scope.permits(holder(&c.partner_id)));
        let Some(receiver) = receiver else {
            return Err(if scope.permits(holder(&row.partner_id)) {
                Error::PermissionDenied {
                    permission: "receiving a returned part (the return centre's staff)".into(),
                }
            } else {
                not_found("swap", id)
            });
        };
        if row.received() {
            return Err(Error::precondition(
                "ALREADY_RECEIVED",
                "the removed unit was received back already",
            ));
        }
        let now = self.clock.now();
        let (part, serial) = row.removed();
        let receiver_id = Uuid::parse_str(&receiver.id).unwrap_or_default();
        let arrived = stock::Delta {
            in_transit: -1,
            ..stock::Delta::default()
        };
        stock::adjust(&mut tx, receiver_id, part, arrived, now)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("swap {id} is not in transit")))?;
        store::serial_received(&mut tx, part, serial, now).await?;
        let swap = store::received(&mut tx, id, now, &call.principal.subject)
            .await?
            .to_proto();
        audit::record(&mut tx, call, now, &subject(id), &["received"]).await?;
        let response = pb::ReceiveReturnedPartResponse { swap: Some(swap) };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Swaps in the caller's scope; a centre out of scope is `NOT_FOUND`.
    pub async fn list_swaps(
        &self,
        r: &pb::ListSwapsRequest,
        caller: &Principal,
    ) -> Result<pb::ListSwapsResponse> {
        let centre = match r.centre_id.as_str() {
            "" => None,
            id => Some(crm_kit::convert::id("centre_id", id)?),
        };
        let filter = format!("swaps/{centre:?}/{}", r.in_transit_only);
        let page = self.pager.read::<Uuid>(r.page.as_ref(), &filter)?;
        let scope = scope(caller);
        let mut conn = self.pool.acquire().await?;
        if let Some(centre) = centre {
            centres::visible(&mut conn, centre, &scope).await?;
        }
        let mut swaps = store::list(
            &mut conn,
            &scope,
            centre,
            r.in_transit_only,
            page.after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut swaps, &filter, |s| {
            Uuid::parse_str(&s.id).unwrap_or_default()
        });
        Ok(pb::ListSwapsResponse {
            swaps,
            page: Some(next),
        })
    }

    /// A serial's state, swaps and chain, over the swaps the caller may see.
    pub async fn serial_history(
        &self,
        part: Uuid,
        serial: &str,
        caller: &Principal,
    ) -> Result<pb::GetSerialHistoryResponse> {
        let scope = scope(caller);
        let mut conn = self.pool.acquire().await?;
        let swaps = store::of_serial(&mut conn, &scope, part, serial).await?;
        if swaps.is_empty() {
            return Err(not_found("serial", format!("{part}/{serial}")));
        }
        let state = store::serial_state(&mut conn, part, serial)
            .await?
            .map_or(0, |s| rules::serial_state(&s) as i32);
        // back: the unit this one replaced, and so on; forth: the unit that replaced it
        let mut before = Vec::new();
        let mut current = serial.to_string();
        while before.len() < MAX_CHAIN {
            let found = store::of_serial(&mut conn, &scope, part, &current).await?;
            match found.into_iter().find(|s| s.installed_serial == current) {
                Some(s) => {
                    before.push(s.removed_serial.clone());
                    current = s.removed_serial;
                }
                None => break,
            }
        }
        let mut chain: Vec<String> = before.into_iter().rev().collect();
        chain.push(serial.to_string());
        let mut current = serial.to_string();
        while chain.len() < 2 * MAX_CHAIN {
            let found = store::of_serial(&mut conn, &scope, part, &current).await?;
            match found.into_iter().find(|s| s.removed_serial == current) {
                Some(s) => {
                    chain.push(s.installed_serial.clone());
                    current = s.installed_serial;
                }
                None => break,
            }
        }
        Ok(pb::GetSerialHistoryResponse {
            state,
            swaps,
            chain,
        })
    }
}
