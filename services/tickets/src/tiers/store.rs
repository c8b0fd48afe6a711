//! The SQL of the customers' tiers as the tickets service keeps them (T-2).

use crm_kit::Result;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// Records a customer's tier as the customers service announced it.
pub async fn set_tier(
    tx: &mut PgConnection,
    customer: Uuid,
    tier: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customer_tiers (customer_id, tier, update_time) VALUES ($1, $2, $3) \
         ON CONFLICT (customer_id) DO UPDATE SET tier = $2, update_time = $3",
    )
    .bind(customer)
    .bind(tier)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records the tiers of new customers, keeping any already recorded.
pub async fn add_tiers(
    tx: &mut PgConnection,
    customers: &[(Uuid, String)],
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO customer_tiers (customer_id, tier, update_time) \
         SELECT *, $3 FROM unnest($1::uuid[], $2::text[]) ON CONFLICT (customer_id) DO NOTHING",
    )
    .bind(customers.iter().map(|c| c.0).collect::<Vec<_>>())
    .bind(customers.iter().map(|c| c.1.as_str()).collect::<Vec<_>>())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A customer's tier, if announced.
pub async fn tier(conn: &mut PgConnection, customer: Uuid) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT tier FROM customer_tiers WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
