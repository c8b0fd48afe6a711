//! The SQL of the payments.

use crm_kit::{Result, convert};
use crm_proto::{common::v1::Money, pipeline::v1 as pb};
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    contract_id: Uuid,
    amount_units: i64,
    amount_nanos: i32,
    paid_on: Date,
    reference: String,
    voided: bool,
    void_reason: String,
    record_time: OffsetDateTime,
    recorded_by: String,
}

const COLUMNS: &str = "id, contract_id, amount_units, amount_nanos, paid_on, reference, voided, \
    void_reason, record_time, recorded_by";

impl Row {
    fn into_proto(self, currency: &str) -> pb::Payment {
        pb::Payment {
            id: self.id.to_string(),
            contract_id: self.contract_id.to_string(),
            amount: Some(Money {
                currency_code: currency.to_string(),
                units: self.amount_units,
                nanos: self.amount_nanos,
            }),
            paid_on: Some(convert::date(self.paid_on)),
            reference: self.reference,
            voided: self.voided,
            void_reason: self.void_reason,
            recorded: Some(convert::stamp(self.record_time, &self.recorded_by)),
        }
    }
}

/// Records a payment.
pub async fn insert(
    tx: &mut PgConnection,
    (id, contract): (Uuid, Uuid),
    (amount, paid_on, reference): (&Money, Date, &str),
    now: OffsetDateTime,
    actor: &str,
) -> Result<pb::Payment> {
    let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO payments (id, contract_id, amount_units, amount_nanos, paid_on, reference, \
         record_time, recorded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    )))
    .bind(id)
    .bind(contract)
    .bind(amount.units)
    .bind(amount.nanos)
    .bind(paid_on)
    .bind(reference)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?;
    Ok(row.into_proto(&amount.currency_code))
}

/// The contract a payment is against.
pub async fn contract_of(conn: &mut PgConnection, payment: Uuid) -> Result<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("SELECT contract_id FROM payments WHERE id = $1")
            .bind(payment)
            .fetch_optional(&mut *conn)
            .await?,
    )
}

/// Voids a payment not voided yet; the payment, `None` if it was voided already.
pub async fn void(
    tx: &mut PgConnection,
    payment: Uuid,
    reason: &str,
    currency: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Option<pb::Payment>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET voided = true, void_reason = $2, void_time = $3, voided_by = $4 \
         WHERE id = $1 AND NOT voided RETURNING {COLUMNS}"
    )))
    .bind(payment)
    .bind(reason)
    .bind(now)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(|r| r.into_proto(currency)))
}

/// A contract's payments, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    contract: Uuid,
    currency: &str,
) -> Result<Vec<pb::Payment>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE contract_id = $1 ORDER BY record_time, id"
    )))
    .bind(contract)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_proto(currency)).collect())
}
