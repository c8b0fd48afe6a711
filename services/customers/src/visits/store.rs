//! The SQL of the visits after signing (C-8).

use crm_kit::{Result, convert};
use crm_proto::customers::v1 as pb;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::store::enum_value;

/// Schedules the visits after signing (once per customer and kind).
pub async fn schedule_visits(
    tx: &mut PgConnection,
    customer: &pb::Customer,
    visits: &[(pb::VisitKind, Date)],
) -> Result<()> {
    let id = Uuid::parse_str(&customer.id).map_err(|e| crm_kit::Error::Internal(e.into()))?;
    for (kind, due) in visits {
        sqlx::query(
            "INSERT INTO return_visits (id, customer_id, kind, due_date, owner_id, region) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (customer_id, kind) DO NOTHING",
        )
        .bind(Uuid::now_v7())
        .bind(id)
        .bind(kind.as_str_name())
        .bind(*due)
        .bind(&customer.owner_id)
        .bind(&customer.region)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct VisitRow {
    id: Uuid,
    customer_id: Uuid,
    kind: String,
    due_date: Date,
    owner_id: String,
    region: String,
    done_time: Option<OffsetDateTime>,
    done_date: Option<Date>,
    score: i32,
    refusal_reason: String,
    comments: String,
    recorded_by: String,
}

impl From<VisitRow> for pb::ReturnVisit {
    fn from(r: VisitRow) -> Self {
        Self {
            id: r.id.to_string(),
            customer_id: r.customer_id.to_string(),
            kind: enum_value(pb::VisitKind::from_str_name(&r.kind)),
            due_date: Some(convert::date(r.due_date)),
            owner_id: r.owner_id,
            region: r.region,
            done: r.done_time.is_some(),
            score: r.score,
            refusal_reason: r.refusal_reason,
            comments: r.comments,
            on_time: r.done_date.is_some_and(|d| d <= r.due_date),
            recorded: r.done_time.map(|t| convert::stamp(t, &r.recorded_by)),
        }
    }
}

const VISIT_COLUMNS: &str = "id, customer_id, kind, due_date, owner_id, region, done_time, done_date, \
     score, refusal_reason, comments, recorded_by";

/// One visit, locked for the transaction when `lock`.
pub async fn get_visit(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<pb::ReturnVisit>> {
    let sql = format!(
        "SELECT {VISIT_COLUMNS} FROM return_visits WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<VisitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(Into::into))
}

/// Records a visit's result.
pub async fn record_visit(
    tx: &mut PgConnection,
    id: Uuid,
    result: (i32, &str, &str),
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let (score, refusal, comments) = result;
    sqlx::query(
        "UPDATE return_visits SET done_time = $2, done_date = $3, score = $4, refusal_reason = $5, \
         comments = $6, recorded_by = $7 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(now.date())
    .bind(score)
    .bind(refusal)
    .bind(comments)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A customer's visits after `after`, in the order scheduled (the return visit first).
pub async fn list_visits(
    conn: &mut PgConnection,
    customer: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::ReturnVisit>> {
    let sql = format!(
        "SELECT {VISIT_COLUMNS} FROM return_visits WHERE customer_id = $1 \
         AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3"
    );
    let rows: Vec<VisitRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(customer)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// The visits due in `from ..= to` per region or owner: due, on time, late, open.
pub async fn visit_report(
    conn: &mut PgConnection,
    by_owner: bool,
    from: Date,
    to: Date,
) -> Result<Vec<pb::VisitReportRow>> {
    let key = if by_owner { "owner_id" } else { "region" };
    let sql = format!(
        "SELECT {key}, count(*), count(*) FILTER (WHERE done_date <= due_date), \
         count(*) FILTER (WHERE done_date > due_date), count(*) FILTER (WHERE done_time IS NULL) \
         FROM return_visits WHERE due_date BETWEEN $1 AND $2 GROUP BY {key} ORDER BY {key}"
    );
    let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(from)
        .bind(to)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(key, due, on_time, late, open)| pb::VisitReportRow {
            key,
            due,
            on_time,
            late,
            open,
            #[allow(clippy::cast_precision_loss)]
            on_time_fraction: if due > 0 {
                on_time as f64 / due as f64
            } else {
                0.0
            },
        })
        .collect())
}

/// Records a customer's usual engineer as the tickets service announced it; an older
/// announcement than the one recorded is ignored.
pub async fn set_usual_engineer(
    tx: &mut PgConnection,
    usual: &crm_proto::tickets::v1::UsualEngineer,
) -> Result<()> {
    let Ok(customer) = Uuid::parse_str(&usual.customer_id) else {
        return Ok(());
    };
    let at = usual
        .updated
        .as_ref()
        .and_then(|u| u.time.as_ref())
        .and_then(|t| convert::from_timestamp(t).ok());
    sqlx::query(
        "INSERT INTO usual_engineers (customer_id, engineer_id, update_time) VALUES ($1, $2, $3) \
         ON CONFLICT (customer_id) DO UPDATE SET engineer_id = $2, update_time = $3 \
         WHERE usual_engineers.update_time <= $3",
    )
    .bind(customer)
    .bind(&usual.engineer_id)
    .bind(at.unwrap_or(OffsetDateTime::UNIX_EPOCH))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A customer's usual engineer, empty if none is known.
pub async fn usual_engineer(conn: &mut PgConnection, customer: Uuid) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT engineer_id FROM usual_engineers WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or_default(),
    )
}

/// A customer's visits (communications of kind VISIT) since `since`, and the date of its last
/// service report (kind SERVICE_REPORT), if any.
pub async fn service_progress(
    conn: &mut PgConnection,
    customer: Uuid,
    since: OffsetDateTime,
) -> Result<(i64, Option<Date>)> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE kind = 'COMMUNICATION_KIND_VISIT' AND occur_time >= $2), \
         (max(occur_time) FILTER (WHERE kind = 'COMMUNICATION_KIND_SERVICE_REPORT'))::date \
         FROM communications WHERE customer_id = $1",
    )
    .bind(customer)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?)
}
