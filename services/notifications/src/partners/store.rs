//! The SQL of the partners' webhooks (N-4).

use crm_kit::Result;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::partners::rules::EndpointInput;

/// A partner organisation's webhook.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    /// URL.
    pub url: String,
    /// Language.
    pub language: String,
}

/// Stores a partner's webhook.
pub async fn set_endpoint(
    tx: &mut PgConnection,
    e: &EndpointInput,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO partner_endpoints (partner_id, url, secret, language, update_time, updated_by) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (partner_id) DO UPDATE SET url = $2, \
         secret = $3, language = $4, update_time = $5, updated_by = $6",
    )
    .bind(&e.partner_id)
    .bind(&e.url)
    .bind(&e.secret)
    .bind(e.language.as_str())
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A partner's webhook, if set.
pub async fn get_endpoint(
    conn: &mut PgConnection,
    partner_id: &str,
) -> Result<Option<EndpointRow>> {
    Ok(
        sqlx::query_as("SELECT url, language FROM partner_endpoints WHERE partner_id = $1")
            .bind(partner_id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
