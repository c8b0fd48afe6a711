//! The SQL of the contracts: the series counters, the contracts and their versions.

use crm_kit::{Error, Result, convert};
use crm_proto::{common::v1::Money, pipeline::v1 as pb};
use prost::Message;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// The next number of `series` in `year`, under the counter row's lock until the transaction
/// ends (concurrent signings queue here, so their numbers are consecutive).
pub async fn next_number(tx: &mut PgConnection, series: &str, year: i32) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "INSERT INTO contract_series (series, year, last) VALUES ($1, $2, 1) \
         ON CONFLICT (series, year) DO UPDATE SET last = contract_series.last + 1 RETURNING last",
    )
    .bind(series)
    .bind(year)
    .fetch_one(&mut *tx)
    .await?)
}

/// A stored instalment: due date and amount (currency, units, nanos).
type StoredInstalment = (Date, String, i64, i32);

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    number: String,
    opportunity_id: Uuid,
    customer_id: Uuid,
    owner_id: String,
    region: String,
    currency: String,
    amount_units: i64,
    amount_nanos: i32,
    fee_units: i64,
    fee_nanos: i32,
    term_months: i32,
    start_date: Date,
    instalments: sqlx::types::Json<Vec<StoredInstalment>>,
    version: i32,
    sign_time: OffsetDateTime,
    signed_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
}

const COLUMNS: &str = "id, number, opportunity_id, customer_id, owner_id, region, currency, \
    amount_units, amount_nanos, fee_units, fee_nanos, term_months, start_date, instalments, \
    version, sign_time, signed_by, update_time, updated_by";

impl Row {
    fn into_proto(self) -> pb::Contract {
        let money = |units, nanos| Money {
            currency_code: self.currency.clone(),
            units,
            nanos,
        };
        pb::Contract {
            id: self.id.to_string(),
            number: self.number.clone(),
            opportunity_id: self.opportunity_id.to_string(),
            customer_id: self.customer_id.to_string(),
            owner_id: self.owner_id.clone(),
            region: self.region.clone(),
            amount: Some(money(self.amount_units, self.amount_nanos)),
            annual_service_fee: Some(money(self.fee_units, self.fee_nanos)),
            term_months: self.term_months,
            start_date: Some(convert::date(self.start_date)),
            instalments: self
                .instalments
                .0
                .iter()
                .map(|(d, c, u, n)| pb::Instalment {
                    due_date: Some(convert::date(*d)),
                    amount: Some(Money {
                        currency_code: c.clone(),
                        units: *u,
                        nanos: *n,
                    }),
                })
                .collect(),
            version: self.version,
            paid: None,
            balance: None,
            signed: Some(convert::stamp(self.sign_time, &self.signed_by)),
            updated: Some(convert::stamp(self.update_time, &self.updated_by)),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

/// Writes a contract whole (insert or replace) and records its version's snapshot.
pub async fn save(
    tx: &mut PgConnection,
    c: &pb::Contract,
    reason: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let amount = c.amount.clone().unwrap_or_default();
    let fee = c.annual_service_fee.clone().unwrap_or_default();
    let date = |d: Option<&crm_proto::common::v1::Date>| {
        d.map(convert::from_date)
            .transpose()
            .map_err(internal)?
            .ok_or_else(|| internal("no date"))
    };
    let mut instalments: Vec<StoredInstalment> = Vec::with_capacity(c.instalments.len());
    for i in &c.instalments {
        let m = i.amount.clone().unwrap_or_default();
        instalments.push((
            date(i.due_date.as_ref())?,
            m.currency_code,
            m.units,
            m.nanos,
        ));
    }
    let signed = c.signed.clone().unwrap_or_default();
    let signed_at = signed
        .time
        .as_ref()
        .and_then(|t| convert::from_timestamp(t).ok())
        .unwrap_or(now);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO contracts ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19) ON CONFLICT (id) DO UPDATE SET \
         amount_units = $8, amount_nanos = $9, fee_units = $10, fee_nanos = $11, \
         term_months = $12, start_date = $13, instalments = $14, version = $15, \
         update_time = $18, updated_by = $19"
    )))
    .bind(Uuid::parse_str(&c.id).map_err(internal)?)
    .bind(&c.number)
    .bind(Uuid::parse_str(&c.opportunity_id).map_err(internal)?)
    .bind(Uuid::parse_str(&c.customer_id).map_err(internal)?)
    .bind(&c.owner_id)
    .bind(&c.region)
    .bind(&amount.currency_code)
    .bind(amount.units)
    .bind(amount.nanos)
    .bind(fee.units)
    .bind(fee.nanos)
    .bind(c.term_months)
    .bind(date(c.start_date.as_ref())?)
    .bind(sqlx::types::Json(instalments))
    .bind(c.version)
    .bind(signed_at)
    .bind(&signed.actor)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| {
        e.or_when("contracts_opportunity_id_key", || Error::AlreadyExists {
            reason: "CONTRACT_SIGNED",
            message: "the opportunity's contract is signed already".into(),
        })
    })?;
    sqlx::query(
        "INSERT INTO contract_versions (contract_id, version, snapshot, reason, change_time, actor) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::parse_str(&c.id).map_err(internal)?)
    .bind(c.version)
    .bind(c.encode_to_vec())
    .bind(reason)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One contract with what was paid on it, locked for the transaction when `lock` (payments
/// and amendments queue on it).
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<pb::Contract>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM contracts WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut c = row.into_proto();
    let paid: i128 = paid_nanos(conn, id).await?;
    let amount = c.amount.clone().unwrap_or_default();
    c.paid = Some(crm_kit::money::from_nanos(&amount.currency_code, paid));
    c.balance = Some(crm_kit::money::from_nanos(
        &amount.currency_code,
        crm_kit::money::to_nanos(&amount) - paid,
    ));
    Ok(Some(c))
}

/// The sum of `contract`'s non-voided payments, in nanos.
async fn paid_nanos(conn: &mut PgConnection, contract: Uuid) -> Result<i128> {
    let (units, nanos): (i64, i64) = sqlx::query_as(
        "SELECT coalesce(sum(amount_units), 0)::bigint, coalesce(sum(amount_nanos), 0)::bigint \
         FROM payments WHERE contract_id = $1 AND NOT voided",
    )
    .bind(contract)
    .fetch_one(&mut *conn)
    .await?;
    Ok(i128::from(units) * 1_000_000_000 + i128::from(nanos))
}

/// A contract's versions, oldest first: (the contract as it was, reason, when, who).
pub async fn versions(
    conn: &mut PgConnection,
    contract: Uuid,
) -> Result<Vec<(pb::Contract, String, OffsetDateTime, String)>> {
    let rows: Vec<(Vec<u8>, String, OffsetDateTime, String)> = sqlx::query_as(
        "SELECT snapshot, reason, change_time, actor FROM contract_versions \
         WHERE contract_id = $1 ORDER BY version",
    )
    .bind(contract)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter()
        .map(|(bytes, reason, at, actor)| {
            let c = pb::Contract::decode(bytes.as_slice()).map_err(internal)?;
            Ok((c, reason, at, actor))
        })
        .collect()
}
