//! The SQL of the scheduled care (N-5, C-6, C-8): which customers a run takes, locked so other
//! replicas skip them, and what it marks done.

use crm_kit::Result;
use sqlx::PgConnection;
use time::Date;
use uuid::Uuid;

/// Live customers in `stages` whose care message is due by `today`, locked (other replicas
/// skip them), at most `limit`.
pub async fn lock_due_for_care(
    tx: &mut PgConnection,
    stages: &[String],
    today: Date,
    limit: i64,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM customers WHERE delete_time IS NULL AND stage = ANY($1) \
         AND (next_care_date IS NULL OR next_care_date <= $2) \
         ORDER BY next_care_date NULLS FIRST, id LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(stages)
    .bind(today)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Sets when the next care message of `ids` is due.
pub async fn set_next_care(tx: &mut PgConnection, ids: &[Uuid], next: Date) -> Result<()> {
    sqlx::query("UPDATE customers SET next_care_date = $2 WHERE id = ANY($1)")
        .bind(ids)
        .bind(next)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Live customers whose next contact date is before `today` and whose owner has not been
/// reminded of that date, locked, at most `limit`.
pub async fn lock_unreminded_overdue(
    tx: &mut PgConnection,
    today: Date,
    limit: i64,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM customers WHERE delete_time IS NULL AND next_contact_date < $1 \
         AND contact_reminded_for IS DISTINCT FROM next_contact_date \
         ORDER BY next_contact_date, id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Records that the owners of `ids` were reminded of their current next contact date.
pub async fn mark_contact_reminded(tx: &mut PgConnection, ids: &[Uuid]) -> Result<()> {
    sqlx::query("UPDATE customers SET contact_reminded_for = next_contact_date WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Up to `limit` signed, owned customers not checked against their service plan today, locked
/// (others' runs skip them), with when their owner was last reminded.
pub async fn lock_service_unchecked(
    tx: &mut PgConnection,
    today: Date,
    limit: i64,
) -> Result<Vec<(Uuid, Option<Date>)>> {
    Ok(sqlx::query_as(
        "SELECT id, service_reminded_on FROM customers WHERE delete_time IS NULL \
         AND stage = 'STAGE_SIGNED' AND owner_id <> '' \
         AND service_checked_on IS DISTINCT FROM $1 \
         ORDER BY service_checked_on NULLS FIRST, id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Marks customers checked today, and those in `reminded` reminded today.
pub async fn mark_service_checked(
    tx: &mut PgConnection,
    checked: &[Uuid],
    reminded: &[Uuid],
    today: Date,
) -> Result<()> {
    sqlx::query(
        "UPDATE customers SET service_checked_on = $3, \
         service_reminded_on = CASE WHEN id = ANY($2) THEN $3 ELSE service_reminded_on END \
         WHERE id = ANY($1)",
    )
    .bind(checked)
    .bind(reminded)
    .bind(today)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
