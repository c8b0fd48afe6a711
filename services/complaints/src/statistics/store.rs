//! The statistics' SQL: one grouped scan of the cycles received in a period.

use crm_kit::{Result, scope::Scope};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;

/// One group: the cycles of a bucket, kind, department and outcome (stored names).
#[derive(Debug, sqlx::FromRow)]
pub struct Line {
    /// Where the bucket starts.
    pub period_start: OffsetDateTime,
    /// The stored kind.
    pub kind: String,
    /// The department code.
    pub department: String,
    /// `OPEN`, `RESOLVED` or `REOPENED`.
    pub outcome: String,
    /// Cycles.
    pub complaints: i64,
    /// Confirmed by the committed deadline.
    pub on_time: i64,
    /// Mean seconds from intake to confirmation over the confirmed ones.
    pub mean_resolution_seconds: i64,
    /// With a committed-deadline breach recorded.
    pub committed_breaches: i64,
    /// Whose follow-up was done (closed or reopened).
    pub followed_up: i64,
}

/// The groups over the cycles received in `[from, to)` in `scope`, per `unit` (`day`, `week`,
/// `month` on a clock `offset_s` seconds east of UTC; `None`: the whole period).
pub async fn lines(
    conn: &mut PgConnection,
    scope: &Scope,
    (from, to): (OffsetDateTime, OffsetDateTime),
    unit: Option<&str>,
    offset_s: i32,
) -> Result<Vec<Line>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new("SELECT ");
    match unit {
        Some(unit) => {
            b.push("date_trunc(")
                .push_bind(unit.to_string())
                .push(", create_time + make_interval(secs => ")
                .push_bind(offset_s)
                .push(")) - make_interval(secs => ")
                .push_bind(offset_s)
                .push(")");
        }
        None => {
            b.push_bind(from);
        }
    }
    b.push(
        " AS period_start, kind, department, \
           CASE WHEN state = 'REOPENED' THEN 'REOPENED' \
                WHEN resolve_time IS NOT NULL THEN 'RESOLVED' ELSE 'OPEN' END AS outcome, \
           count(*) AS complaints, \
           count(*) FILTER (WHERE resolve_time <= committed_due) AS on_time, \
           COALESCE(round(avg(EXTRACT(EPOCH FROM resolve_time - create_time)) \
             FILTER (WHERE resolve_time IS NOT NULL)), 0)::bigint AS mean_resolution_seconds, \
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM complaint_breaches x \
             WHERE x.complaint_id = complaints.id AND x.deadline = 'COMMITTED')) \
             AS committed_breaches, \
           count(*) FILTER (WHERE state IN ('CLOSED', 'REOPENED')) AS followed_up \
         FROM complaints WHERE create_time >= ",
    );
    b.push_bind(from).push(" AND create_time < ").push_bind(to);
    scope.push_sql(&mut b, crate::service::COLUMNS);
    b.push(" GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4");
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}
