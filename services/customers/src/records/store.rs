//! The SQL of the customer record (C-1, C-10): insert, update, soft delete and search.

use crm_kit::{Result, scope::Scope};
use crm_proto::customers::v1::{self as pb, Stage};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    records::rules::{CustomerFields, CustomerQuery},
    store::{customers_query, fetch_customers, push_scope},
};

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

/// Live customers matching `q`, in id (creation) order after `after`, at most `limit`.
pub async fn list_customers(
    conn: &mut PgConnection,
    q: &CustomerQuery,
    scope: &Scope,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::Customer>> {
    let mut b = customers_query();
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
    fetch_customers(conn, b).await
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}
