//! The SQL every capability shares: the stored delivery states and the user directory (the
//! gateway's users, as the triggers keep them). Each capability's own SQL is in its folder.

use crm_kit::Result;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// The stored delivery states.
pub mod state {
    /// Waiting for an attempt.
    pub const PENDING: &str = "DELIVERY_STATE_PENDING";
    /// Being sent.
    pub const SENDING: &str = "DELIVERY_STATE_SENDING";
    /// Sent.
    pub const SENT: &str = "DELIVERY_STATE_SENT";
    /// Given up.
    pub const FAILED: &str = "DELIVERY_STATE_FAILED";
    /// Not sent on purpose.
    pub const SUPPRESSED: &str = "DELIVERY_STATE_SUPPRESSED";
}

/// A user as the gateway announced them.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: String,
    /// Name.
    pub display_name: String,
    /// E-mail.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// `zh`, `en` or empty.
    pub language: String,
}

/// Records a user as announced by the gateway.
pub async fn upsert_user(
    tx: &mut PgConnection,
    u: &crm_proto::gateway::v1::User,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO users (id, display_name, roles, region, partner_id, email, phone, language, update_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET \
         display_name = $2, roles = $3, region = $4, partner_id = $5, email = $6, phone = $7, \
         language = $8, update_time = $9",
    )
    .bind(&u.id)
    .bind(&u.display_name)
    .bind(&u.roles)
    .bind(&u.region)
    .bind(&u.partner_id)
    .bind(&u.email)
    .bind(&u.phone)
    .bind(&u.language)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One user of the directory.
pub async fn get_user(conn: &mut PgConnection, id: &str) -> Result<Option<UserRow>> {
    Ok(
        sqlx::query_as("SELECT id, display_name, email, phone, language FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// The region of user `id` (empty when they have none), if the directory knows them.
pub async fn get_user_region(conn: &mut PgConnection, id: &str) -> Result<Option<String>> {
    if id.is_empty() {
        return Ok(None);
    }
    Ok(sqlx::query_scalar("SELECT region FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// The enabled users with `role`, whatever their region.
pub async fn users_with_role_anywhere(conn: &mut PgConnection, role: &str) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM users WHERE roles @> ARRAY[$1]::text[] ORDER BY id")
            .bind(role)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The enabled users with `role`; those bound to a region only if it is `region`.
pub async fn users_with_role(
    conn: &mut PgConnection,
    role: &str,
    region: &str,
) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM users WHERE roles @> ARRAY[$1]::text[] \
         AND (region = '' OR region = $2) ORDER BY id",
    )
    .bind(role)
    .bind(region)
    .fetch_all(&mut *conn)
    .await?)
}
