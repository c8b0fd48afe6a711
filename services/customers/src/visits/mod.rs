//! Return and satisfaction visits (C-9): scheduled when a customer signs, their results
//! recorded once (a score or the customer's refusal), and the fraction done on time reported
//! per region and per sales rep.

use crm_kit::{Error, Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::customers::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

pub mod rules;
mod store;

/// The service-plan check (`care`) and the usual engineers from the tickets service
/// (`inbound`) use these queries of the visits' SQL.
pub(crate) use store::{service_progress, set_usual_engineer};

use crate::{
    service::{Customers, not_found, scope, sees},
    store as records,
};

fn visit_not_found(id: Uuid) -> Error {
    Error::NotFound {
        kind: "return visit",
        id: id.to_string(),
    }
}

impl Customers {
    /// Schedules the visits after signing for `customer`, signed now (in the caller's
    /// transaction; a customer signed again keeps its first visits).
    pub(crate) async fn schedule_visits(
        &self,
        tx: &mut PgConnection,
        customer: &pb::Customer,
    ) -> Result<()> {
        let signed = self.clock.now().date();
        let visits = self.policy.visits_after_signing(signed);
        store::schedule_visits(tx, customer, &visits).await
    }

    /// Records a visit's result, once.
    pub async fn record_visit(
        &self,
        key: RequestKey,
        input: (Uuid, i32, String, String),
        call: &Call,
    ) -> Result<pb::RecordReturnVisitResponse> {
        let (id, score, refusal, comments) = input;
        let caller = &call.principal;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let visit = store::get_visit(&mut tx, id, true)
            .await?
            .ok_or_else(|| visit_not_found(id))?;
        let customer =
            Uuid::parse_str(&visit.customer_id).map_err(|e| Error::Internal(e.into()))?;
        let visible = records::get_customer(&mut tx, customer, false)
            .await?
            .is_some_and(|c| sees(&scope(caller), &c));
        if !visible {
            return Err(visit_not_found(id));
        }
        if visit.done {
            return Err(Error::precondition(
                "VISIT_DONE",
                "the visit's result is already recorded",
            ));
        }
        let now = self.clock.now();
        store::record_visit(
            &mut tx,
            id,
            (score, &refusal, &comments),
            now,
            &caller.subject,
        )
        .await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("customers/{customer}/return_visits/{id}"),
            &["score", "refusal_reason", "comments"],
        )
        .await?;
        let visit = store::get_visit(&mut tx, id, false)
            .await?
            .ok_or_else(|| visit_not_found(id))?;
        let response = pb::RecordReturnVisitResponse { visit: Some(visit) };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// A customer's visits.
    pub async fn list_visits(
        &self,
        customer: Uuid,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListReturnVisitsResponse> {
        let fetch = async |conn: &mut PgConnection, after, limit| {
            store::list_visits(conn, customer, after, limit).await
        };
        let (visits, page) = self
            .customer_page(customer, page, caller, fetch, |v: &pb::ReturnVisit| &v.id)
            .await?;
        Ok(pb::ListReturnVisitsResponse {
            visits,
            page: Some(page),
        })
    }

    /// The on-time report over the visits due in a range, up to today.
    pub async fn report_visits(
        &self,
        r: &pb::ReportReturnVisitsRequest,
    ) -> Result<pb::ReportReturnVisitsResponse> {
        let (group, from, to) = rules::parse_visit_report(r, self.clock.now().date())?;
        let mut conn = self.pool.acquire().await?;
        let rows =
            store::visit_report(&mut conn, group == pb::VisitReportGrouping::Owner, from, to)
                .await?;
        Ok(pb::ReportReturnVisitsResponse { rows })
    }

    /// The policy in force for a customer and its progress (C-8).
    pub async fn service_policy(
        &self,
        customer: Uuid,
        caller: &Principal,
    ) -> Result<pb::GetServicePolicyResponse> {
        let mut conn = self.pool.acquire().await?;
        let c = records::get_customer(&mut conn, customer, false)
            .await?
            .filter(|c| sees(&scope(caller), c))
            .ok_or_else(|| not_found(customer))?;
        let now = self.clock.now();
        let (visits, last_report) =
            store::service_progress(&mut conn, customer, now - time::Duration::days(365)).await?;
        let since = c
            .created
            .as_ref()
            .and_then(|s| s.time.as_ref())
            .and_then(|t| crm_kit::convert::from_timestamp(t).ok())
            .map_or(now.date(), |t| t.date());
        let policy = self
            .policy
            .services
            .of(crate::tiers::rules::tier_key(c.tier()));
        let usual = store::usual_engineer(&mut conn, customer).await?;
        Ok(pb::GetServicePolicyResponse {
            status: Some(rules::service_status(
                &c,
                usual,
                policy,
                since,
                now.date(),
                visits,
                last_report,
            )),
        })
    }
}
