//! The SQL of the leads.

use crm_kit::{Error, Result, convert, scope::Scope};
use crm_proto::pipeline::v1::{self as pb, LeadSource, LeadState};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rules::stored;

const COLUMNS: &str = "id, name, contact_name, contact_phone, contact_email, source, source_ref, \
    region, owner_id, interest, state, reason, customer_id, opportunity_id, version, \
    create_time, created_by, update_time, updated_by";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    contact_name: String,
    contact_phone: String,
    contact_email: String,
    source: String,
    source_ref: String,
    region: String,
    owner_id: String,
    interest: String,
    state: String,
    reason: String,
    customer_id: String,
    opportunity_id: String,
    version: i64,
    create_time: OffsetDateTime,
    created_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
}

impl Row {
    fn into_proto(self) -> pb::Lead {
        pb::Lead {
            id: self.id.to_string(),
            name: self.name,
            contact_name: self.contact_name,
            contact_phone: self.contact_phone,
            contact_email: self.contact_email,
            source: LeadSource::from_str_name(&format!("LEAD_SOURCE_{}", self.source))
                .map_or(0, |s| s as i32),
            source_ref: self.source_ref,
            region: self.region,
            owner_id: self.owner_id,
            interest: self.interest,
            state: LeadState::from_str_name(&format!("LEAD_STATE_{}", self.state))
                .map_or(0, |s| s as i32),
            reason: self.reason,
            customer_id: self.customer_id,
            opportunity_id: self.opportunity_id,
            version: self.version,
            created: Some(convert::stamp(self.create_time, &self.created_by)),
            updated: Some(convert::stamp(self.update_time, &self.updated_by)),
        }
    }
}

/// Writes a lead whole (insert or replace).
pub async fn save(tx: &mut PgConnection, l: &pb::Lead) -> Result<()> {
    let id = Uuid::parse_str(&l.id).map_err(|e| Error::Internal(e.into()))?;
    let created = l.created.clone().unwrap_or_default();
    let updated = l.updated.clone().unwrap_or_default();
    let time = |t: Option<&prost_types::Timestamp>| {
        t.and_then(|t| convert::from_timestamp(t).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let source = LeadSource::try_from(l.source).unwrap_or_default();
    let state = LeadState::try_from(l.state).unwrap_or_default();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO leads ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19) ON CONFLICT (id) DO UPDATE SET owner_id = $9, \
         state = $11, reason = $12, customer_id = $13, opportunity_id = $14, version = $15, \
         update_time = $18, updated_by = $19"
    )))
    .bind(id)
    .bind(&l.name)
    .bind(&l.contact_name)
    .bind(&l.contact_phone)
    .bind(&l.contact_email)
    .bind(stored(source.as_str_name(), "LEAD_SOURCE_"))
    .bind(&l.source_ref)
    .bind(&l.region)
    .bind(&l.owner_id)
    .bind(&l.interest)
    .bind(stored(state.as_str_name(), "LEAD_STATE_"))
    .bind(&l.reason)
    .bind(&l.customer_id)
    .bind(&l.opportunity_id)
    .bind(l.version)
    .bind(time(created.time.as_ref()))
    .bind(&created.actor)
    .bind(time(updated.time.as_ref()))
    .bind(&updated.actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One lead, locked for the transaction when `lock`.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<pb::Lead>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM leads WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Row::into_proto))
}

/// Leads in `scope` (at `states`, stored names, when any; of `owner` when given), newest first
/// after the key `(time, id)`.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    states: &[String],
    owner: Option<&str>,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<pb::Lead>> {
    let mut b: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("SELECT {COLUMNS} FROM leads WHERE true"));
    if !states.is_empty() {
        b.push(" AND state = ANY(")
            .push_bind(states.to_vec())
            .push(")");
    }
    if let Some(o) = owner {
        b.push(" AND owner_id = ").push_bind(o.to_string());
    }
    scope.push_sql(&mut b, crate::service::COLUMNS);
    if let Some((t, id)) = after {
        b.push(" AND (create_time, id) < (")
            .push_bind(t)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY create_time DESC, id DESC LIMIT ")
        .push_bind(limit);
    let rows: Vec<Row> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(Row::into_proto).collect())
}
