//! Repair centres: headquarters, branch centres, authorised partner repair centres and
//! agents, each with its region, address and opening hours; a partner centre or agent belongs
//! to the partner organisation whose users and API keys work there, and only they see it.

pub mod rules;
mod store;

pub(crate) use store::get_centre;

use crm_kit::{
    Result, audit, auth::Principal, context::Call, idempotency::RequestKey, scope::Scope,
};
use crm_proto::repairs::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::{Repairs, holder, not_found, require_managing, scope};
use rules::NewCentre;

/// The centre `id` if `scope` may see it; `NOT_FOUND` otherwise, as if it did not exist. The
/// other capabilities check a centre a call names with it.
pub(crate) async fn visible(
    conn: &mut PgConnection,
    id: Uuid,
    scope: &Scope,
) -> Result<pb::Centre> {
    store::get_centre(conn, id)
        .await?
        .filter(|c| scope.permits(holder(&c.partner_id)))
        .ok_or_else(|| not_found("centre", id))
}

impl Repairs {
    /// Registers a centre (service managers only).
    pub async fn create_centre(
        &self,
        key: RequestKey,
        new: NewCentre,
        call: &Call,
    ) -> Result<pb::CreateCentreResponse> {
        require_managing(&call.principal, "registering a repair centre")?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let centre = store::insert_centre(
            &mut tx,
            id,
            &new.centre,
            new.kind,
            now,
            &call.principal.subject,
        )
        .await?;
        audit::record(&mut tx, call, now, &format!("centres/{id}"), &["created"]).await?;
        let response = pb::CreateCentreResponse {
            centre: Some(centre),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// One centre in the caller's scope.
    pub async fn get_centre(&self, id: Uuid, caller: &Principal) -> Result<pb::Centre> {
        let mut conn = self.pool.acquire().await?;
        visible(&mut conn, id, &scope(caller)).await
    }

    /// The centres in the caller's scope, by code.
    pub async fn list_centres(
        &self,
        r: &pb::ListCentresRequest,
        caller: &Principal,
    ) -> Result<pb::ListCentresResponse> {
        let kind = pb::CentreKind::try_from(r.kind)
            .ok()
            .filter(|k| *k != pb::CentreKind::Unspecified);
        let filter = format!("centres/{}/{}", r.kind, r.region);
        let page = self.pager.read::<String>(r.page.as_ref(), &filter)?;
        let mut conn = self.pool.acquire().await?;
        let mut centres = store::list_centres(
            &mut conn,
            &scope(caller),
            kind,
            &r.region,
            page.after.as_deref(),
            page.limit(),
        )
        .await?;
        let next = self
            .pager
            .finish(&page, &mut centres, &filter, |c| c.code.clone());
        Ok(pb::ListCentresResponse {
            centres,
            page: Some(next),
        })
    }
}
