//! The SQL of turnaround: the warning and the breach recorded on an order, and the report.

use crm_kit::{Result, scope::Scope};
use sqlx::{PgConnection, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::service::push_scope;

/// Records the warning of order `id` (once).
pub async fn record_warning(tx: &mut PgConnection, id: Uuid, now: OffsetDateTime) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE repair_orders SET warning_time = $2 WHERE id = $1 AND warning_time IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// Records the breach of order `id` (once) and raises its priority.
pub async fn record_breach(tx: &mut PgConnection, id: Uuid, now: OffsetDateTime) -> Result<bool> {
    Ok(sqlx::query(
        "UPDATE repair_orders SET breach_time = $2, priority = 'HIGH', update_time = $2, \
         updated_by = 'turnaround' WHERE id = $1 AND breach_time IS NULL",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

/// One centre's figures.
#[derive(sqlx::FromRow)]
pub struct Line {
    /// The centre.
    pub centre_id: Uuid,
    /// Orders due in the period.
    pub orders: i64,
    /// Closed with no breach.
    pub on_time: i64,
    /// Breached.
    pub breached: i64,
    /// Open, not breached.
    pub open: i64,
}

/// The figures per centre in `scope` over orders due in `[from, to)`.
pub async fn report(
    conn: &mut PgConnection,
    scope: &Scope,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<Line>> {
    let mut b = QueryBuilder::new(
        "SELECT centre_id, count(*) AS orders, \
         count(*) FILTER (WHERE close_time IS NOT NULL AND breach_time IS NULL) AS on_time, \
         count(*) FILTER (WHERE breach_time IS NOT NULL) AS breached, \
         count(*) FILTER (WHERE close_time IS NULL AND breach_time IS NULL) AS open \
         FROM repair_orders WHERE due_time >= ",
    );
    b.push_bind(from).push(" AND due_time < ").push_bind(to);
    push_scope(&mut b, scope);
    b.push(" GROUP BY centre_id ORDER BY centre_id");
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}
