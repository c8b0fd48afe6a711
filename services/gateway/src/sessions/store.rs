//! The SQL of the login sessions (G-1).

use crm_kit::Result;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// A new login session.
pub struct NewSession<'a> {
    /// Session id.
    pub id: Uuid,
    /// The user.
    pub user: Uuid,
    /// SHA-256 of the refresh secret.
    pub refresh_hash: &'a [u8],
    /// When the session ends at the latest.
    pub expire: OffsetDateTime,
    /// Now.
    pub now: OffsetDateTime,
    /// Where the login came from.
    pub origin: &'a crm_kit::context::Origin,
}

/// Opens a session.
pub async fn insert_session(tx: &mut PgConnection, s: &NewSession<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, refresh_hash, expire_time, create_time, peer, user_agent) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.id)
    .bind(s.user)
    .bind(s.refresh_hash)
    .bind(s.expire)
    .bind(s.now)
    .bind(&s.origin.peer)
    .bind(&s.origin.user_agent)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A live session's user id and refresh hash, locked.
pub async fn lock_live_session(
    tx: &mut PgConnection,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<(Uuid, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT user_id, refresh_hash FROM sessions WHERE id = $1 AND revoke_time IS NULL AND expire_time > $2 \
         FOR UPDATE",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Rotates a session's refresh secret.
pub async fn rotate_session(tx: &mut PgConnection, id: Uuid, refresh_hash: &[u8]) -> Result<()> {
    sqlx::query("UPDATE sessions SET refresh_hash = $2 WHERE id = $1")
        .bind(id)
        .bind(refresh_hash)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Revokes sessions: one by id, or every live one of a user. Returns the revoked ids.
pub async fn revoke_sessions(
    tx: &mut PgConnection,
    session: Option<Uuid>,
    user: Option<Uuid>,
    now: OffsetDateTime,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "UPDATE sessions SET revoke_time = $3 WHERE revoke_time IS NULL \
         AND ($1::uuid IS NULL OR id = $1) AND ($2::uuid IS NULL OR user_id = $2) RETURNING id",
    )
    .bind(session)
    .bind(user)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?)
}
