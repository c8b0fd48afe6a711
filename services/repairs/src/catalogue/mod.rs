//! The parts catalogue: the spare parts every centre stocks from, each with its part
//! number, whether its units carry serials, and the minimum stock a centre should hold.

pub mod rules;
mod store;

use crm_kit::{Error, Result, audit, context::Call, idempotency::RequestKey};
use crm_proto::repairs::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::{Repairs, require_managing};

/// The part `id` of the catalogue; an unknown part is `INVALID_ARGUMENT` on `field` (the
/// request named something that does not exist, R-3 "unknown part").
pub(crate) async fn known(conn: &mut PgConnection, id: Uuid, field: &str) -> Result<pb::Part> {
    store::get_part(conn, id)
        .await?
        .ok_or_else(|| Error::invalid(field, "is not a part of the catalogue"))
}

impl Repairs {
    /// Adds a part to the catalogue (service managers only).
    pub async fn create_part(
        &self,
        key: RequestKey,
        part: pb::Part,
        call: &Call,
    ) -> Result<pb::CreatePartResponse> {
        require_managing(&call.principal, "adding a part to the catalogue")?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let part = store::insert_part(&mut tx, id, &part, now, &call.principal.subject).await?;
        audit::record(&mut tx, call, now, &format!("parts/{id}"), &["created"]).await?;
        let response = pb::CreatePartResponse { part: Some(part) };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// The catalogue by part number.
    pub async fn list_parts(&self, r: &pb::ListPartsRequest) -> Result<pb::ListPartsResponse> {
        let page = self.pager.read::<String>(r.page.as_ref(), "parts")?;
        let mut conn = self.pool.acquire().await?;
        let mut parts = store::list_parts(&mut conn, page.after.as_deref(), page.limit()).await?;
        let next = self
            .pager
            .finish(&page, &mut parts, "parts", |p| p.part_number.clone());
        Ok(pb::ListPartsResponse {
            parts,
            page: Some(next),
        })
    }
}
