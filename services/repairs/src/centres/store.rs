//! The SQL of the repair centres.

use crm_kit::{Error, Result, convert, scope::Scope};
use crm_proto::repairs::v1 as pb;
use sqlx::{PgConnection, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rules::{kind_name, kind_of};
use crate::service::push_scope;

const COLUMNS: &str = "id, code, name, kind, region, address, opening_hours, partner_id, create_time, created_by, \
     supervisor_id";

#[derive(sqlx::FromRow)]
struct CentreRow {
    id: Uuid,
    code: String,
    name: String,
    kind: String,
    region: String,
    address: String,
    opening_hours: String,
    partner_id: String,
    create_time: OffsetDateTime,
    created_by: String,
    supervisor_id: String,
}

impl CentreRow {
    fn into_proto(self) -> pb::Centre {
        pb::Centre {
            id: self.id.to_string(),
            code: self.code,
            name: self.name,
            kind: kind_of(&self.kind) as i32,
            region: self.region,
            address: self.address,
            opening_hours: self.opening_hours,
            partner_id: self.partner_id,
            created: Some(convert::stamp(self.create_time, &self.created_by)),
            supervisor_id: self.supervisor_id,
        }
    }
}

/// Stores a new centre; a taken code is `ALREADY_EXISTS`.
pub async fn insert_centre(
    tx: &mut PgConnection,
    id: Uuid,
    c: &pb::Centre,
    kind: pb::CentreKind,
    now: OffsetDateTime,
    actor: &str,
) -> Result<pb::Centre> {
    let row: CentreRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO centres ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&c.code)
    .bind(&c.name)
    .bind(kind_name(kind))
    .bind(&c.region)
    .bind(&c.address)
    .bind(&c.opening_hours)
    .bind(&c.partner_id)
    .bind(now)
    .bind(actor)
    .bind(&c.supervisor_id)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| {
        e.or_when("centres_code_key", || Error::AlreadyExists {
            reason: "CENTRE_CODE_TAKEN",
            message: format!("a centre with code {:?} exists already", c.code),
        })
    })?;
    Ok(row.into_proto())
}

/// One centre, whoever may see it.
pub async fn get_centre(conn: &mut PgConnection, id: Uuid) -> Result<Option<pb::Centre>> {
    let row: Option<CentreRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM centres WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(CentreRow::into_proto))
}

/// Centres in `scope`, of `kind` and `region` when given, by code after `after`.
pub async fn list_centres(
    conn: &mut PgConnection,
    scope: &Scope,
    kind: Option<pb::CentreKind>,
    region: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<pb::Centre>> {
    let mut b = QueryBuilder::new(format!("SELECT {COLUMNS} FROM centres WHERE true"));
    push_scope(&mut b, scope);
    if let Some(kind) = kind {
        b.push(" AND kind = ").push_bind(kind_name(kind));
    }
    if !region.is_empty() {
        b.push(" AND region = ").push_bind(region.to_string());
    }
    if let Some(after) = after {
        b.push(" AND code > ").push_bind(after.to_string());
    }
    b.push(" ORDER BY code LIMIT ").push_bind(limit);
    let rows: Vec<CentreRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(CentreRow::into_proto).collect())
}
