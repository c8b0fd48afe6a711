//! The audit trail (G-4), written once for every service: [`record`] adds an event in the same
//! transaction as the change it describes, so a change is never without its record;
//! [`AuditReader`] serves `crm.audit.v1.AuditService` on every server. Events name the changed
//! fields, never their values, so no personal data enters the trail.

use crm_proto::audit::v1::{self as pb, audit_service_server::AuditService};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Error, auth::PrincipalKind, context::Call, convert, paging::Pager};

/// Records that `call` changed `resource` (its `changed_fields`), with outcome "ok".
pub async fn record(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    resource: &str,
    changed_fields: &[&str],
) -> Result<(), Error> {
    record_outcome(tx, call, now, resource, changed_fields, "ok").await
}

/// Records an event with an explicit outcome (e.g. a refused login).
pub async fn record_outcome(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    resource: &str,
    changed_fields: &[&str],
    outcome: &str,
) -> Result<(), Error> {
    crate::telemetry::record_resource(resource);
    let kind = actor_kind(call);
    sqlx::query(
        "INSERT INTO audit_events (id, event_time, actor, actor_kind, method, resource, changed_fields, outcome, \
         peer, user_agent, trace_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(Uuid::now_v7())
    .bind(now)
    .bind(&call.principal.subject)
    .bind(kind)
    .bind(&call.method)
    .bind(resource)
    .bind(changed_fields)
    .bind(outcome)
    .bind(&call.peer)
    .bind(&call.user_agent)
    .bind(&call.trace_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records that `call` changed many resources (each with its changed fields), with outcome
/// "ok", in one statement: for bulk changes such as an import's batch.
pub async fn record_many(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    changes: &[(String, Vec<&str>)],
) -> Result<(), Error> {
    if changes.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO audit_events (id, resource, changed_fields, event_time, actor, actor_kind, method, \
         outcome, peer, user_agent, trace_id) \
         SELECT u.id, u.resource, ARRAY(SELECT jsonb_array_elements_text(u.fields)), $4, $5, $6, $7, 'ok', \
         $8, $9, $10 FROM unnest($1::uuid[], $2::text[], $3::jsonb[]) AS u(id, resource, fields)",
    )
    .bind(changes.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
    .bind(changes.iter().map(|(r, _)| r.as_str()).collect::<Vec<_>>())
    .bind(
        changes
            .iter()
            .map(|(_, f)| sqlx::types::Json(f))
            .collect::<Vec<_>>(),
    )
    .bind(now)
    .bind(&call.principal.subject)
    .bind(actor_kind(call))
    .bind(&call.method)
    .bind(&call.peer)
    .bind(&call.user_agent)
    .bind(&call.trace_id)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// How the caller is recorded: a system job, a user or an API key.
fn actor_kind(call: &Call) -> &'static str {
    if call.system {
        "system"
    } else {
        match call.principal.kind {
            PrincipalKind::User => "user",
            PrincipalKind::ApiKey => "api_key",
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    event_time: OffsetDateTime,
    actor: String,
    actor_kind: String,
    method: String,
    resource: String,
    changed_fields: Vec<String>,
    outcome: String,
    peer: String,
    user_agent: String,
    trace_id: String,
}

#[derive(Serialize, Deserialize)]
struct Key {
    t: i64,
    id: Uuid,
}

/// Reads one service's audit trail.
#[derive(Clone)]
pub struct AuditReader {
    pool: PgPool,
    pager: Pager,
    service: &'static str,
}

impl AuditReader {
    /// The reader of the trail in `pool`'s schema, recorded by `service`.
    pub fn new(pool: PgPool, pager: Pager, service: &'static str) -> Self {
        Self {
            pool,
            pager,
            service,
        }
    }

    /// Events matching `filter`, newest first.
    pub async fn list(
        &self,
        filter: Option<&pb::AuditFilter>,
        page: Option<&crm_proto::common::v1::PageRequest>,
    ) -> Result<pb::ListAuditEventsResponse, Error> {
        let default = pb::AuditFilter::default();
        let f = filter.unwrap_or(&default);
        let mut v = crate::Violations::new();
        let start = f
            .start_time
            .as_ref()
            .and_then(|t| v.check("filter.start_time", convert::from_timestamp(t)));
        let end = f
            .end_time
            .as_ref()
            .and_then(|t| v.check("filter.end_time", convert::from_timestamp(t)));
        v.finish()?;
        let fingerprint = format!("{f:?}");
        let page = self.pager.read::<Key>(page, &fingerprint)?;
        let mut b = QueryBuilder::<Postgres>::new(
            "SELECT id, event_time, actor, actor_kind, method, resource, changed_fields, outcome, peer, user_agent, \
             trace_id FROM audit_events WHERE true",
        );
        if !f.actor.is_empty() {
            b.push(" AND actor = ").push_bind(f.actor.clone());
        }
        if !f.method.is_empty() {
            b.push(" AND method = ").push_bind(f.method.clone());
        }
        if !f.resource.is_empty() {
            b.push(" AND resource = ").push_bind(f.resource.clone());
        }
        if let Some(start) = start {
            b.push(" AND event_time >= ").push_bind(start);
        }
        if let Some(end) = end {
            b.push(" AND event_time < ").push_bind(end);
        }
        if let Some(after) = &page.after {
            let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(after.t) * 1000)
                .map_err(|_| Error::invalid("page.page_token", "is not a valid token"))?;
            b.push(" AND (event_time, id) < (")
                .push_bind(t)
                .push(", ")
                .push_bind(after.id)
                .push(")");
        }
        b.push(" ORDER BY event_time DESC, id DESC LIMIT ")
            .push_bind(page.limit());
        let rows: Vec<Row> = b.build_query_as().fetch_all(&self.pool).await?;
        let mut events: Vec<pb::AuditEvent> = rows
            .into_iter()
            .map(|r| pb::AuditEvent {
                id: r.id.to_string(),
                time: Some(convert::timestamp(r.event_time)),
                actor: r.actor,
                actor_kind: r.actor_kind,
                method: r.method,
                resource: r.resource,
                changed_fields: r.changed_fields,
                outcome: r.outcome,
                peer: r.peer,
                user_agent: r.user_agent,
                trace_id: r.trace_id,
                service: self.service.to_string(),
            })
            .collect();
        let page = self
            .pager
            .finish(&page, &mut events, &fingerprint, |e| Key {
                t: e.time
                    .as_ref()
                    .map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000),
                id: e.id.parse().unwrap_or_default(),
            });
        Ok(pb::ListAuditEventsResponse {
            events,
            page: Some(page),
        })
    }
}

#[tonic::async_trait]
impl AuditService for AuditReader {
    async fn list_audit_events(
        &self,
        request: tonic::Request<pb::ListAuditEventsRequest>,
    ) -> Result<tonic::Response<pb::ListAuditEventsResponse>, tonic::Status> {
        let r = request.into_inner();
        Ok(tonic::Response::new(
            self.list(r.filter.as_ref(), r.page.as_ref()).await?,
        ))
    }
}
