//! Storage of the customers service: plain SQL over its own schema. Functions take a
//! connection so the service layer decides what commits together.

use crm_kit::{Result, convert, history};
use crm_proto::customers::v1::{self as pb, Stage};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::domain::{CustomerFields, CustomerQuery, Scope};

/// The kinds of customer history in the kit's history table.
pub(crate) const STAGE: &str = "stage";
pub(crate) const TIER: &str = "tier";
pub(crate) const OWNER: &str = "owner";
/// How a tier change by a manager's override is marked.
const OVERRIDE: &str = "override";

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

/// The statement parameters of a customer's client-writable fields, the same in the insert and
/// the update: $1 id, $2 … $15 the fields, $16 now, $17 actor, $18 … $21 the tier inputs, $22
/// the computed tier, $23 the name duplicates are found by.
fn bind_fields<'q>(
    query: sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>,
    id: Uuid,
    f: &'q CustomerFields,
    now: OffsetDateTime,
    actor: &'q str,
) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(id)
        .bind(&f.display_name)
        .bind(&f.name_key)
        .bind(&f.industry)
        .bind(&f.region)
        .bind(&f.address)
        .bind(f.source_channel.as_str_name())
        .bind(&f.tags)
        .bind(&f.owner_id)
        .bind(f.tier.as_str_name())
        .bind(f.credit_rating.as_str_name())
        .bind(f.blacklisted)
        .bind(&f.blacklist_reason)
        .bind(f.validity.as_str_name())
        .bind(f.invalid_reason.as_str_name())
        .bind(now)
        .bind(actor)
        .bind(f.tier_inputs.investment_cny)
        .bind(f.tier_inputs.annual_service_fee_cny)
        .bind(f.tier_inputs.reference_account)
        .bind(f.tier_inputs.potential_flag)
        .bind(f.computed_tier.as_str_name())
        .bind(&f.dedup_name)
}

/// Inserts a new customer in `stage` with version 1.
pub async fn insert_customer(
    tx: &mut PgConnection,
    id: Uuid,
    f: &CustomerFields,
    stage: Stage,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let insert = sqlx::query(
        "INSERT INTO customers (id, display_name, name_key, industry, region, address, source_channel, tags, \
         owner_id, tier, credit_rating, blacklisted, blacklist_reason, validity, invalid_reason, \
         create_time, created_by, update_time, updated_by, investment_cny, annual_service_fee_cny, \
         reference_account, potential_flag, computed_tier, dedup_name, stage, tech_partner_id, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $16, $17, \
         $18, $19, $20, $21, $22, $23, $24, '', 1)",
    );
    bind_fields(insert, id, f, now, actor)
        .bind(stage.as_str_name())
        .execute(&mut *tx)
        .await?;
    insert_contacts(tx, id, f).await
}

async fn insert_contacts(tx: &mut PgConnection, id: Uuid, f: &CustomerFields) -> Result<()> {
    if f.contacts.is_empty() {
        return Ok(());
    }
    let mut q = QueryBuilder::<Postgres>::new(
        "INSERT INTO contacts (customer_id, position, name, phone, phone_key, email, email_key, role) ",
    );
    q.push_values(f.contacts.iter().enumerate(), |mut b, (i, c)| {
        b.push_bind(id)
            .push_bind(i as i32)
            .push_bind(&c.name)
            .push_bind(&c.phone)
            .push_bind(&c.phone_key)
            .push_bind(&c.email)
            .push_bind(crm_kit::email::key(&c.email))
            .push_bind(&c.role);
    });
    q.build().execute(&mut *tx).await?;
    Ok(())
}

/// Overwrites the client-writable fields and bumps the version.
pub async fn update_customer(
    tx: &mut PgConnection,
    id: Uuid,
    f: &CustomerFields,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let update = sqlx::query(
        "UPDATE customers SET display_name = $2, name_key = $3, industry = $4, region = $5, address = $6, \
         source_channel = $7, tags = $8, owner_id = $9, tier = $10, credit_rating = $11, blacklisted = $12, \
         blacklist_reason = $13, validity = $14, invalid_reason = $15, version = version + 1, \
         update_time = $16, updated_by = $17, investment_cny = $18, annual_service_fee_cny = $19, \
         reference_account = $20, potential_flag = $21, computed_tier = $22, dedup_name = $23 \
         WHERE id = $1",
    );
    bind_fields(update, id, f, now, actor)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM contacts WHERE customer_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    insert_contacts(tx, id, f).await
}

/// Marks a customer deleted and bumps its version.
pub async fn soft_delete(
    tx: &mut PgConnection,
    id: Uuid,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE customers SET delete_time = $2, deleted_by = $3, version = version + 1, update_time = $2, \
         updated_by = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
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

/// Live customers matching `q`, in id (creation) order after `after`, at most `limit`.
pub async fn list_customers(
    conn: &mut PgConnection,
    q: &CustomerQuery,
    scope: &Scope,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Customer>> {
    let mut b = QueryBuilder::<Postgres>::new(format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE delete_time IS NULL"
    ));
    if let Some(name) = &q.name_contains {
        b.push(" AND name_key LIKE ")
            .push_bind(format!("%{}%", escape_like(name)))
            .push(" ESCAPE '\\'");
    }
    if let Some(phone) = &q.phone_key {
        b.push(" AND id IN (SELECT customer_id FROM contacts WHERE phone_key = ")
            .push_bind(phone.clone())
            .push(")");
    }
    if let Some(region) = &q.region {
        b.push(" AND region = ").push_bind(region.clone());
    }
    if q.unassigned {
        b.push(" AND owner_id = ''");
    }
    if let Some(owner) = &q.owner_id {
        b.push(" AND owner_id = ").push_bind(owner.clone());
    }
    if let Some(tier) = q.tier {
        b.push(" AND tier = ").push_bind(tier.as_str_name());
    }
    if let Some(stage) = q.stage {
        b.push(" AND stage = ").push_bind(stage.as_str_name());
    }
    if let Some(tag) = &q.tag {
        b.push(" AND tags @> ARRAY[")
            .push_bind(tag.clone())
            .push("]::text[]");
    }
    push_scope(&mut b, scope);
    if let Some(after) = after {
        b.push(" AND id > ").push_bind(after);
    }
    b.push(" ORDER BY id LIMIT ").push_bind(limit);
    let rows: Vec<CustomerRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(CustomerRow::into_proto).collect())
}

/// Restricts a query on `customers` to the caller's scope.
pub(crate) fn push_scope(b: &mut QueryBuilder<Postgres>, scope: &Scope) {
    if scope.all {
        return;
    }
    b.push(" AND (false");
    if let Some(owner) = &scope.owner {
        b.push(" OR owner_id = ").push_bind(owner.clone());
    }
    if let Some(region) = &scope.region {
        b.push(" OR region = ").push_bind(region.clone());
    }
    if let Some(partner) = &scope.tech_partner {
        b.push(" OR tech_partner_id = ").push_bind(partner.clone());
    }
    b.push(")");
}

/// Live customers of `owner` whose next contact date is before `today`, most overdue first.
pub async fn list_overdue(
    conn: &mut PgConnection,
    owner: &str,
    scope: &Scope,
    today: Date,
    after: Option<(Date, Uuid)>,
    limit: i64,
) -> Result<Vec<pb::Customer>> {
    let mut b = QueryBuilder::<Postgres>::new(format!(
        "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE delete_time IS NULL AND owner_id = "
    ));
    b.push_bind(owner.to_string())
        .push(" AND next_contact_date IS NOT NULL AND next_contact_date < ")
        .push_bind(today);
    if let Some((date, id)) = after {
        b.push(" AND (next_contact_date, id) > (")
            .push_bind(date)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    push_scope(&mut b, scope);
    b.push(" ORDER BY next_contact_date, id LIMIT ")
        .push_bind(limit);
    let rows: Vec<CustomerRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    Ok(rows.into_iter().map(CustomerRow::into_proto).collect())
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Records a stage change.
pub async fn insert_stage_change(
    tx: &mut PgConnection,
    c: &pb::StageChange,
    id: Uuid,
    customer: Uuid,
    now: OffsetDateTime,
) -> Result<()> {
    let actor = c
        .changed
        .as_ref()
        .map(|s| s.actor.as_str())
        .unwrap_or_default();
    let subject = subject(customer);
    let change = history::Change {
        subject: &subject,
        kind: STAGE,
        from: c.from_stage().as_str_name(),
        to: c.to_stage().as_str_name(),
        reason: &c.reason,
        via: "",
        actor,
        at: now,
    };
    history::record_with_id(tx, id, &change).await
}

/// Stage changes of a customer after `after`, oldest first.
pub async fn list_stage_changes(
    conn: &mut PgConnection,
    customer: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::StageChange>> {
    let entries = history::page(conn, &subject(customer), STAGE, after, limit).await?;
    Ok(entries
        .into_iter()
        .map(|e| pb::StageChange {
            id: e.id.to_string(),
            customer_id: customer.to_string(),
            from_stage: enum_value(Stage::from_str_name(&e.from_value)),
            to_stage: enum_value(Stage::from_str_name(&e.to_value)),
            reason: e.reason,
            changed: Some(convert::stamp(e.change_time, &e.actor)),
        })
        .collect())
}

/// Live customers in `stages` whose care message is due by `today`, locked (other replicas
/// skip them), at most `limit`.
pub async fn lock_due_for_care(
    tx: &mut PgConnection,
    stages: &[String],
    today: Date,
    limit: i64,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM customers WHERE delete_time IS NULL AND stage = ANY($1) \
         AND (next_care_date IS NULL OR next_care_date <= $2) \
         ORDER BY next_care_date NULLS FIRST, id LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(stages)
    .bind(today)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Sets when the next care message of `ids` is due.
pub async fn set_next_care(tx: &mut PgConnection, ids: &[Uuid], next: Date) -> Result<()> {
    sqlx::query("UPDATE customers SET next_care_date = $2 WHERE id = ANY($1)")
        .bind(ids)
        .bind(next)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Live customers whose next contact date is before `today` and whose owner has not been
/// reminded of that date, locked, at most `limit`.
pub async fn lock_unreminded_overdue(
    tx: &mut PgConnection,
    today: Date,
    limit: i64,
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM customers WHERE delete_time IS NULL AND next_contact_date < $1 \
         AND contact_reminded_for IS DISTINCT FROM next_contact_date \
         ORDER BY next_contact_date, id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Records that the owners of `ids` were reminded of their current next contact date.
pub async fn mark_contact_reminded(tx: &mut PgConnection, ids: &[Uuid]) -> Result<()> {
    sqlx::query("UPDATE customers SET contact_reminded_for = next_contact_date WHERE id = ANY($1)")
        .bind(ids)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Sets (`Some`) or clears a customer's tier override, with the tier now in force, and bumps
/// its version.
pub async fn set_tier_override(
    tx: &mut PgConnection,
    id: Uuid,
    override_tier: Option<(pb::Tier, &str)>,
    in_force: pb::Tier,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let (tier, reason) = override_tier.map_or(("", ""), |(t, r)| (t.as_str_name(), r));
    sqlx::query(
        "UPDATE customers SET tier_override = $2, tier_override_reason = $3, tier_override_by = $4, \
         tier_override_time = CASE WHEN $2 = '' THEN NULL ELSE $5 END, tier = $6, \
         version = version + 1, update_time = $5, updated_by = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(tier)
    .bind(reason)
    .bind(actor)
    .bind(now)
    .bind(in_force.as_str_name())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Records a change of a customer's tier in force.
pub async fn insert_tier_change(
    tx: &mut PgConnection,
    customer: Uuid,
    change: &pb::TierChange,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let subject = subject(customer);
    let entry = history::Change {
        subject: &subject,
        kind: TIER,
        from: change.from_tier().as_str_name(),
        to: change.to_tier().as_str_name(),
        reason: &change.reason,
        via: if change.r#override { OVERRIDE } else { "" },
        actor,
        at: now,
    };
    history::record(tx, &entry).await?;
    Ok(())
}

/// A customer's tier changes after `after`, oldest first.
pub async fn tier_changes(
    conn: &mut PgConnection,
    customer: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::TierChange>> {
    let entries = history::page(conn, &subject(customer), TIER, after, limit).await?;
    Ok(entries
        .into_iter()
        .map(|e| pb::TierChange {
            id: e.id.to_string(),
            customer_id: customer.to_string(),
            from_tier: enum_value(pb::Tier::from_str_name(&e.from_value)),
            to_tier: enum_value(pb::Tier::from_str_name(&e.to_value)),
            reason: e.reason,
            r#override: e.via == OVERRIDE,
            changed: Some(convert::stamp(e.change_time, &e.actor)),
        })
        .collect())
}

/// Records a customer's usual engineer as the tickets service announced it; an older
/// announcement than the one recorded is ignored.
pub async fn set_usual_engineer(
    tx: &mut PgConnection,
    usual: &crm_proto::tickets::v1::UsualEngineer,
) -> Result<()> {
    let Ok(customer) = Uuid::parse_str(&usual.customer_id) else {
        return Ok(());
    };
    let at = usual
        .updated
        .as_ref()
        .and_then(|u| u.time.as_ref())
        .and_then(|t| convert::from_timestamp(t).ok());
    sqlx::query(
        "INSERT INTO usual_engineers (customer_id, engineer_id, update_time) VALUES ($1, $2, $3) \
         ON CONFLICT (customer_id) DO UPDATE SET engineer_id = $2, update_time = $3 \
         WHERE usual_engineers.update_time <= $3",
    )
    .bind(customer)
    .bind(&usual.engineer_id)
    .bind(at.unwrap_or(OffsetDateTime::UNIX_EPOCH))
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A customer's usual engineer, empty if none is known.
pub async fn usual_engineer(conn: &mut PgConnection, customer: Uuid) -> Result<String> {
    Ok(
        sqlx::query_scalar("SELECT engineer_id FROM usual_engineers WHERE customer_id = $1")
            .bind(customer)
            .fetch_optional(&mut *conn)
            .await?
            .unwrap_or_default(),
    )
}

/// A customer's visits (communications of kind VISIT) since `since`, and the date of its last
/// service report (kind SERVICE_REPORT), if any.
pub async fn service_progress(
    conn: &mut PgConnection,
    customer: Uuid,
    since: OffsetDateTime,
) -> Result<(i64, Option<Date>)> {
    Ok(sqlx::query_as(
        "SELECT count(*) FILTER (WHERE kind = 'COMMUNICATION_KIND_VISIT' AND occur_time >= $2), \
         (max(occur_time) FILTER (WHERE kind = 'COMMUNICATION_KIND_SERVICE_REPORT'))::date \
         FROM communications WHERE customer_id = $1",
    )
    .bind(customer)
    .bind(since)
    .fetch_one(&mut *conn)
    .await?)
}

/// Up to `limit` signed, owned customers not checked against their service plan today, locked
/// (others' runs skip them), with when their owner was last reminded.
pub async fn lock_service_unchecked(
    tx: &mut PgConnection,
    today: Date,
    limit: i64,
) -> Result<Vec<(Uuid, Option<Date>)>> {
    Ok(sqlx::query_as(
        "SELECT id, service_reminded_on FROM customers WHERE delete_time IS NULL \
         AND stage = 'STAGE_SIGNED' AND owner_id <> '' \
         AND service_checked_on IS DISTINCT FROM $1 \
         ORDER BY service_checked_on NULLS FIRST, id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(today)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?)
}

/// Marks customers checked today, and those in `reminded` reminded today.
pub async fn mark_service_checked(
    tx: &mut PgConnection,
    checked: &[Uuid],
    reminded: &[Uuid],
    today: Date,
) -> Result<()> {
    sqlx::query(
        "UPDATE customers SET service_checked_on = $3, \
         service_reminded_on = CASE WHEN id = ANY($2) THEN $3 ELSE service_reminded_on END \
         WHERE id = ANY($1)",
    )
    .bind(checked)
    .bind(reminded)
    .bind(today)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
