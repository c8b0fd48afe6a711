//! The SQL of transfers.

use crm_kit::{Result, convert};
use crm_proto::repairs::v1::{self as pb, TransferState};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use super::rules::NewTransfer;

const COLUMNS: &str = "id, from_centre_id, to_centre_id, part_id, quantity, state, note, \
                       send_time, sent_by, receive_time, received_by";

/// A stored transfer.
#[derive(sqlx::FromRow)]
pub struct TransferRow {
    id: Uuid,
    from_centre_id: Uuid,
    to_centre_id: Uuid,
    part_id: Uuid,
    quantity: i32,
    state: String,
    note: String,
    send_time: OffsetDateTime,
    sent_by: String,
    receive_time: Option<OffsetDateTime>,
    received_by: String,
}

impl TransferRow {
    /// (from, to, part, quantity).
    pub fn what(&self) -> (Uuid, Uuid, Uuid, i32) {
        (
            self.from_centre_id,
            self.to_centre_id,
            self.part_id,
            self.quantity,
        )
    }

    /// Whether it was booked in.
    pub fn received(&self) -> bool {
        self.receive_time.is_some()
    }

    /// The transfer as the API shows it.
    pub fn to_proto(&self) -> pb::Transfer {
        pb::Transfer {
            id: self.id.to_string(),
            from_centre_id: self.from_centre_id.to_string(),
            to_centre_id: self.to_centre_id.to_string(),
            part_id: self.part_id.to_string(),
            quantity: self.quantity,
            state: TransferState::from_str_name(&format!("TRANSFER_STATE_{}", self.state))
                .map_or(0, |s| s as i32),
            note: self.note.clone(),
            sent: Some(convert::stamp(self.send_time, &self.sent_by)),
            received: self
                .receive_time
                .map(|t| convert::stamp(t, &self.received_by)),
        }
    }
}

/// Stores a new transfer in transit.
pub async fn insert(
    tx: &mut PgConnection,
    id: Uuid,
    t: &NewTransfer,
    now: OffsetDateTime,
    actor: &str,
) -> Result<TransferRow> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO transfers (id, from_centre_id, to_centre_id, part_id, quantity, state, note, \
         send_time, sent_by) VALUES ($1, $2, $3, $4, $5, 'IN_TRANSIT', $6, $7, $8) \
         RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(t.from)
    .bind(t.to)
    .bind(t.part)
    .bind(t.quantity)
    .bind(&t.note)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?)
}

/// One transfer, locked for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<TransferRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM transfers WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// Marks transfer `id` booked in.
pub async fn received(
    tx: &mut PgConnection,
    id: Uuid,
    now: OffsetDateTime,
    actor: &str,
) -> Result<TransferRow> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE transfers SET state = 'RECEIVED', receive_time = $2, received_by = $3 \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?)
}

/// Transfers from or to `centre`, newest first before `before`.
pub async fn list(
    conn: &mut PgConnection,
    centre: Uuid,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Transfer>> {
    let rows: Vec<TransferRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM transfers WHERE (from_centre_id = $1 OR to_centre_id = $1) \
         AND ($2::uuid IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    )))
    .bind(centre)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(TransferRow::to_proto).collect())
}
