//! The SQL of the opportunities and their follow-up log.

use crm_kit::{Error, Result, convert, scope::Scope};
use crm_proto::{
    common::v1::Money,
    pipeline::v1::{self as pb, OpportunityType},
};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::rules::{stage_name, stage_of, stored};

const COLUMNS: &str = "id, name, type, customer_id, region, owner_id, amount_currency, \
    amount_units, amount_nanos, expected_close_date, probability, stage, lost_reason, lead_id, \
    version, create_time, created_by, update_time, updated_by";

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    name: String,
    r#type: String,
    customer_id: Uuid,
    region: String,
    owner_id: String,
    amount_currency: String,
    amount_units: i64,
    amount_nanos: i32,
    expected_close_date: Date,
    probability: i32,
    stage: String,
    lost_reason: String,
    lead_id: String,
    version: i64,
    create_time: OffsetDateTime,
    created_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
}

impl Row {
    fn into_proto(self) -> pb::Opportunity {
        pb::Opportunity {
            id: self.id.to_string(),
            name: self.name,
            r#type: OpportunityType::from_str_name(&format!("OPPORTUNITY_TYPE_{}", self.r#type))
                .map_or(0, |t| t as i32),
            customer_id: self.customer_id.to_string(),
            region: self.region,
            owner_id: self.owner_id,
            amount: Some(Money {
                currency_code: self.amount_currency,
                units: self.amount_units,
                nanos: self.amount_nanos,
            }),
            expected_close_date: Some(convert::date(self.expected_close_date)),
            probability: self.probability,
            stage: stage_of(&self.stage) as i32,
            lost_reason: self.lost_reason,
            lead_id: self.lead_id,
            version: self.version,
            created: Some(convert::stamp(self.create_time, &self.created_by)),
            updated: Some(convert::stamp(self.update_time, &self.updated_by)),
        }
    }
}

/// A stage's rung on the ladder the conversion report follows: 1 qualification … 5 won; 0 for
/// lost (an opportunity lost keeps how far it got).
pub fn rung(stage: pb::Stage) -> i32 {
    match stage {
        pb::Stage::Qualification => 1,
        pb::Stage::NeedsAnalysis => 2,
        pb::Stage::Proposal => 3,
        pb::Stage::Negotiation => 4,
        pb::Stage::Won => 5,
        pb::Stage::Lost | pb::Stage::Unspecified => 0,
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::Internal(anyhow::anyhow!("{e}"))
}

/// Writes an opportunity whole (insert or replace).
pub async fn save(tx: &mut PgConnection, o: &pb::Opportunity) -> Result<()> {
    let id = Uuid::parse_str(&o.id).map_err(internal)?;
    let customer = Uuid::parse_str(&o.customer_id).map_err(internal)?;
    let amount = o.amount.clone().unwrap_or_default();
    let close = o
        .expected_close_date
        .as_ref()
        .map(convert::from_date)
        .transpose()
        .map_err(internal)?
        .ok_or_else(|| internal("no close date"))?;
    let created = o.created.clone().unwrap_or_default();
    let updated = o.updated.clone().unwrap_or_default();
    let time = |t: Option<&prost_types::Timestamp>| {
        t.and_then(|t| convert::from_timestamp(t).ok())
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    };
    let kind = OpportunityType::try_from(o.r#type).unwrap_or_default();
    let stage = pb::Stage::try_from(o.stage).unwrap_or_default();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO opportunities ({COLUMNS}, furthest) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
         $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, greatest($20, 1)) \
         ON CONFLICT (id) DO UPDATE SET \
         name = $2, owner_id = $6, amount_currency = $7, amount_units = $8, amount_nanos = $9, \
         expected_close_date = $10, probability = $11, stage = $12, lost_reason = $13, \
         version = $15, update_time = $18, updated_by = $19, \
         furthest = greatest(opportunities.furthest, $20)"
    )))
    .bind(id)
    .bind(&o.name)
    .bind(stored(kind.as_str_name(), "OPPORTUNITY_TYPE_"))
    .bind(customer)
    .bind(&o.region)
    .bind(&o.owner_id)
    .bind(&amount.currency_code)
    .bind(amount.units)
    .bind(amount.nanos)
    .bind(close)
    .bind(o.probability)
    .bind(stage_name(stage))
    .bind(&o.lost_reason)
    .bind(&o.lead_id)
    .bind(o.version)
    .bind(time(created.time.as_ref()))
    .bind(&created.actor)
    .bind(time(updated.time.as_ref()))
    .bind(&updated.actor)
    .bind(rung(stage))
    .execute(&mut *tx)
    .await
    .map_err(Error::from)
    .map_err(|e| {
        e.or_when("opportunities_lead", || {
            Error::precondition("LEAD_CONVERTED", "the lead was converted already")
        })
    })?;
    Ok(())
}

/// One opportunity, locked for the transaction when `lock`.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<pb::Opportunity>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM opportunities WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Row::into_proto))
}

/// Opportunities in `scope` at `stages` (stored names), of `owner` if given, by expected close
/// date after the key `(date, id)`.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    stages: &[String],
    owner: Option<&str>,
    after: Option<(Date, Uuid)>,
    limit: i64,
) -> Result<Vec<pb::Opportunity>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM opportunities WHERE stage = ANY("
    ));
    b.push_bind(stages.to_vec()).push(")");
    if let Some(o) = owner {
        b.push(" AND owner_id = ").push_bind(o.to_string());
    }
    scope.push_sql(&mut b, crate::service::COLUMNS);
    if let Some((d, id)) = after {
        b.push(" AND (expected_close_date, id) > (")
            .push_bind(d)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY expected_close_date, id LIMIT ")
        .push_bind(limit);
    let rows: Vec<Row> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(Row::into_proto).collect())
}

/// Records a follow-up of `opportunity`.
pub async fn insert_follow_up(
    tx: &mut PgConnection,
    opportunity: Uuid,
    f: &pb::FollowUp,
    now: OffsetDateTime,
    actor: &str,
) -> Result<pb::FollowUp> {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO follow_ups (id, opportunity_id, next_step, not_in_hurry_reason, plan, \
         create_time, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(opportunity)
    .bind(&f.next_step)
    .bind(&f.not_in_hurry_reason)
    .bind(&f.plan)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(pb::FollowUp {
        id: id.to_string(),
        created: Some(convert::stamp(now, actor)),
        ..f.clone()
    })
}

/// `opportunity`'s follow-ups after `after`, oldest first.
pub async fn follow_ups(
    conn: &mut PgConnection,
    opportunity: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::FollowUp>> {
    let rows: Vec<(Uuid, String, String, String, OffsetDateTime, String)> = sqlx::query_as(
        "SELECT id, next_step, not_in_hurry_reason, plan, create_time, created_by FROM follow_ups \
         WHERE opportunity_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
    )
    .bind(opportunity)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, next_step, not_in_hurry_reason, plan, at, by)| pb::FollowUp {
                id: id.to_string(),
                next_step,
                not_in_hurry_reason,
                plan,
                created: Some(convert::stamp(at, &by)),
            },
        )
        .collect())
}
