//! Storage of the gateway: users, API keys and sessions in its own schema.

use crm_kit::{Result, convert};
use crm_proto::gateway::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::{NewApiKey, NewUser};

/// A user as stored, with the password hash.
#[derive(sqlx::FromRow)]
pub struct UserRow {
    /// Id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Roles.
    pub roles: Vec<String>,
    /// Region.
    pub region: String,
    /// Partner organisation.
    pub partner_id: String,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// E-mail.
    pub email: String,
    /// Phone.
    pub phone: String,
    /// Language.
    pub language: String,
    /// Created at.
    pub create_time: OffsetDateTime,
    /// Created by.
    pub created_by: String,
}

impl UserRow {
    /// The user without its secret.
    pub fn to_proto(&self) -> pb::User {
        pb::User {
            id: self.id.to_string(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            roles: self.roles.clone(),
            region: self.region.clone(),
            partner_id: self.partner_id.clone(),
            created: Some(convert::stamp(self.create_time, &self.created_by)),
            email: self.email.clone(),
            phone: self.phone.clone(),
            language: self.language.clone(),
        }
    }
}

const USER_COLUMNS: &str = "id, username, display_name, password_hash, roles, region, partner_id, disabled, \
     email, phone, language, create_time, created_by";

/// Inserts a user; a taken user name violates `users_username_key`.
pub async fn insert_user(
    tx: &mut PgConnection,
    id: Uuid,
    u: &NewUser,
    password_hash: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<UserRow> {
    let sql = format!(
        "INSERT INTO users (id, username, display_name, password_hash, roles, region, partner_id, create_time, \
         created_by, update_time, email, phone, language) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10, $11, $12) \
         RETURNING {USER_COLUMNS}"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(password_hash)
        .bind(&u.roles)
        .bind(&u.region)
        .bind(&u.partner_id)
        .bind(now)
        .bind(actor)
        .bind(&u.email)
        .bind(&u.phone)
        .bind(&u.language)
        .fetch_one(&mut *tx)
        .await?)
}

/// A user by login name.
pub async fn user_by_name(conn: &mut PgConnection, username: &str) -> Result<Option<UserRow>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(username)
        .fetch_optional(&mut *conn)
        .await?)
}

/// A user by id, optionally locked.
pub async fn user_by_id(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<UserRow>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?)
}

/// Users by user name after `after`.
pub async fn list_users(
    conn: &mut PgConnection,
    after: Option<String>,
    limit: i64,
) -> Result<Vec<UserRow>> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE ($1::text IS NULL OR username > $1) ORDER BY username LIMIT $2"
    );
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(after)
        .bind(limit)
        .fetch_all(&mut *conn)
        .await?)
}

/// Replaces a user's roles and region.
pub async fn set_roles(
    tx: &mut PgConnection,
    id: Uuid,
    roles: &[String],
    region: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query("UPDATE users SET roles = $2, region = $3, update_time = $4 WHERE id = $1")
        .bind(id)
        .bind(roles)
        .bind(region)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

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
