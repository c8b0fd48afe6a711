//! The customer row, shared by every capability: its columns, how a row becomes the protobuf
//! `Customer`, reading and locking one, listing by a query the capability builds, the caller's
//! scope in SQL, and the transitions that change one column of it. Each capability's own SQL is
//! in its folder's `store.rs`.

use crm_kit::{Result, convert, scope::Scope};
use crm_proto::customers::v1::{self as pb, Stage};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// The kinds of customer history in the kit's history table.
pub(crate) const STAGE: &str = "stage";
pub(crate) const TIER: &str = "tier";
pub(crate) const OWNER: &str = "owner";

/// A customer as a history subject.
pub(crate) fn subject(customer: Uuid) -> String {
    format!("customers/{customer}")
}

const CUSTOMER_COLUMNS: &str = "id, display_name, industry, region, address, source_channel, tags, owner_id, \
     tech_partner_id, tier, stage, credit_rating, blacklisted, blacklist_reason, validity, invalid_reason, \
     next_contact_date, version, create_time, created_by, update_time, updated_by, investment_cny, \
     annual_service_fee_cny, reference_account, potential_flag, computed_tier, tier_override, \
     tier_override_reason, tier_override_by, tier_override_time, \
     COALESCE((SELECT json_agg(json_build_object('name', c.name, 'phone', c.phone, 'email', c.email, \
     'role', c.role) ORDER BY c.position) FROM contacts c WHERE c.customer_id = customers.id), '[]') AS contacts";

#[derive(sqlx::FromRow)]
struct CustomerRow {
    id: Uuid,
    display_name: String,
    industry: String,
    region: String,
    address: String,
    source_channel: String,
    tags: Vec<String>,
    owner_id: String,
    tech_partner_id: String,
    tier: String,
    stage: String,
    credit_rating: String,
    blacklisted: bool,
    blacklist_reason: String,
    validity: String,
    invalid_reason: String,
    next_contact_date: Option<Date>,
    version: i64,
    create_time: OffsetDateTime,
    created_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
    investment_cny: i64,
    annual_service_fee_cny: i64,
    reference_account: bool,
    potential_flag: bool,
    computed_tier: String,
    tier_override: String,
    tier_override_reason: String,
    tier_override_by: String,
    tier_override_time: Option<OffsetDateTime>,
    contacts: sqlx::types::Json<Vec<ContactJson>>,
}

#[derive(serde::Deserialize)]
struct ContactJson {
    name: String,
    phone: String,
    email: String,
    role: String,
}

pub(crate) fn enum_value<E: Into<i32>>(parsed: Option<E>) -> i32 {
    parsed.map_or(0, Into::into)
}

impl CustomerRow {
    fn into_proto(self) -> pb::Customer {
        let contacts = self
            .contacts
            .0
            .into_iter()
            .map(|c| pb::Contact {
                name: c.name,
                phone: c.phone,
                email: c.email,
                role: c.role,
            })
            .collect();
        pb::Customer {
            id: self.id.to_string(),
            display_name: self.display_name,
            industry: self.industry,
            region: self.region,
            address: self.address,
            source_channel: enum_value(pb::SourceChannel::from_str_name(&self.source_channel)),
            contacts,
            tags: self.tags,
            owner_id: self.owner_id,
            tech_partner_id: self.tech_partner_id,
            tier: enum_value(pb::Tier::from_str_name(&self.tier)),
            stage: enum_value(pb::Stage::from_str_name(&self.stage)),
            credit_rating: enum_value(pb::CreditRating::from_str_name(&self.credit_rating)),
            blacklisted: self.blacklisted,
            blacklist_reason: self.blacklist_reason,
            validity: enum_value(pb::Validity::from_str_name(&self.validity)),
            invalid_reason: enum_value(pb::InvalidReason::from_str_name(&self.invalid_reason)),
            next_contact_date: self.next_contact_date.map(convert::date),
            version: self.version,
            created: Some(convert::stamp(self.create_time, &self.created_by)),
            updated: Some(convert::stamp(self.update_time, &self.updated_by)),
            investment_cny: self.investment_cny,
            annual_service_fee_cny: self.annual_service_fee_cny,
            reference_account: self.reference_account,
            potential_flag: self.potential_flag,
            computed_tier: enum_value(pb::Tier::from_str_name(&self.computed_tier)),
            tier_override: (!self.tier_override.is_empty()).then(|| pb::TierOverride {
                tier: enum_value(pb::Tier::from_str_name(&self.tier_override)),
                reason: self.tier_override_reason,
                set: self
                    .tier_override_time
                    .map(|t| convert::stamp(t, &self.tier_override_by)),
            }),
        }
    }
}

/// A query on live customers, to which a capability appends its conditions (` AND …`) and
/// then its order and limit; run it with [`fetch_customers`].
pub(crate) fn customers_query() -> QueryBuilder<Postgres> {
    QueryBuilder::new(format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE delete_time IS NULL"
    ))
}

/// Runs a query built on [`customers_query`].
pub(crate) async fn fetch_customers(
    conn: &mut PgConnection,
    mut b: QueryBuilder<Postgres>,
) -> Result<Vec<pb::Customer>> {
    let rows: Vec<CustomerRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(CustomerRow::into_proto).collect())
}

/// Restricts a query on `customers` to the caller's scope.
pub(crate) fn push_scope(b: &mut QueryBuilder<Postgres>, scope: &Scope) {
    scope.push_sql(
        b,
        crm_kit::scope::Columns {
            owner: Some("owner_id"),
            region: Some("region"),
            organisation: None,
            partner: Some("tech_partner_id"),
        },
    );
}

/// A customer field that changes only through its own transition.
#[derive(Debug, Clone, Copy)]
pub enum Transition<'a> {
    /// The maturity stage (C-4).
    Stage(Stage),
    /// The tech-support partner (C-5).
    Partner(&'a str),
}

/// Applies a transition to the customer row and bumps its version.
pub async fn apply_transition(
    tx: &mut PgConnection,
    id: Uuid,
    change: Transition<'_>,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let (sql, value) = match change {
        Transition::Stage(stage) => (
            "UPDATE customers SET stage = $2, version = version + 1, update_time = $3, updated_by = $4 \
             WHERE id = $1",
            stage.as_str_name(),
        ),
        Transition::Partner(partner) => (
            "UPDATE customers SET tech_partner_id = $2, version = version + 1, update_time = $3, \
             updated_by = $4 WHERE id = $1",
            partner,
        ),
    };
    sqlx::query(sql)
        .bind(id)
        .bind(value)
        .bind(now)
        .bind(actor)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// One live (not deleted) customer; `lock` takes a row lock for the rest of the transaction.
pub async fn get_customer(
    conn: &mut PgConnection,
    id: Uuid,
    lock: bool,
) -> Result<Option<pb::Customer>> {
    let sql = format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1 AND delete_time IS NULL{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<CustomerRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    match row {
        None => Ok(None),
        Some(row) => Ok(Some(row.into_proto())),
    }
}
