//! The SQL of partner changes (C-5).

use crm_kit::{Result, convert};
use crm_proto::customers::v1::{self as pb, PartnerChangeState};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crm_kit::scope::Scope;

use crate::store::{enum_value, push_scope};

#[derive(sqlx::FromRow)]
struct PartnerChangeRow {
    id: Uuid,
    customer_id: Uuid,
    current_partner_id: String,
    proposed_partner_id: String,
    reason: String,
    state: String,
    requested_by: String,
    request_time: OffsetDateTime,
    decided_by: Option<String>,
    decision_time: Option<OffsetDateTime>,
    decision_reason: String,
}

impl From<PartnerChangeRow> for pb::PartnerChange {
    fn from(r: PartnerChangeRow) -> Self {
        Self {
            id: r.id.to_string(),
            customer_id: r.customer_id.to_string(),
            current_partner_id: r.current_partner_id,
            proposed_partner_id: r.proposed_partner_id,
            reason: r.reason,
            state: enum_value(PartnerChangeState::from_str_name(&r.state)),
            requested: Some(convert::stamp(r.request_time, &r.requested_by)),
            decided: match (r.decision_time, r.decided_by) {
                (Some(at), Some(by)) => Some(convert::stamp(at, &by)),
                _ => None,
            },
            decision_reason: r.decision_reason,
        }
    }
}

const PARTNER_COLUMNS: &str = "id, customer_id, current_partner_id, proposed_partner_id, reason, state, requested_by, \
     request_time, decided_by, decision_time, decision_reason";

/// A new partner-change request, pending or (for the first partner) already decided.
pub struct NewPartnerChange<'a> {
    /// Its id.
    pub id: Uuid,
    /// The customer.
    pub customer_id: Uuid,
    /// The partner now.
    pub current: &'a str,
    /// The partner asked for.
    pub proposed: &'a str,
    /// Why.
    pub reason: &'a str,
    /// PENDING or INITIAL.
    pub state: PartnerChangeState,
    /// Who asked.
    pub actor: &'a str,
    /// When.
    pub now: OffsetDateTime,
}

/// Inserts a partner-change request. A second pending request for a customer violates
/// `partner_changes_one_pending`.
pub async fn insert_partner_change(
    tx: &mut PgConnection,
    c: &NewPartnerChange<'_>,
) -> Result<pb::PartnerChange> {
    let decided = c.state != PartnerChangeState::Pending;
    let sql = format!(
        "INSERT INTO partner_changes (id, customer_id, current_partner_id, proposed_partner_id, reason, state, \
         requested_by, request_time, decided_by, decision_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $9 THEN $7 END, CASE WHEN $9 THEN $8 END) \
         RETURNING {PARTNER_COLUMNS}"
    );
    let row: PartnerChangeRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(c.id)
        .bind(c.customer_id)
        .bind(c.current)
        .bind(c.proposed)
        .bind(c.reason)
        .bind(c.state.as_str_name())
        .bind(c.actor)
        .bind(c.now)
        .bind(decided)
        .fetch_one(&mut *tx)
        .await?;
    Ok(row.into())
}

/// One partner-change request, locked for the rest of the transaction.
pub async fn lock_partner_change(
    tx: &mut PgConnection,
    id: Uuid,
) -> Result<Option<pb::PartnerChange>> {
    let sql = format!("SELECT {PARTNER_COLUMNS} FROM partner_changes WHERE id = $1 FOR UPDATE");
    let row: Option<PartnerChangeRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
    Ok(row.map(Into::into))
}

/// Records the decision on a pending request.
pub async fn decide_partner_change(
    tx: &mut PgConnection,
    id: Uuid,
    state: PartnerChangeState,
    reason: &str,
    actor: &str,
    now: OffsetDateTime,
) -> Result<pb::PartnerChange> {
    let sql = format!(
        "UPDATE partner_changes SET state = $2, decision_reason = $3, decided_by = $4, decision_time = $5 \
         WHERE id = $1 RETURNING {PARTNER_COLUMNS}"
    );
    let row: PartnerChangeRow = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(state.as_str_name())
        .bind(reason)
        .bind(actor)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
    Ok(row.into())
}

/// Partner-change requests, optionally of one customer and in one state, oldest first.
pub async fn list_partner_changes(
    conn: &mut PgConnection,
    customer: Option<Uuid>,
    state: Option<PartnerChangeState>,
    scope: &Scope,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::PartnerChange>> {
    let mut b = QueryBuilder::<Postgres>::new(format!(
        "SELECT {PARTNER_COLUMNS} FROM partner_changes WHERE true"
    ));
    if let Some(customer) = customer {
        b.push(" AND customer_id = ").push_bind(customer);
    }
    if let Some(state) = state {
        b.push(" AND state = ").push_bind(state.as_str_name());
    }
    if let Some(after) = after {
        b.push(" AND id > ").push_bind(after);
    }
    if !scope.all {
        b.push(" AND customer_id IN (SELECT id FROM customers WHERE delete_time IS NULL");
        push_scope(&mut b, scope);
        b.push(")");
    }
    b.push(" ORDER BY id LIMIT ").push_bind(limit);
    let rows: Vec<PartnerChangeRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
