//! The SQL of part requests.

use crm_kit::{Result, convert, scope::Scope};
use crm_proto::repairs::v1 as pb;
use sqlx::{PgConnection, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rules::{state_name, state_of};
use crate::service::push_scope;

const COLUMNS: &str = "id, centre_id, part_id, partner_id, quantity, state, ticket_id, note, \
                       used, returned, request_time, requested_by, issue_time, issued_by, \
                       close_time, closed_by, cancel_reason";

/// A stored part request with the partner organisation it belongs to.
#[derive(sqlx::FromRow)]
pub struct PartRequestRow {
    id: Uuid,
    centre_id: Uuid,
    part_id: Uuid,
    /// The partner organisation of its centre (empty for HQ and branches).
    pub partner_id: String,
    quantity: i32,
    state: String,
    ticket_id: String,
    note: String,
    used: i32,
    returned: i32,
    request_time: OffsetDateTime,
    requested_by: String,
    issue_time: Option<OffsetDateTime>,
    issued_by: String,
    close_time: Option<OffsetDateTime>,
    closed_by: String,
    cancel_reason: String,
}

impl PartRequestRow {
    /// Its ids: (request, centre, part).
    pub fn ids(&self) -> (Uuid, Uuid, Uuid) {
        (self.id, self.centre_id, self.part_id)
    }

    /// The request as the API shows it.
    pub fn to_proto(&self) -> pb::PartRequest {
        let stamp = |t: Option<OffsetDateTime>, by: &str| t.map(|t| convert::stamp(t, by));
        pb::PartRequest {
            id: self.id.to_string(),
            centre_id: self.centre_id.to_string(),
            part_id: self.part_id.to_string(),
            quantity: self.quantity,
            state: state_of(&self.state) as i32,
            ticket_id: self.ticket_id.clone(),
            note: self.note.clone(),
            used: self.used,
            returned: self.returned,
            requested: Some(convert::stamp(self.request_time, &self.requested_by)),
            issued: stamp(self.issue_time, &self.issued_by),
            closed: stamp(self.close_time, &self.closed_by),
            cancel_reason: self.cancel_reason.clone(),
        }
    }
}

/// What a new request stores.
pub struct Insert<'a> {
    /// Its id.
    pub id: Uuid,
    /// The centre.
    pub centre: &'a pb::Centre,
    /// The part.
    pub part: Uuid,
    /// Units reserved.
    pub quantity: i32,
    /// The ticket, or empty.
    pub ticket_id: &'a str,
    /// What for.
    pub note: &'a str,
}

/// Stores a new RESERVED request.
pub async fn insert(
    tx: &mut PgConnection,
    r: &Insert<'_>,
    now: OffsetDateTime,
    actor: &str,
) -> Result<PartRequestRow> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO part_requests (id, centre_id, part_id, partner_id, quantity, state, \
         ticket_id, note, request_time, requested_by) \
         VALUES ($1, $2, $3, $4, $5, 'RESERVED', $6, $7, $8, $9) RETURNING {COLUMNS}"
    )))
    .bind(r.id)
    .bind(Uuid::parse_str(&r.centre.id).unwrap_or_default())
    .bind(r.part)
    .bind(&r.centre.partner_id)
    .bind(r.quantity)
    .bind(r.ticket_id)
    .bind(r.note)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?)
}

/// One request, locked for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<PartRequestRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM part_requests WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// One request in `scope`.
pub async fn get(
    conn: &mut PgConnection,
    scope: &Scope,
    id: Uuid,
) -> Result<Option<pb::PartRequest>> {
    let mut b = QueryBuilder::new(format!("SELECT {COLUMNS} FROM part_requests WHERE id = "));
    b.push_bind(id);
    push_scope(&mut b, scope);
    let row: Option<PartRequestRow> = b.build_query_as().fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| r.to_proto()))
}

/// The outcome of a step to store.
pub struct Outcome<'a> {
    /// The new state.
    pub state: pb::PartRequestState,
    /// Units used (settlement).
    pub used: i32,
    /// Units returned (settlement).
    pub returned: i32,
    /// Why it was cancelled.
    pub cancel_reason: &'a str,
}

/// Stores a step of request `id` (issue stamps the issue, settle and cancel the close).
pub async fn record_step(
    tx: &mut PgConnection,
    id: Uuid,
    o: &Outcome<'_>,
    now: OffsetDateTime,
    actor: &str,
) -> Result<PartRequestRow> {
    let issuing = o.state == pb::PartRequestState::Issued;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE part_requests SET state = $2, used = $3, returned = $4, cancel_reason = $5, \
         issue_time = CASE WHEN $6 THEN $7 ELSE issue_time END, \
         issued_by = CASE WHEN $6 THEN $8 ELSE issued_by END, \
         close_time = CASE WHEN $6 THEN close_time ELSE $7 END, \
         closed_by = CASE WHEN $6 THEN closed_by ELSE $8 END \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(state_name(o.state))
    .bind(o.used)
    .bind(o.returned)
    .bind(o.cancel_reason)
    .bind(issuing)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?)
}

/// Requests in `scope` (of `centre` when given; only issued ones when `outstanding`), oldest
/// first after `after`.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    centre: Option<Uuid>,
    outstanding: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::PartRequest>> {
    let mut b = QueryBuilder::new(format!("SELECT {COLUMNS} FROM part_requests WHERE true"));
    push_scope(&mut b, scope);
    if let Some(centre) = centre {
        b.push(" AND centre_id = ").push_bind(centre);
    }
    if outstanding {
        b.push(" AND state = 'ISSUED'");
    }
    if let Some(after) = after {
        b.push(" AND id > ").push_bind(after);
    }
    b.push(" ORDER BY id LIMIT ").push_bind(limit);
    let rows: Vec<PartRequestRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(PartRequestRow::to_proto).collect())
}
