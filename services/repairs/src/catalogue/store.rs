//! The SQL of the parts catalogue.

use crm_kit::{Error, Result, convert};
use crm_proto::repairs::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

const COLUMNS: &str = "id, part_number, name, serialised, minimum_stock, create_time, created_by";

#[derive(sqlx::FromRow)]
struct PartRow {
    id: Uuid,
    part_number: String,
    name: String,
    serialised: bool,
    minimum_stock: i32,
    create_time: OffsetDateTime,
    created_by: String,
}

impl PartRow {
    fn into_proto(self) -> pb::Part {
        pb::Part {
            id: self.id.to_string(),
            part_number: self.part_number,
            name: self.name,
            serialised: self.serialised,
            minimum_stock: self.minimum_stock,
            created: Some(convert::stamp(self.create_time, &self.created_by)),
        }
    }
}

/// Stores a new part; a taken part number is `ALREADY_EXISTS`.
pub async fn insert_part(
    tx: &mut PgConnection,
    id: Uuid,
    p: &pb::Part,
    now: OffsetDateTime,
    actor: &str,
) -> Result<pb::Part> {
    let row: PartRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO parts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(&p.part_number)
    .bind(&p.name)
    .bind(p.serialised)
    .bind(p.minimum_stock)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| {
        e.or_when("parts_part_number_key", || Error::AlreadyExists {
            reason: "PART_NUMBER_TAKEN",
            message: format!("a part numbered {:?} exists already", p.part_number),
        })
    })?;
    Ok(row.into_proto())
}

/// One part of the catalogue.
pub async fn get_part(conn: &mut PgConnection, id: Uuid) -> Result<Option<pb::Part>> {
    let row: Option<PartRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM parts WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(PartRow::into_proto))
}

/// Parts by part number after `after`.
pub async fn list_parts(
    conn: &mut PgConnection,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<pb::Part>> {
    let rows: Vec<PartRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM parts WHERE ($1::text IS NULL OR part_number > $1) \
         ORDER BY part_number LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(PartRow::into_proto).collect())
}
