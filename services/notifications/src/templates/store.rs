//! The SQL of the templates (N-1).

use crm_kit::{Result, convert};
use crm_proto::notifications::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::{rules::Language, templates::rules::TemplateInput};

#[derive(sqlx::FromRow)]
struct TemplateRow {
    name: String,
    language: String,
    kind: String,
    subject: String,
    body: String,
    variables: Vec<String>,
    version: i64,
    update_time: OffsetDateTime,
    updated_by: String,
}

impl From<TemplateRow> for pb::Template {
    fn from(r: TemplateRow) -> Self {
        Self {
            name: r.name,
            language: r.language,
            kind: r.kind,
            subject: r.subject,
            body: r.body,
            variables: r.variables,
            version: r.version,
            updated: Some(convert::stamp(r.update_time, &r.updated_by)),
        }
    }
}

const TEMPLATE_COLUMNS: &str =
    "name, language, kind, subject, body, variables, version, update_time, updated_by";

/// The stored version of a template, locked for the transaction; 0 when there is none.
pub async fn lock_template_version(
    tx: &mut PgConnection,
    name: &str,
    language: Language,
) -> Result<i64> {
    let v: Option<i64> = sqlx::query_scalar(
        "SELECT version FROM templates WHERE name = $1 AND language = $2 FOR UPDATE",
    )
    .bind(name)
    .bind(language.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    Ok(v.unwrap_or(0))
}

/// Inserts or replaces a template with `version`.
pub async fn save_template(
    tx: &mut PgConnection,
    t: &TemplateInput,
    version: i64,
    now: OffsetDateTime,
    actor: &str,
) -> Result<pb::Template> {
    let row: TemplateRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO templates ({TEMPLATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (name, language) DO UPDATE SET kind = $3, subject = $4, body = $5, \
         variables = $6, version = $7, update_time = $8, updated_by = $9 RETURNING {TEMPLATE_COLUMNS}"
    )))
    .bind(&t.name)
    .bind(t.language.as_str())
    .bind(&t.kind)
    .bind(&t.subject)
    .bind(&t.body)
    .bind(&t.variables)
    .bind(version)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into())
}

/// One template.
pub async fn get_template(
    conn: &mut PgConnection,
    name: &str,
    language: &str,
) -> Result<Option<pb::Template>> {
    let row: Option<TemplateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE name = $1 AND language = $2"
    )))
    .bind(name)
    .bind(language)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Into::into))
}

/// The template `name` in `language`, or in the other language when that one is missing.
pub async fn find_template(
    conn: &mut PgConnection,
    name: &str,
    language: Language,
) -> Result<Option<pb::Template>> {
    match get_template(conn, name, language.as_str()).await? {
        Some(t) => Ok(Some(t)),
        None => get_template(conn, name, language.other().as_str()).await,
    }
}

/// Templates by (name, language) after `after`.
pub async fn list_templates(
    conn: &mut PgConnection,
    after: Option<(String, String)>,
    limit: i64,
) -> Result<Vec<pb::Template>> {
    let rows: Vec<TemplateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE ($1::text IS NULL OR (name, language) > ($1, $2)) \
         ORDER BY name, language LIMIT $3"
    )))
    .bind(after.as_ref().map(|a| a.0.clone()))
    .bind(after.as_ref().map(|a| a.1.clone()).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(Into::into).collect())
}
