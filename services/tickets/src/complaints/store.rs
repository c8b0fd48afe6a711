//! The SQL of the complaints' tickets.

use crm_kit::Result;
use sqlx::PgConnection;
use uuid::Uuid;

/// The ticket `complaint` opened or reopened, if any.
pub async fn linked_to(conn: &mut PgConnection, complaint: &str) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM tickets WHERE complaint_id = $1 AND complaint_id <> ''")
            .bind(complaint)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Records that `complaint` opened or reopened `ticket`.
pub async fn link(tx: &mut PgConnection, ticket: &str, complaint: &str) -> Result<()> {
    let id = Uuid::parse_str(ticket).map_err(|e| crm_kit::Error::Internal(e.into()))?;
    sqlx::query("UPDATE tickets SET complaint_id = $2 WHERE id = $1")
        .bind(id)
        .bind(complaint)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
