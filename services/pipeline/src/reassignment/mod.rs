//! Reassigning a rep's open work (P-7, 001): every open lead and opportunity of one rep moves
//! to another in one transaction, each opportunity's owner change in its history, the whole
//! move audited and published — so a departing rep's work does not stall. A sales manager of a
//! region moves that region's work.

use crm_kit::{
    Error, Result, Violations, audit,
    context::Call,
    idempotency::RequestKey,
    text::{self, Lines},
};
use crm_proto::pipeline::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::{Pipeline, WORK_REASSIGNED, publish, require_managing};

/// Moves the open leads of `from` to `to` (of `region` when given); how many.
async fn move_leads(
    tx: &mut PgConnection,
    (from, to): (&str, &str),
    region: Option<&str>,
    actor: &str,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE leads SET owner_id = $2, version = version + 1, update_time = now(), \
         updated_by = $3 WHERE owner_id = $1 AND state IN ('NEW', 'QUALIFIED') \
         AND ($4::text IS NULL OR region = $4)",
    )
    .bind(from)
    .bind(to)
    .bind(actor)
    .bind(region)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}

/// Moves the open opportunities of `from` to `to` (of `region` when given); their ids.
async fn move_opportunities(
    tx: &mut PgConnection,
    (from, to): (&str, &str),
    region: Option<&str>,
    actor: &str,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "UPDATE opportunities SET owner_id = $2, version = version + 1, update_time = now(), \
         updated_by = $3 WHERE owner_id = $1 AND stage NOT IN ('WON', 'LOST') \
         AND ($4::text IS NULL OR region = $4) RETURNING id",
    )
    .bind(from)
    .bind(to)
    .bind(actor)
    .bind(region)
    .fetch_all(&mut *tx)
    .await?)
}

impl Pipeline {
    /// Reassigns every open lead and opportunity of one rep to another.
    pub async fn reassign_work(
        &self,
        key: RequestKey,
        r: &pb::ReassignWorkRequest,
        call: &Call,
    ) -> Result<pb::ReassignWorkResponse> {
        let mut v = Violations::new();
        text::require(&mut v, "from_owner_id", &r.from_owner_id, 100, Lines::One);
        text::require(&mut v, "to_owner_id", &r.to_owner_id, 100, Lines::One);
        text::require(&mut v, "reason", &r.reason, 1000, Lines::Many);
        if !r.from_owner_id.is_empty() && r.from_owner_id.trim() == r.to_owner_id.trim() {
            v.add("to_owner_id", "is the same rep");
        }
        v.finish()?;
        require_managing(&call.principal, "reassigning a rep's work")?;
        let (from, to) = (r.from_owner_id.trim(), r.to_owner_id.trim());
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let actor = &call.principal.subject;
        // a sales manager of a region moves that region's work; an admin all of it
        let scope = crate::service::scope(&call.principal);
        let region = if scope.all {
            None
        } else {
            scope.region.as_deref()
        };
        let leads = move_leads(&mut tx, (from, to), region, actor).await?;
        let moved = move_opportunities(&mut tx, (from, to), region, actor).await?;
        for id in &moved {
            crate::opportunities::record(
                &mut tx,
                &id.to_string(),
                &[("owner", from.to_string(), to.to_string())],
                &r.reason,
                actor,
                now,
            )
            .await?;
        }
        if leads == 0 && moved.is_empty() {
            return Err(Error::precondition(
                "NOTHING_TO_REASSIGN",
                format!("{from} has no open leads or opportunities"),
            ));
        }
        let resource = format!("owners/{from}");
        publish(&mut tx, call, now, WORK_REASSIGNED, &resource, r).await?;
        audit::record(&mut tx, call, now, &resource, &["owner_id"]).await?;
        let response = pb::ReassignWorkResponse {
            leads: i32::try_from(leads).unwrap_or(i32::MAX),
            opportunities: i32::try_from(moved.len()).unwrap_or(i32::MAX),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }
}
