//! The SQL of stock: one row per centre and part, changed only by [`adjust`] — one conditional
//! UPDATE, so concurrent requests queue on the row and `reserved ≤ on_hand` (also a table
//! constraint) holds whatever arrives at once.

use crm_kit::{Result, convert, scope::Scope};
use crm_proto::repairs::v1 as pb;
use sqlx::{PgConnection, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::service::push_scope;

/// The columns of a stock row with its part's number (`s` the stock, `p` the part).
const COLUMNS: &str = "s.centre_id, s.part_id, p.part_number, s.on_hand, s.reserved, \
                       s.in_transit, s.minimum, s.low, s.update_time";

#[derive(sqlx::FromRow)]
struct StockRow {
    centre_id: Uuid,
    part_id: Uuid,
    part_number: String,
    on_hand: i32,
    reserved: i32,
    in_transit: i32,
    minimum: i32,
    low: bool,
    update_time: OffsetDateTime,
}

impl StockRow {
    fn into_proto(self) -> pb::Stock {
        pb::Stock {
            centre_id: self.centre_id.to_string(),
            part_id: self.part_id.to_string(),
            part_number: self.part_number,
            on_hand: self.on_hand,
            reserved: self.reserved,
            available: self.on_hand - self.reserved,
            in_transit: self.in_transit,
            minimum: self.minimum,
            low: self.low,
            update_time: Some(convert::timestamp(self.update_time)),
        }
    }
}

/// A change of one stock row: units added to (or taken from) on hand, reserved and in transit.
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta {
    /// Added to on hand (negative: taken off the shelf).
    pub on_hand: i32,
    /// Added to reserved (negative: released or issued).
    pub reserved: i32,
    /// Added to in transit (negative: arrived).
    pub in_transit: i32,
}

/// Applies `delta` to the stock of `part` at `centre` if it leaves `0 ≤ reserved ≤ on_hand`
/// and in transit not negative;
/// the row after, or `None` when there is no such row or the change would break that (not
/// enough available to reserve, say). Concurrent changes of one row wait for each other, and
/// each re-checks the condition on the row it finally updates.
pub async fn adjust(
    tx: &mut PgConnection,
    centre: Uuid,
    part: Uuid,
    delta: Delta,
    now: OffsetDateTime,
) -> Result<Option<pb::Stock>> {
    let row: Option<StockRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH s AS (UPDATE stock SET on_hand = on_hand + $3, reserved = reserved + $4, \
         in_transit = in_transit + $6, update_time = $5 WHERE centre_id = $1 AND part_id = $2 \
         AND reserved + $4 >= 0 AND on_hand + $3 >= reserved + $4 AND in_transit + $6 >= 0 \
         RETURNING *) SELECT {COLUMNS} FROM s JOIN parts p ON p.id = s.part_id"
    )))
    .bind(centre)
    .bind(part)
    .bind(delta.on_hand)
    .bind(delta.reserved)
    .bind(now)
    .bind(delta.in_transit)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(StockRow::into_proto))
}

/// Adds `on_hand` and `in_transit` units (not negative) to the stock of `part` at `centre`,
/// making the row (with the part's minimum) when the centre has none yet; the row after.
pub async fn add(
    tx: &mut PgConnection,
    centre: &pb::Centre,
    part: &pb::Part,
    on_hand: i32,
    in_transit: i32,
    now: OffsetDateTime,
) -> Result<pb::Stock> {
    let row: StockRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH s AS (INSERT INTO stock (centre_id, part_id, partner_id, on_hand, reserved, \
         in_transit, minimum, update_time) VALUES ($1, $2, $3, $4, 0, $7, $5, $6) \
         ON CONFLICT (centre_id, part_id) DO UPDATE SET on_hand = stock.on_hand + EXCLUDED.on_hand, \
         in_transit = stock.in_transit + EXCLUDED.in_transit, update_time = EXCLUDED.update_time \
         RETURNING *) SELECT {COLUMNS} FROM s JOIN parts p ON p.id = s.part_id"
    )))
    .bind(Uuid::parse_str(&centre.id).unwrap_or_default())
    .bind(Uuid::parse_str(&part.id).unwrap_or_default())
    .bind(&centre.partner_id)
    .bind(on_hand)
    .bind(part.minimum_stock)
    .bind(now)
    .bind(in_transit)
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into_proto())
}

/// Records whether the centre was told its stock of the part is low.
pub async fn set_low(tx: &mut PgConnection, centre: Uuid, part: Uuid, low: bool) -> Result<()> {
    sqlx::query("UPDATE stock SET low = $3 WHERE centre_id = $1 AND part_id = $2")
        .bind(centre)
        .bind(part)
        .bind(low)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// The stock of `part` at `centre`, in `scope`.
pub async fn get_stock(
    conn: &mut PgConnection,
    scope: &Scope,
    centre: Uuid,
    part: Uuid,
) -> Result<Option<pb::Stock>> {
    let mut b = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM stock s JOIN parts p ON p.id = s.part_id WHERE s.centre_id = "
    ));
    b.push_bind(centre)
        .push(" AND s.part_id = ")
        .push_bind(part);
    push_scope(&mut b, scope);
    let row: Option<StockRow> = b.build_query_as().fetch_optional(&mut *conn).await?;
    Ok(row.map(StockRow::into_proto))
}

/// Stock rows in `scope` (of `centre` when given, only low ones when `low_only`), by centre and
/// part number after `after`.
pub async fn list_stock(
    conn: &mut PgConnection,
    scope: &Scope,
    centre: Option<Uuid>,
    low_only: bool,
    after: Option<&(Uuid, String)>,
    limit: i64,
) -> Result<Vec<pb::Stock>> {
    let mut b = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM stock s JOIN parts p ON p.id = s.part_id WHERE true"
    ));
    push_scope(&mut b, scope);
    if let Some(centre) = centre {
        b.push(" AND s.centre_id = ").push_bind(centre);
    }
    if low_only {
        b.push(" AND s.on_hand - s.reserved < s.minimum");
    }
    if let Some((centre, number)) = after {
        b.push(" AND (s.centre_id, p.part_number) > (")
            .push_bind(*centre)
            .push(", ")
            .push_bind(number.clone())
            .push(")");
    }
    b.push(" ORDER BY s.centre_id, p.part_number LIMIT ")
        .push_bind(limit);
    let rows: Vec<StockRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(StockRow::into_proto).collect())
}

#[derive(sqlx::FromRow)]
struct TotalsRow {
    centre_id: Uuid,
    parts: i64,
    on_hand: i64,
    reserved: i64,
    in_transit: i64,
    low_parts: i64,
}

/// Totals per centre over the stock rows in `scope`, by centre id.
pub async fn summarise(conn: &mut PgConnection, scope: &Scope) -> Result<Vec<pb::CentreStock>> {
    let mut b = QueryBuilder::new(
        "SELECT centre_id, count(*) AS parts, sum(on_hand)::bigint AS on_hand, \
         sum(reserved)::bigint AS reserved, sum(in_transit)::bigint AS in_transit, \
         count(*) FILTER (WHERE on_hand - reserved < minimum) AS low_parts FROM stock WHERE true",
    );
    push_scope(&mut b, scope);
    b.push(" GROUP BY centre_id ORDER BY centre_id");
    let rows: Vec<TotalsRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows
        .into_iter()
        .map(|r| pb::CentreStock {
            centre_id: r.centre_id.to_string(),
            parts: r.parts as i32,
            on_hand: r.on_hand,
            reserved: r.reserved,
            in_transit: r.in_transit,
            low_parts: r.low_parts as i32,
        })
        .collect())
}
