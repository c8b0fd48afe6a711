//! The SQL of the quotes.

use crm_kit::{Error, Result, convert};
use crm_proto::{common::v1::Money, pipeline::v1 as pb};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rules::stored;

/// A quote with the digests its approval is checked on.
#[derive(Debug, Clone)]
pub struct Record {
    /// The quote as the API shows it.
    pub quote: pb::Quote,
    /// The digest of its lines.
    pub digest: Vec<u8>,
    /// The digest of the lines an approval was given to, if any.
    pub approved_digest: Option<Vec<u8>>,
}

const COLUMNS: &str = "id, opportunity_id, lines, currency, total_units, total_nanos, \
    max_discount_bp, needs_approval, digest, approved_digest, state, revision, requested_by, \
    request_reason, decided_by, decision_reason, copied_from, version, create_time, created_by, \
    update_time, updated_by";

/// A line as stored: product, quantity, currency, units, nanos, discount.
type StoredLine = (String, i32, String, i64, i32, i32);

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    opportunity_id: Uuid,
    lines: sqlx::types::Json<Vec<StoredLine>>,
    currency: String,
    total_units: i64,
    total_nanos: i32,
    max_discount_bp: i32,
    needs_approval: bool,
    digest: Vec<u8>,
    approved_digest: Option<Vec<u8>>,
    state: String,
    revision: i32,
    requested_by: String,
    request_reason: String,
    decided_by: String,
    decision_reason: String,
    copied_from: String,
    version: i64,
    create_time: OffsetDateTime,
    created_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
}

impl From<Row> for Record {
    fn from(r: Row) -> Self {
        let lines = r
            .lines
            .0
            .into_iter()
            .map(
                |(product, quantity, currency_code, units, nanos, discount_bp)| pb::QuoteLine {
                    product,
                    quantity,
                    unit_price: Some(Money {
                        currency_code,
                        units,
                        nanos,
                    }),
                    discount_bp,
                },
            )
            .collect();
        Self {
            quote: pb::Quote {
                id: r.id.to_string(),
                opportunity_id: r.opportunity_id.to_string(),
                lines,
                total: Some(Money {
                    currency_code: r.currency,
                    units: r.total_units,
                    nanos: r.total_nanos,
                }),
                max_discount_bp: r.max_discount_bp,
                needs_approval: r.needs_approval,
                state: pb::QuoteState::from_str_name(&format!("QUOTE_STATE_{}", r.state))
                    .map_or(0, |s| s as i32),
                revision: r.revision,
                requested_by: r.requested_by,
                request_reason: r.request_reason,
                decided_by: r.decided_by,
                decision_reason: r.decision_reason,
                copied_from: r.copied_from,
                version: r.version,
                created: Some(convert::stamp(r.create_time, &r.created_by)),
                updated: Some(convert::stamp(r.update_time, &r.updated_by)),
            },
            digest: r.digest,
            approved_digest: r.approved_digest,
        }
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

/// Writes a quote whole (insert or replace).
pub async fn save(tx: &mut PgConnection, r: &Record) -> Result<()> {
    let q = &r.quote;
    let lines: Vec<StoredLine> = q
        .lines
        .iter()
        .map(|l| {
            let m = l.unit_price.clone().unwrap_or_default();
            (
                l.product.clone(),
                l.quantity,
                m.currency_code,
                m.units,
                m.nanos,
                l.discount_bp,
            )
        })
        .collect();
    let total = q.total.clone().unwrap_or_default();
    let created = q.created.clone().unwrap_or_default();
    let updated = q.updated.clone().unwrap_or_default();
    let time = |t: Option<&prost_types::Timestamp>| {
        t.and_then(|t| convert::from_timestamp(t).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let state = pb::QuoteState::try_from(q.state).unwrap_or_default();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO quotes ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, \
         $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22) ON CONFLICT (id) DO UPDATE SET \
         lines = $3, currency = $4, total_units = $5, total_nanos = $6, max_discount_bp = $7, \
         needs_approval = $8, digest = $9, approved_digest = $10, state = $11, revision = $12, \
         requested_by = $13, request_reason = $14, decided_by = $15, decision_reason = $16, \
         version = $18, update_time = $21, updated_by = $22"
    )))
    .bind(Uuid::parse_str(&q.id).map_err(internal)?)
    .bind(Uuid::parse_str(&q.opportunity_id).map_err(internal)?)
    .bind(sqlx::types::Json(lines))
    .bind(&total.currency_code)
    .bind(total.units)
    .bind(total.nanos)
    .bind(q.max_discount_bp)
    .bind(q.needs_approval)
    .bind(&r.digest)
    .bind(&r.approved_digest)
    .bind(stored(state.as_str_name(), "QUOTE_STATE_"))
    .bind(q.revision)
    .bind(&q.requested_by)
    .bind(&q.request_reason)
    .bind(&q.decided_by)
    .bind(&q.decision_reason)
    .bind(&q.copied_from)
    .bind(q.version)
    .bind(time(created.time.as_ref()))
    .bind(&created.actor)
    .bind(time(updated.time.as_ref()))
    .bind(&updated.actor)
    .execute(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| {
        e.or_when("quotes_decider_not_requester", || {
            Error::precondition(
                "REQUESTER_DECIDES",
                "a discount is decided by someone other than its requester",
            )
        })
        .or_when("quotes_approved_exactly", || {
            Error::precondition(
                "DISCOUNT_NOT_APPROVED",
                "the discount above the limit is not approved for these lines",
            )
        })
    })?;
    Ok(())
}

/// One quote, locked for the transaction when `lock`.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Record>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM quotes WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Record::from))
}

/// How many quotes of `opportunity` carry a discount above the limit that is not approved
/// for their present lines.
pub async fn awaiting_approval(conn: &mut PgConnection, opportunity: Uuid) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM quotes WHERE opportunity_id = $1 AND needs_approval \
         AND approved_digest IS DISTINCT FROM digest",
    )
    .bind(opportunity)
    .fetch_one(&mut *conn)
    .await?)
}
