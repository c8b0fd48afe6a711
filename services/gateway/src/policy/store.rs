//! The SQL of the role policy overrides (G-3).

use crm_kit::Result;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// A role's policy changed through the admin API.
#[derive(sqlx::FromRow)]
pub struct PolicyRow {
    /// The role.
    pub role: String,
    /// Its method patterns.
    pub methods: Vec<String>,
    /// When it was changed.
    pub update_time: OffsetDateTime,
    /// Who changed it.
    pub updated_by: String,
}

/// Every policy override.
pub async fn policies(conn: &mut PgConnection) -> Result<Vec<PolicyRow>> {
    Ok(sqlx::query_as(
        "SELECT role, methods, update_time, updated_by FROM role_policies ORDER BY role",
    )
    .fetch_all(&mut *conn)
    .await?)
}

/// Sets a role's override.
pub async fn upsert_policy(
    tx: &mut PgConnection,
    role: &str,
    methods: &[String],
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO role_policies (role, methods, update_time, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (role) DO UPDATE SET methods = $2, update_time = $3, updated_by = $4",
    )
    .bind(role)
    .bind(methods)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
