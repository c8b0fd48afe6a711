//! The SQL of swaps and serials.

use crm_kit::{Result, convert, scope::Scope};
use crm_proto::repairs::v1 as pb;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use super::rules::NewSwap;
use crate::service::push_scope;

const COLUMNS: &str = "w.id, w.centre_id, w.partner_id, w.part_id, p.part_number, w.order_id, \
    w.ticket_id, w.removed_serial, w.fault, w.installed_serial, w.return_centre_id, w.swap_time, \
    w.swapped_by, w.receive_time, w.received_by";

/// A stored swap.
#[derive(sqlx::FromRow)]
pub struct SwapRow {
    id: Uuid,
    centre_id: Uuid,
    /// The partner organisation of the swapping centre.
    pub partner_id: String,
    part_id: Uuid,
    part_number: String,
    order_id: Option<Uuid>,
    ticket_id: String,
    removed_serial: String,
    fault: String,
    installed_serial: String,
    return_centre_id: Uuid,
    swap_time: OffsetDateTime,
    swapped_by: String,
    receive_time: Option<OffsetDateTime>,
    received_by: String,
}

impl SwapRow {
    /// Where the removed unit goes back to.
    pub fn return_centre(&self) -> Uuid {
        self.return_centre_id
    }

    /// The part and the removed serial.
    pub fn removed(&self) -> (Uuid, &str) {
        (self.part_id, &self.removed_serial)
    }

    /// Whether the removed unit was received back.
    pub fn received(&self) -> bool {
        self.receive_time.is_some()
    }

    /// The swap as the API shows it.
    pub fn to_proto(&self) -> pb::Swap {
        pb::Swap {
            id: self.id.to_string(),
            centre_id: self.centre_id.to_string(),
            part_id: self.part_id.to_string(),
            part_number: self.part_number.clone(),
            order_id: self.order_id.map(|o| o.to_string()).unwrap_or_default(),
            ticket_id: self.ticket_id.clone(),
            removed_serial: self.removed_serial.clone(),
            fault: self.fault.clone(),
            installed_serial: self.installed_serial.clone(),
            return_centre_id: self.return_centre_id.to_string(),
            in_transit: self.receive_time.is_none(),
            swapped: Some(convert::stamp(self.swap_time, &self.swapped_by)),
            received: self
                .receive_time
                .map(|t| convert::stamp(t, &self.received_by)),
        }
    }
}

/// Marks `serial` installed, if it was never known here; false when it was installed before
/// or removed as faulty (it cannot be installed).
pub async fn install(
    tx: &mut PgConnection,
    part: Uuid,
    serial: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO serials (part_id, serial, state, update_time) VALUES ($1, $2, 'INSTALLED', $3) \
         ON CONFLICT (part_id, serial) DO NOTHING",
    )
    .bind(part)
    .bind(serial)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks `serial` removed as faulty and in transit (a unit never seen here, such as the one the
/// product shipped with, is taken as installed until now); false when it was removed already.
pub async fn remove(
    tx: &mut PgConnection,
    part: Uuid,
    serial: &str,
    now: OffsetDateTime,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO serials (part_id, serial, state, update_time) \
         VALUES ($1, $2, 'FAULTY_IN_TRANSIT', $3) ON CONFLICT (part_id, serial) DO UPDATE \
         SET state = 'FAULTY_IN_TRANSIT', update_time = EXCLUDED.update_time \
         WHERE serials.state = 'INSTALLED'",
    )
    .bind(part)
    .bind(serial)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks a removed `serial` received at its return centre.
pub async fn serial_received(
    tx: &mut PgConnection,
    part: Uuid,
    serial: &str,
    now: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "UPDATE serials SET state = 'FAULTY_RECEIVED', update_time = $3 \
         WHERE part_id = $1 AND serial = $2",
    )
    .bind(part)
    .bind(serial)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Where `serial` is, by its stored state name; `None` when never swapped.
pub async fn serial_state(
    conn: &mut PgConnection,
    part: Uuid,
    serial: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT state FROM serials WHERE part_id = $1 AND serial = $2")
            .bind(part)
            .bind(serial)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Stores a swap at `centre` (of partner organisation `partner_id`).
pub async fn insert(
    tx: &mut PgConnection,
    id: Uuid,
    s: &NewSwap,
    partner_id: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<SwapRow> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH w AS (INSERT INTO swaps (id, centre_id, partner_id, part_id, order_id, ticket_id, \
         removed_serial, fault, installed_serial, return_centre_id, swap_time, swapped_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING *) \
         SELECT {COLUMNS} FROM w JOIN parts p ON p.id = w.part_id"
    )))
    .bind(id)
    .bind(s.centre)
    .bind(partner_id)
    .bind(s.part)
    .bind(s.order)
    .bind(&s.ticket_id)
    .bind(&s.removed_serial)
    .bind(&s.fault)
    .bind(&s.installed_serial)
    .bind(s.return_centre)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?)
}

/// One swap, locked for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<SwapRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM swaps w JOIN parts p ON p.id = w.part_id WHERE w.id = $1 \
         FOR UPDATE OF w"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Marks swap `id`'s removed unit received.
pub async fn received(
    tx: &mut PgConnection,
    id: Uuid,
    now: OffsetDateTime,
    actor: &str,
) -> Result<SwapRow> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "WITH w AS (UPDATE swaps SET receive_time = $2, received_by = $3 WHERE id = $1 \
         RETURNING *) SELECT {COLUMNS} FROM w JOIN parts p ON p.id = w.part_id"
    )))
    .bind(id)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?)
}

/// A query on swaps in `scope`, to which the caller appends its conditions.
fn scoped(scope: &Scope) -> QueryBuilder<Postgres> {
    let mut b = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM swaps w JOIN parts p ON p.id = w.part_id WHERE true"
    ));
    push_scope(&mut b, scope);
    b
}

/// Swaps in `scope` (of `centre` when given; only those in transit when `in_transit_only`),
/// oldest first after `after`.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    centre: Option<Uuid>,
    in_transit_only: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Swap>> {
    let mut b = scoped(scope);
    if let Some(centre) = centre {
        b.push(" AND w.centre_id = ").push_bind(centre);
    }
    if in_transit_only {
        b.push(" AND w.receive_time IS NULL");
    }
    if let Some(after) = after {
        b.push(" AND w.id > ").push_bind(after);
    }
    b.push(" ORDER BY w.id LIMIT ").push_bind(limit);
    let rows: Vec<SwapRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(SwapRow::to_proto).collect())
}

/// The swaps in `scope` that installed or removed `serial` of `part`, oldest first.
pub async fn of_serial(
    conn: &mut PgConnection,
    scope: &Scope,
    part: Uuid,
    serial: &str,
) -> Result<Vec<pb::Swap>> {
    let mut b = scoped(scope);
    b.push(" AND w.part_id = ")
        .push_bind(part)
        .push(" AND (w.installed_serial = ")
        .push_bind(serial.to_string())
        .push(" OR w.removed_serial = ")
        .push_bind(serial.to_string())
        .push(") ORDER BY w.id");
    let rows: Vec<SwapRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(SwapRow::to_proto).collect())
}
