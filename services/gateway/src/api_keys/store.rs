//! The SQL of the API keys (G-1).

use crm_kit::{Result, convert};
use crm_proto::gateway::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::api_keys::rules::NewApiKey;

/// An API key as stored.
#[derive(sqlx::FromRow)]
pub struct ApiKeyRow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// SHA-256 of the secret.
    pub secret_hash: Vec<u8>,
    /// Roles.
    pub roles: Vec<String>,
    /// Partner organisation.
    pub partner_id: String,
    /// Expiry.
    pub expire_time: OffsetDateTime,
    /// Revocation.
    pub revoke_time: Option<OffsetDateTime>,
    /// Created at.
    pub create_time: OffsetDateTime,
    /// Created by.
    pub created_by: String,
}

impl ApiKeyRow {
    /// The key without its secret.
    pub fn to_proto(&self) -> pb::ApiKey {
        pb::ApiKey {
            id: self.id.to_string(),
            name: self.name.clone(),
            roles: self.roles.clone(),
            partner_id: self.partner_id.clone(),
            expire_time: Some(convert::timestamp(self.expire_time)),
            revoke_time: self.revoke_time.map(convert::timestamp),
            created: Some(convert::stamp(self.create_time, &self.created_by)),
        }
    }
}

const KEY_COLUMNS: &str =
    "id, name, secret_hash, roles, partner_id, expire_time, revoke_time, create_time, created_by";

/// Inserts an API key.
pub async fn insert_api_key(
    tx: &mut PgConnection,
    id: Uuid,
    k: &NewApiKey,
    secret_hash: &[u8],
    expire: OffsetDateTime,
    now: OffsetDateTime,
    actor: &str,
) -> Result<ApiKeyRow> {
    let sql = format!(
        "INSERT INTO api_keys (id, name, secret_hash, roles, partner_id, expire_time, create_time, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KEY_COLUMNS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&k.name)
        .bind(secret_hash)
        .bind(&k.roles)
        .bind(&k.partner_id)
        .bind(expire)
        .bind(now)
        .bind(actor)
        .fetch_one(&mut *tx)
        .await?)
}

/// An API key by id, optionally locked.
pub async fn api_key(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<ApiKeyRow>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// API keys after `after`, oldest first.
pub async fn list_api_keys(
    conn: &mut PgConnection,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ApiKeyRow>> {
    let sql = format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?)
}

/// Marks an API key revoked.
pub async fn revoke_api_key(
    tx: &mut PgConnection,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<ApiKeyRow> {
    let sql = format!("UPDATE api_keys SET revoke_time = $2 WHERE id = $1 RETURNING {KEY_COLUMNS}");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?)
}
