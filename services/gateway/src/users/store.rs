//! The SQL of the users (G-2).

use crm_kit::{Result, convert};
use crm_proto::gateway::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::users::rules::NewUser;

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
