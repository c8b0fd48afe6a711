//! The SQL of escalations (T-8): the escalations table and their progress.

use crm_kit::{Result, convert};
use crm_proto::tickets::v1 as pb;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{name, time_of, value};

#[derive(sqlx::FromRow)]
struct EscalationRow {
    id: Uuid,
    ticket_id: Uuid,
    kind: String,
    state: String,
    customer_id: Uuid,
    product_model: String,
    serial_number: String,
    symptom: String,
    batch_failure: bool,
    due_time: OffsetDateTime,
    routed_to: String,
    reason: String,
    review_note: String,
    resolution: String,
    overdue: bool,
    version: i64,
    request_time: OffsetDateTime,
    requested_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
}

const ESCALATION_COLUMNS: &str = "id, ticket_id, kind, state, customer_id, product_model, serial_number, \
     symptom, batch_failure, due_time, routed_to, reason, review_note, resolution, overdue, version, \
     request_time, requested_by, update_time, updated_by";

impl From<EscalationRow> for pb::Escalation {
    fn from(r: EscalationRow) -> Self {
        Self {
            id: r.id.to_string(),
            ticket_id: r.ticket_id.to_string(),
            kind: value(pb::EscalationKind::from_str_name(&r.kind)),
            state: value(pb::EscalationState::from_str_name(&r.state)),
            customer_id: r.customer_id.to_string(),
            product_model: r.product_model,
            serial_number: r.serial_number,
            symptom: r.symptom,
            batch_failure: r.batch_failure,
            due_time: Some(convert::timestamp(r.due_time)),
            routed_to: r.routed_to,
            reason: r.reason,
            review_note: r.review_note,
            resolution: r.resolution,
            progress: Vec::new(),
            overdue: r.overdue,
            version: r.version,
            requested: Some(convert::stamp(r.request_time, &r.requested_by)),
            updated: Some(convert::stamp(r.update_time, &r.updated_by)),
        }
    }
}

/// Writes an escalation whole (insert or replace).
pub async fn save_escalation(tx: &mut PgConnection, e: &pb::Escalation) -> Result<()> {
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| crm_kit::Error::Internal(e.into()));
    let requested = e.requested.clone().unwrap_or_default();
    let updated = e.updated.clone().unwrap_or_default();
    let sql = format!(
        "INSERT INTO escalations ({ESCALATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
         $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) ON CONFLICT (id) DO UPDATE SET state = $4, \
         due_time = $10, routed_to = $11, review_note = $13, resolution = $14, overdue = $15, \
         version = $16, update_time = $19, updated_by = $20"
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(uuid(&e.id)?)
        .bind(uuid(&e.ticket_id)?)
        .bind(name(e.kind, pb::EscalationKind::as_str_name))
        .bind(name(e.state, pb::EscalationState::as_str_name))
        .bind(uuid(&e.customer_id)?)
        .bind(&e.product_model)
        .bind(&e.serial_number)
        .bind(&e.symptom)
        .bind(e.batch_failure)
        .bind(time_of(e.due_time.as_ref()))
        .bind(&e.routed_to)
        .bind(&e.reason)
        .bind(&e.review_note)
        .bind(&e.resolution)
        .bind(e.overdue)
        .bind(e.version)
        .bind(time_of(requested.time.as_ref()))
        .bind(&requested.actor)
        .bind(time_of(updated.time.as_ref()))
        .bind(&updated.actor)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn with_progress(
    conn: &mut PgConnection,
    row: Option<EscalationRow>,
) -> Result<Option<pb::Escalation>> {
    let Some(row) = row else {
        return Ok(None);
    };
    let id = row.id;
    let mut e = pb::Escalation::from(row);
    let rows: Vec<(String, OffsetDateTime, String)> = sqlx::query_as(
        "SELECT note, record_time, recorded_by FROM escalation_progress WHERE escalation_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    e.progress = rows
        .into_iter()
        .map(|(note, at, actor)| pb::EscalationProgress {
            note,
            recorded: Some(convert::stamp(at, &actor)),
        })
        .collect();
    Ok(Some(e))
}

/// One escalation with its progress, locked for the transaction when `lock`.
pub async fn get_escalation(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<pb::Escalation>> {
    let sql = format!(
        "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<EscalationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    with_progress(conn, row).await
}

/// A ticket's latest escalation, with its progress.
pub async fn latest_escalation(
    conn: &mut PgConnection,
    ticket: Uuid,
) -> Result<Option<pb::Escalation>> {
    let sql = format!(
        "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE ticket_id = $1 ORDER BY id DESC LIMIT 1"
    );
    let row: Option<EscalationRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(ticket)
        .fetch_optional(&mut *conn)
        .await?;
    with_progress(conn, row).await
}

/// Adds a progress note to an escalation.
pub async fn insert_progress(
    tx: &mut PgConnection,
    escalation: Uuid,
    note: &str,
    at: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO escalation_progress (id, escalation_id, note, record_time, recorded_by) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(escalation)
    .bind(note)
    .bind(at)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Escalations in `states` (all when empty), of a department and a ticket, earliest time limit
/// first, after the key `(due_time, id)`.
pub async fn list_escalations(
    conn: &mut PgConnection,
    states: &[String],
    routed_to: Option<&str>,
    ticket: Option<Uuid>,
    scope: &crate::service::Scope,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<pb::Escalation>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {ESCALATION_COLUMNS} FROM escalations WHERE true"
    ));
    if !states.is_empty() {
        b.push(" AND state = ANY(")
            .push_bind(states.to_vec())
            .push(")");
    }
    if let Some(r) = routed_to {
        b.push(" AND routed_to = ").push_bind(r.to_string());
    }
    if let Some(t) = ticket {
        b.push(" AND ticket_id = ").push_bind(t);
    }
    // the caller's scope, as for the tickets themselves
    if scope.assignee.is_some() || scope.region.is_some() || scope.partner.is_some() {
        b.push(" AND EXISTS (SELECT 1 FROM tickets t WHERE t.id = escalations.ticket_id");
        if let Some(a) = &scope.assignee {
            b.push(" AND t.assignee_id = ").push_bind(a.clone());
        }
        if let Some(r) = &scope.region {
            b.push(" AND t.region = ").push_bind(r.clone());
        }
        if let Some(p) = &scope.partner {
            b.push(" AND t.partner_id <> '' AND t.partner_id = ")
                .push_bind(p.clone());
        }
        b.push(")");
    }
    if let Some((due, id)) = after {
        b.push(" AND (due_time, id) > (")
            .push_bind(due)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY due_time, id LIMIT ").push_bind(limit);
    let rows: Vec<EscalationRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.extend(with_progress(conn, Some(row)).await?);
    }
    Ok(out)
}
