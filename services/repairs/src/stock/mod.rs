//! Stock: each centre's units of each part — on hand, reserved by open part requests,
//! in transit to it — booked in by deliveries and changed by part requests; a centre whose
//! available stock falls below the part's minimum is told once (`repairs.stock_low`).

pub mod rules;
mod store;

pub(crate) use store::{Delta, add, adjust, get_stock};

use crm_kit::{Result, audit, auth::Principal, context::Call, convert, idempotency::RequestKey};
use crm_proto::repairs::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    catalogue, centres,
    service::{Repairs, STOCK_LOW, not_found, publish, scope},
};
use rules::Low;

/// A delivery to book in, checked.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The receiving centre.
    pub centre: Uuid,
    /// The part.
    pub part: Uuid,
    /// Units received.
    pub quantity: i32,
}

impl Delivery {
    /// Checks ReceiveStock's request.
    pub fn parse(r: &pb::ReceiveStockRequest) -> Result<Self> {
        let mut v = crm_kit::Violations::new();
        let centre = v.check("centre_id", convert::parse_id(&r.centre_id));
        let part = v.check("part_id", convert::parse_id(&r.part_id));
        v.check("quantity", rules::quantity(r.quantity));
        crm_kit::text::check(&mut v, "note", &r.note, 500, crm_kit::text::Lines::Many);
        v.finish()?;
        Ok(Self {
            centre: centre.unwrap_or_default(),
            part: part.unwrap_or_default(),
            quantity: r.quantity,
        })
    }
}

/// After a change of `stock` at `centre` in `tx`: records a fall below the minimum (and its
/// recovery) and tells the centre of a fall; the stock as it now is.
pub(crate) async fn changed(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    centre: &pb::Centre,
    mut stock: pb::Stock,
) -> Result<pb::Stock> {
    let (centre_id, part_id) = (
        Uuid::parse_str(&stock.centre_id).unwrap_or_default(),
        Uuid::parse_str(&stock.part_id).unwrap_or_default(),
    );
    match rules::low(stock.low, stock.available, stock.minimum) {
        Low::Unchanged => {}
        Low::Recovered => {
            store::set_low(tx, centre_id, part_id, false).await?;
            stock.low = false;
        }
        Low::Fell => {
            store::set_low(tx, centre_id, part_id, true).await?;
            stock.low = true;
            let event = pb::StockEvent {
                stock: Some(stock.clone()),
                centre: Some(centre.clone()),
            };
            let aggregate = format!("centres/{centre_id}/stock/{part_id}");
            publish(tx, call, now, STOCK_LOW, &aggregate, &event).await?;
        }
    }
    Ok(stock)
}

impl Repairs {
    /// Books a delivery into a centre's stock.
    pub async fn receive_stock(
        &self,
        key: RequestKey,
        d: Delivery,
        call: &Call,
    ) -> Result<pb::ReceiveStockResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let centre = centres::visible(&mut tx, d.centre, &scope(&call.principal)).await?;
        let part = catalogue::known(&mut tx, d.part, "part_id").await?;
        let now = self.clock.now();
        let stock = store::add(&mut tx, &centre, &part, d.quantity, 0, now).await?;
        let stock = changed(&mut tx, call, now, &centre, stock).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("centres/{}/stock/{}", d.centre, d.part),
            &["on_hand"],
        )
        .await?;
        let response = pb::ReceiveStockResponse { stock: Some(stock) };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// A centre's stock of one part, in the caller's scope.
    pub async fn get_stock(
        &self,
        centre: Uuid,
        part: Uuid,
        caller: &Principal,
    ) -> Result<pb::Stock> {
        let mut conn = self.pool.acquire().await?;
        store::get_stock(&mut conn, &scope(caller), centre, part)
            .await?
            .ok_or_else(|| not_found("stock", format!("{centre}/{part}")))
    }

    /// Stock rows in the caller's scope; a centre out of scope is `NOT_FOUND`.
    pub async fn list_stock(
        &self,
        centre: Option<Uuid>,
        low_only: bool,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListStockResponse> {
        let filter = format!("stock/{centre:?}/{low_only}");
        let page = self.pager.read::<(Uuid, String)>(page, &filter)?;
        let scope = scope(caller);
        let mut conn = self.pool.acquire().await?;
        if let Some(centre) = centre {
            centres::visible(&mut conn, centre, &scope).await?;
        }
        let mut stock = store::list_stock(
            &mut conn,
            &scope,
            centre,
            low_only,
            page.after.as_ref(),
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut stock, &filter, |s| {
            (
                Uuid::parse_str(&s.centre_id).unwrap_or_default(),
                s.part_number.clone(),
            )
        });
        Ok(pb::ListStockResponse {
            stock,
            page: Some(next),
        })
    }

    /// Stock totals per centre over the caller's scope: a partner's totals never include
    /// another organisation's units.
    pub async fn summarise_stock(&self, caller: &Principal) -> Result<pb::SummariseStockResponse> {
        let mut conn = self.pool.acquire().await?;
        let centres = store::summarise(&mut conn, &scope(caller)).await?;
        Ok(pb::SummariseStockResponse {
            on_hand: centres.iter().map(|c| c.on_hand).sum(),
            reserved: centres.iter().map(|c| c.reserved).sum(),
            centres,
        })
    }
}
