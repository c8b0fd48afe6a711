//! The SQL of the missed deadlines.

use crm_kit::Result;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// Records that `complaint` missed `deadline` (stored name) due at `due`; false when it was
/// recorded already (a timer fired twice records one breach).
pub async fn record_breach(
    tx: &mut PgConnection,
    complaint: Uuid,
    deadline: &str,
    due: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool> {
    Ok(sqlx::query(
        "INSERT INTO complaint_breaches (complaint_id, deadline, due_time, breach_time) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(complaint)
    .bind(deadline)
    .bind(due)
    .bind(now)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}
