//! Transfers between centres: units leave the sender's shelf at once and are in transit
//! to the receiver — its stock shows them — until the receiving centre books them in. The
//! sender must be a centre the caller may see; only the receiver's staff book a transfer in.

pub mod rules;
mod store;

use crm_kit::{Error, Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::{common::v1::PageRequest, repairs::v1 as pb};
use uuid::Uuid;

use crate::{
    catalogue, centres,
    service::{Repairs, holder, not_found, scope},
    stock::{self, Delta},
};
use rules::NewTransfer;

fn subject(id: Uuid) -> String {
    format!("transfers/{id}")
}

impl Repairs {
    /// Sends units from one centre to another.
    pub async fn transfer_stock(
        &self,
        key: RequestKey,
        t: NewTransfer,
        call: &Call,
    ) -> Result<pb::TransferStockResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let from = centres::visible(&mut tx, t.from, &scope).await?;
        let to = centres::get_centre(&mut tx, t.to)
            .await?
            .ok_or_else(|| Error::invalid("transfer.to_centre_id", "is not a repair centre"))?;
        let part = catalogue::known(&mut tx, t.part, "transfer.part_id").await?;
        let now = self.clock.now();
        let leave = Delta {
            on_hand: -t.quantity,
            ..Delta::default()
        };
        let Some(from_stock) = stock::adjust(&mut tx, t.from, t.part, leave, now).await? else {
            return Err(Error::precondition(
                "INSUFFICIENT_STOCK",
                format!(
                    "{} units of {} cannot leave {}: not that many available",
                    t.quantity, part.part_number, from.code
                ),
            ));
        };
        let from_stock = stock::changed(&mut tx, call, now, &from, from_stock).await?;
        stock::add(&mut tx, &to, &part, 0, t.quantity, now).await?;
        let id = Uuid::now_v7();
        let transfer = store::insert(&mut tx, id, &t, now, &call.principal.subject)
            .await?
            .to_proto();
        audit::record(&mut tx, call, now, &subject(id), &["created"]).await?;
        let response = pb::TransferStockResponse {
            transfer: Some(transfer),
            from_stock: Some(from_stock),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// The receiving centre books a transfer in.
    pub async fn receive_transfer(
        &self,
        key: RequestKey,
        id: Uuid,
        call: &Call,
    ) -> Result<pb::ReceiveTransferResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let row = store::lock(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("transfer", id))?;
        let (from, to, part, quantity) = row.what();
        let receiver = centres::get_centre(&mut tx, to)
            .await?
            .filter(|c| scope.permits(holder(&c.partner_id)));
        let Some(receiver) = receiver else {
            let sender_sees = centres::get_centre(&mut tx, from)
                .await?
                .is_some_and(|c| scope.permits(holder(&c.partner_id)));
            return Err(if sender_sees {
                Error::PermissionDenied {
                    permission: "booking in a transfer (the receiving centre's staff)".into(),
                }
            } else {
                not_found("transfer", id)
            });
        };
        if row.received() {
            return Err(Error::precondition(
                "ALREADY_RECEIVED",
                "the transfer was booked in already",
            ));
        }
        let now = self.clock.now();
        let arrive = Delta {
            on_hand: quantity,
            in_transit: -quantity,
            ..Delta::default()
        };
        let to_stock = stock::adjust(&mut tx, to, part, arrive, now)
            .await?
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("transfer {id} is not in transit")))?;
        let to_stock = stock::changed(&mut tx, call, now, &receiver, to_stock).await?;
        let transfer = store::received(&mut tx, id, now, &call.principal.subject)
            .await?
            .to_proto();
        audit::record(&mut tx, call, now, &subject(id), &["received"]).await?;
        let response = pb::ReceiveTransferResponse {
            transfer: Some(transfer),
            to_stock: Some(to_stock),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Transfers from or to a centre in the caller's scope, newest first.
    pub async fn list_transfers(
        &self,
        centre: Uuid,
        page: Option<&PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListTransfersResponse> {
        let filter = format!("transfers/{centre}");
        let page = self.pager.read::<Uuid>(page, &filter)?;
        let mut conn = self.pool.acquire().await?;
        centres::visible(&mut conn, centre, &scope(caller)).await?;
        let mut transfers = store::list(&mut conn, centre, page.after, page.limit()).await?;
        let next = self.pager.finish(&page, &mut transfers, &filter, |t| {
            Uuid::parse_str(&t.id).unwrap_or_default()
        });
        Ok(pb::ListTransfersResponse {
            transfers,
            page: Some(next),
        })
    }
}
