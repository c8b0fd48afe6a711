//! The SQL of deliveries and return/exchange requests.

use crm_kit::{Error, Result, convert, scope::Scope};
use crm_proto::repairs::v1::{self as pb, RmaOutcome, RmaState};
use sqlx::{PgConnection, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::service::push_scope;
use crate::service::stored;

/// Stores a delivery; a serial delivered before is `ALREADY_EXISTS`.
pub async fn insert_delivery(
    tx: &mut PgConnection,
    id: Uuid,
    d: &pb::Delivery,
    now: OffsetDateTime,
    actor: &str,
) -> Result<pb::Delivery> {
    sqlx::query(
        "INSERT INTO deliveries (id, customer_id, product_model, serial_number, quantity, \
         create_time, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(&d.customer_id)
    .bind(&d.product_model)
    .bind(&d.serial_number)
    .bind(d.quantity)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| {
        e.or_when("deliveries_serial_key", || Error::AlreadyExists {
            reason: "SERIAL_DELIVERED",
            message: format!("serial {} was delivered already", d.serial_number),
        })
    })?;
    Ok(pb::Delivery {
        id: id.to_string(),
        created: Some(convert::stamp(now, actor)),
        ..d.clone()
    })
}

/// The customer and quantity `serial` was delivered with.
pub async fn delivered(conn: &mut PgConnection, serial: &str) -> Result<Option<(String, i32)>> {
    Ok(
        sqlx::query_as("SELECT customer_id, quantity FROM deliveries WHERE serial_number = $1")
            .bind(serial)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

const COLUMNS: &str = "id, centre_id, partner_id, customer_id, serial_number, quantity, reason, \
    state, request_time, requested_by, fault_cause, customer_situation, return_reason, qualifies, \
    diagnosis_time, diagnosed_by, judgement, recommended, judge_time, judged_by, outcome, \
    decision_reason, decision_time, decided_by, replacement_part_id, carrier, tracking_number, \
    return_due_time, faulty_received_time, return_overdue";

/// A stored request.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RmaRow {
    id: Uuid,
    centre_id: Uuid,
    /// The handling centre's partner organisation.
    pub partner_id: String,
    customer_id: String,
    serial_number: String,
    quantity: i32,
    reason: String,
    state: String,
    request_time: OffsetDateTime,
    /// Who requested it.
    pub requested_by: String,
    fault_cause: String,
    customer_situation: String,
    return_reason: String,
    qualifies: bool,
    diagnosis_time: Option<OffsetDateTime>,
    diagnosed_by: String,
    judgement: String,
    recommended: String,
    judge_time: Option<OffsetDateTime>,
    judged_by: String,
    outcome: String,
    decision_reason: String,
    decision_time: Option<OffsetDateTime>,
    decided_by: String,
    /// The replacement part of an exchange.
    pub replacement_part_id: Option<Uuid>,
    carrier: String,
    tracking_number: String,
    return_due_time: Option<OffsetDateTime>,
    /// When the faulty unit came back.
    pub faulty_received_time: Option<OffsetDateTime>,
    return_overdue: bool,
}

fn outcome_of(name: &str) -> i32 {
    RmaOutcome::from_str_name(&format!("RMA_OUTCOME_{name}")).map_or(0, |o| o as i32)
}

impl RmaRow {
    /// The handling centre.
    pub fn centre_id(&self) -> Uuid {
        self.centre_id
    }

    /// The request as the API shows it.
    pub fn to_proto(&self) -> pb::Rma {
        let stamp = |t: Option<OffsetDateTime>, by: &str| t.map(|t| convert::stamp(t, by));
        pb::Rma {
            id: self.id.to_string(),
            centre_id: self.centre_id.to_string(),
            customer_id: self.customer_id.clone(),
            serial_number: self.serial_number.clone(),
            quantity: self.quantity,
            reason: self.reason.clone(),
            state: RmaState::from_str_name(&format!("RMA_STATE_{}", self.state))
                .map_or(0, |s| s as i32),
            requested: Some(convert::stamp(self.request_time, &self.requested_by)),
            fault_cause: self.fault_cause.clone(),
            customer_situation: self.customer_situation.clone(),
            return_reason: self.return_reason.clone(),
            qualifies: self.qualifies,
            diagnosed: stamp(self.diagnosis_time, &self.diagnosed_by),
            judgement: self.judgement.clone(),
            recommended: outcome_of(&self.recommended),
            judged: stamp(self.judge_time, &self.judged_by),
            outcome: outcome_of(&self.outcome),
            decision_reason: self.decision_reason.clone(),
            decided: stamp(self.decision_time, &self.decided_by),
            replacement_part_id: self
                .replacement_part_id
                .map(|p| p.to_string())
                .unwrap_or_default(),
            carrier: self.carrier.clone(),
            tracking_number: self.tracking_number.clone(),
            return_due_time: self.return_due_time.map(convert::timestamp),
            faulty_received_time: self.faulty_received_time.map(convert::timestamp),
            return_overdue: self.return_overdue,
        }
    }
}

/// Stores a new request; an open request on the same serial is `FAILED_PRECONDITION`.
pub async fn insert(
    tx: &mut PgConnection,
    id: Uuid,
    a: &pb::Rma,
    centre: &pb::Centre,
    now: OffsetDateTime,
    actor: &str,
) -> Result<RmaRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO rmas (id, centre_id, partner_id, customer_id, serial_number, quantity, reason, \
         state, request_time, requested_by) VALUES ($1, $2, $3, $4, $5, $6, $7, 'REQUESTED', $8, $9) \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(Uuid::parse_str(&centre.id).unwrap_or_default())
    .bind(&centre.partner_id)
    .bind(&a.customer_id)
    .bind(&a.serial_number)
    .bind(a.quantity)
    .bind(&a.reason)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| {
        e.or_when("rmas_one_open_per_serial", || {
            Error::precondition(
            "RMA_ALREADY_OPEN",
            format!("serial {} has an open return/exchange request", a.serial_number),
        )
        })
    })
}

/// One request, locked for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<RmaRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM rmas WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// One request in `scope`.
pub async fn get(conn: &mut PgConnection, scope: &Scope, id: Uuid) -> Result<Option<pb::Rma>> {
    let mut b = QueryBuilder::new(format!("SELECT {COLUMNS} FROM rmas WHERE id = "));
    b.push_bind(id);
    push_scope(&mut b, scope);
    let row: Option<RmaRow> = b.build_query_as().fetch_optional(&mut *conn).await?;
    Ok(row.map(|r| r.to_proto()))
}

/// Requests in `scope` (open ones unless `include_closed`), oldest first after `after`.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    include_closed: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Rma>> {
    let mut b = QueryBuilder::new(format!("SELECT {COLUMNS} FROM rmas WHERE true"));
    push_scope(&mut b, scope);
    if !include_closed {
        b.push(" AND close_time IS NULL");
    }
    if let Some(after) = after {
        b.push(" AND id > ").push_bind(after);
    }
    b.push(" ORDER BY id LIMIT ").push_bind(limit);
    let rows: Vec<RmaRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(RmaRow::to_proto).collect())
}

/// Writes request `a` after a step; `closed` stamps its close.
pub async fn save(
    tx: &mut PgConnection,
    a: &pb::Rma,
    replacement: Option<Uuid>,
    closed: bool,
    now: OffsetDateTime,
) -> Result<RmaRow> {
    let at = |s: &Option<crm_proto::common::v1::AuditStamp>| {
        s.as_ref()
            .and_then(|s| s.time.as_ref())
            .and_then(|t| convert::from_timestamp(t).ok())
    };
    let by = |s: &Option<crm_proto::common::v1::AuditStamp>| {
        s.as_ref().map(|s| s.actor.clone()).unwrap_or_default()
    };
    let ts = |t: &Option<prost_types::Timestamp>| {
        t.as_ref().and_then(|t| convert::from_timestamp(t).ok())
    };
    let outcome = |o: i32| {
        RmaOutcome::try_from(o)
            .ok()
            .filter(|o| *o != RmaOutcome::Unspecified)
            .map_or("", |o| stored(o.as_str_name(), "RMA_OUTCOME_"))
    };
    let state = RmaState::try_from(a.state).unwrap_or_default();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE rmas SET state = $2, fault_cause = $3, customer_situation = $4, return_reason = $5, \
         qualifies = $6, diagnosis_time = $7, diagnosed_by = $8, judgement = $9, recommended = $10, \
         judge_time = $11, judged_by = $12, outcome = $13, decision_reason = $14, \
         decision_time = $15, decided_by = $16, replacement_part_id = $17, carrier = $18, \
         tracking_number = $19, return_due_time = $20, faulty_received_time = $21, \
         close_time = CASE WHEN $22 THEN $23 ELSE close_time END WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(Uuid::parse_str(&a.id).unwrap_or_default())
    .bind(stored(state.as_str_name(), "RMA_STATE_"))
    .bind(&a.fault_cause)
    .bind(&a.customer_situation)
    .bind(&a.return_reason)
    .bind(a.qualifies)
    .bind(at(&a.diagnosed))
    .bind(by(&a.diagnosed))
    .bind(&a.judgement)
    .bind(outcome(a.recommended))
    .bind(at(&a.judged))
    .bind(by(&a.judged))
    .bind(outcome(a.outcome))
    .bind(&a.decision_reason)
    .bind(at(&a.decided))
    .bind(by(&a.decided))
    .bind(replacement)
    .bind(&a.carrier)
    .bind(&a.tracking_number)
    .bind(ts(&a.return_due_time))
    .bind(ts(&a.faulty_received_time))
    .bind(closed)
    .bind(now)
    .fetch_one(&mut *tx)
    .await?)
}

/// Marks request `id`'s faulty unit overdue, if still awaited; whether it was.
pub async fn mark_overdue(tx: &mut PgConnection, id: Uuid) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE rmas SET return_overdue = true WHERE id = $1 AND state = 'AWAITING_RETURN' \
         AND NOT return_overdue",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}
