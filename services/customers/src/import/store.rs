//! The SQL of imports (C-2): the imports and their report rows, the batch look-up of existing
//! customers by duplicate key, and the batch insert of the customers an import creates.

use crm_kit::{Result, convert, history};
use crm_proto::customers::v1::{self as pb, Stage};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    records::rules::CustomerFields,
    store::{STAGE, TIER, enum_value, subject},
};

#[derive(sqlx::FromRow)]
struct ImportRowDb {
    id: Uuid,
    file_name: String,
    state: String,
    encoding: String,
    rows: i64,
    accepted: i64,
    rejected: i64,
    duplicates: i64,
    failure: String,
    create_time: OffsetDateTime,
    created_by: String,
}

impl From<ImportRowDb> for pb::Import {
    fn from(r: ImportRowDb) -> Self {
        Self {
            id: r.id.to_string(),
            file_name: r.file_name,
            state: enum_value(pb::ImportState::from_str_name(&r.state)),
            encoding: r.encoding,
            rows: r.rows,
            accepted: r.accepted,
            rejected: r.rejected,
            duplicates: r.duplicates,
            failure: r.failure,
            created: Some(convert::stamp(r.create_time, &r.created_by)),
        }
    }
}

/// An import by id, or by the request id that made it.
pub async fn get_import(
    conn: &mut PgConnection,
    id: Option<Uuid>,
    request_id: Option<&str>,
) -> Result<Option<pb::Import>> {
    let row: Option<ImportRowDb> = sqlx::query_as(
        "SELECT id, file_name, state, encoding, rows, accepted, rejected, duplicates, failure, \
         create_time, created_by FROM imports WHERE id = $1 OR request_id = $2",
    )
    .bind(id)
    .bind(request_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(Into::into))
}

/// Starts an import (PROCESSING).
pub async fn insert_import(
    conn: &mut PgConnection,
    id: Uuid,
    request_id: &str,
    file_name: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO imports (id, request_id, file_name, state, encoding, create_time, created_by, \
         update_time) VALUES ($1, $2, $3, 'IMPORT_STATE_PROCESSING', '', $4, $5, $4)",
    )
    .bind(id)
    .bind(request_id)
    .bind(file_name)
    .bind(now)
    .bind(actor)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Marks a processing import alive at `now` (it waits for another import).
pub async fn touch_import(conn: &mut PgConnection, id: Uuid, now: OffsetDateTime) -> Result<()> {
    sqlx::query(
        "UPDATE imports SET update_time = $2 WHERE id = $1 AND state = 'IMPORT_STATE_PROCESSING'",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets an import's encoding, or ends it (DONE, or FAILED with the failure).
pub async fn set_import_state(
    conn: &mut PgConnection,
    id: Uuid,
    state: pb::ImportState,
    encoding: &str,
    failure: &str,
) -> Result<()> {
    sqlx::query("UPDATE imports SET state = $2, encoding = $3, failure = $4 WHERE id = $1")
        .bind(id)
        .bind(state.as_str_name())
        .bind(encoding)
        .bind(failure)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records rows of an import's report and counts them (the import made progress at `now`).
pub async fn insert_import_rows(
    tx: &mut PgConnection,
    import: Uuid,
    rows: &[pb::ImportRow],
    now: OffsetDateTime,
) -> Result<()> {
    let uuid = |s: &str| Uuid::parse_str(s).ok();
    let count =
        |status: pb::ImportRowStatus| rows.iter().filter(|r| r.status() == status).count() as i64;
    sqlx::query(
        "INSERT INTO import_rows (import_id, row_number, status, customer_id, column_name, reason, \
         duplicate_of_row, duplicate_of_customer) \
         SELECT $1, * FROM unnest($2::int8[], $3::text[], $4::uuid[], $5::text[], $6::text[], $7::int8[], $8::uuid[])",
    )
    .bind(import)
    .bind(rows.iter().map(|r| r.row_number).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.status().as_str_name()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| uuid(&r.customer_id)).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.column.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.reason.as_str()).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| r.duplicate_of_row).collect::<Vec<_>>())
    .bind(rows.iter().map(|r| uuid(&r.duplicate_of_customer_id)).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE imports SET rows = rows + $2, accepted = accepted + $3, rejected = rejected + $4, \
         duplicates = duplicates + $5, update_time = $6 WHERE id = $1",
    )
    .bind(import)
    .bind(rows.len() as i64)
    .bind(count(pb::ImportRowStatus::Accepted))
    .bind(count(pb::ImportRowStatus::Rejected))
    .bind(count(pb::ImportRowStatus::Duplicate))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The live customers holding any of `keys` (`name:…`, `phone:…`, `email:…` as the import
/// makes them): each key found with the customer, and the row of `import` that created that
/// customer if it did.
pub async fn customers_with_keys(
    conn: &mut PgConnection,
    import: Uuid,
    keys: &[String],
) -> Result<Vec<(String, Uuid, Option<i64>)>> {
    let of = |prefix: &str| -> Vec<&str> {
        keys.iter().filter_map(|k| k.strip_prefix(prefix)).collect()
    };
    // key by key, each found with its index and each contact's customer by its primary key:
    // set-wise forms let the planner, whose statistics lag while an import grows the tables,
    // scan every customer for every batch
    Ok(sqlx::query_as(
        "SELECT 'name:' || n.v, c.id, CASE WHEN c.import_id = $4 THEN c.import_row END \
           FROM unnest($1::text[]) n(v) CROSS JOIN LATERAL ( \
             SELECT id, import_id, import_row FROM customers \
               WHERE dedup_name = n.v AND delete_time IS NULL OFFSET 0) c \
         UNION ALL \
         SELECT k.key, c.id, CASE WHEN c.import_id = $4 THEN c.import_row END FROM ( \
             SELECT 'phone:' || p.v AS key, x.customer_id FROM unnest($2::text[]) p(v) \
               CROSS JOIN LATERAL (SELECT customer_id FROM contacts \
                 WHERE phone_key = p.v AND phone_key <> '' OFFSET 0) x \
             UNION ALL \
             SELECT 'email:' || e.v, x.customer_id FROM unnest($3::text[]) e(v) \
               CROSS JOIN LATERAL (SELECT customer_id FROM contacts \
                 WHERE email_key = e.v AND email_key <> '' OFFSET 0) x \
           ) k CROSS JOIN LATERAL ( \
             SELECT id, import_id, import_row FROM customers \
               WHERE id = k.customer_id AND delete_time IS NULL OFFSET 0) c",
    )
    .bind(of("name:"))
    .bind(of("phone:"))
    .bind(of("email:"))
    .bind(import)
    // planned for these very keys each time: a cached generic plan may scan every customer
    .persistent(false)
    .fetch_all(&mut *conn)
    .await?)
}

/// Gathers the planner's statistics of the columns duplicates are found by, if it has none
/// (tables never analyzed, e.g. still small): without them it guesses that each key matches
/// many rows and scans whole tables for every batch. Once gathered they scale with the tables
/// (the keys are nearly all distinct), and autovacuum keeps them current.
pub async fn ensure_key_statistics(conn: &mut PgConnection) -> Result<()> {
    let known: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() \
         AND (tablename, attname) IN (('customers', 'dedup_name'), ('contacts', 'phone_key'), \
         ('contacts', 'email_key'))",
    )
    .fetch_one(&mut *conn)
    .await?;
    if known < 3 {
        sqlx::query("ANALYZE customers, contacts")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// A customer an import creates: its id, the row of the file, its fields (tier settled), and
/// why its tier is what it is.
pub struct Imported {
    /// The new customer's id.
    pub id: Uuid,
    /// The row of the file it came from.
    pub row: i64,
    /// Its fields, the tier settled.
    pub fields: CustomerFields,
    /// Why the computed tier is what it is.
    pub tier_reason: String,
}

impl Imported {
    /// The customer as [`insert_imported`] stores it, as a read would give it back (for the
    /// batch's event, without reading the batch back).
    pub fn to_proto(&self, now: OffsetDateTime, actor: &str) -> pb::Customer {
        let f = &self.fields;
        pb::Customer {
            id: self.id.to_string(),
            display_name: f.display_name.clone(),
            industry: f.industry.clone(),
            region: f.region.clone(),
            address: f.address.clone(),
            source_channel: f.source_channel.into(),
            contacts: f
                .contacts
                .iter()
                .map(|c| pb::Contact {
                    name: c.name.clone(),
                    phone: c.phone.clone(),
                    email: c.email.clone(),
                    role: c.role.clone(),
                })
                .collect(),
            tags: f.tags.clone(),
            owner_id: f.owner_id.clone(),
            tech_partner_id: String::new(),
            tier: f.tier.into(),
            stage: Stage::InitialContact.into(),
            credit_rating: f.credit_rating.into(),
            blacklisted: f.blacklisted,
            blacklist_reason: f.blacklist_reason.clone(),
            validity: f.validity.into(),
            invalid_reason: f.invalid_reason.into(),
            next_contact_date: None,
            version: 1,
            created: Some(convert::stamp(now, actor)),
            updated: Some(convert::stamp(now, actor)),
            investment_cny: f.tier_inputs.investment_cny,
            annual_service_fee_cny: f.tier_inputs.annual_service_fee_cny,
            reference_account: f.tier_inputs.reference_account,
            potential_flag: f.tier_inputs.potential_flag,
            computed_tier: f.computed_tier.into(),
            tier_override: None,
        }
    }
}

/// Inserts the customers one batch of `import` accepted, each in the first stage with version
/// 1, with their contacts, the first stage-history row and the tier-history row: one statement
/// per table for the whole batch.
pub async fn insert_imported(
    tx: &mut PgConnection,
    import: Uuid,
    customers: &[Imported],
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    if customers.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&CustomerFields) -> &str| -> Vec<&str> {
        customers.iter().map(|c| f(&c.fields)).collect()
    };
    let ids: Vec<Uuid> = customers.iter().map(|c| c.id).collect();
    let inputs = |f: fn(&crate::tiers::rules::TierInputs) -> i64| -> Vec<i64> {
        customers.iter().map(|c| f(&c.fields.tier_inputs)).collect()
    };
    let flags = |f: fn(&crate::tiers::rules::TierInputs) -> bool| -> Vec<bool> {
        customers.iter().map(|c| f(&c.fields.tier_inputs)).collect()
    };
    sqlx::query(
        "INSERT INTO customers (id, display_name, name_key, industry, region, address, source_channel, \
         tags, owner_id, tier, credit_rating, blacklisted, blacklist_reason, validity, invalid_reason, \
         investment_cny, annual_service_fee_cny, reference_account, potential_flag, computed_tier, \
         dedup_name, import_row, create_time, created_by, update_time, updated_by, stage, import_id, \
         tech_partner_id, version) \
         SELECT u.id, u.display_name, u.name_key, u.industry, u.region, u.address, u.source_channel, \
           ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.owner_id, u.tier, u.credit_rating, \
           u.blacklisted, u.blacklist_reason, u.validity, u.invalid_reason, u.investment, u.fee, \
           u.reference, u.potential, u.computed, u.dedup_name, u.row, $23, $24, $23, $24, $25, $26, '', 1 \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], \
           $8::jsonb[], $9::text[], $10::text[], $11::text[], $12::bool[], $13::text[], $14::text[], \
           $15::text[], $16::int8[], $17::int8[], $18::bool[], $19::bool[], $20::text[], $21::text[], \
           $22::int8[]) AS u(id, display_name, name_key, industry, region, address, source_channel, tags, \
           owner_id, tier, credit_rating, blacklisted, blacklist_reason, validity, invalid_reason, \
           investment, fee, reference, potential, computed, dedup_name, row)",
    )
    .bind(&ids)
    .bind(col(|f| &f.display_name))
    .bind(col(|f| &f.name_key))
    .bind(col(|f| &f.industry))
    .bind(col(|f| &f.region))
    .bind(col(|f| &f.address))
    .bind(col(|f| f.source_channel.as_str_name()))
    .bind(
        customers
            .iter()
            .map(|c| sqlx::types::Json(&c.fields.tags))
            .collect::<Vec<_>>(),
    )
    .bind(col(|f| &f.owner_id))
    .bind(col(|f| f.tier.as_str_name()))
    .bind(col(|f| f.credit_rating.as_str_name()))
    .bind(customers.iter().map(|c| c.fields.blacklisted).collect::<Vec<_>>())
    .bind(col(|f| &f.blacklist_reason))
    .bind(col(|f| f.validity.as_str_name()))
    .bind(col(|f| f.invalid_reason.as_str_name()))
    .bind(inputs(|t| t.investment_cny))
    .bind(inputs(|t| t.annual_service_fee_cny))
    .bind(flags(|t| t.reference_account))
    .bind(flags(|t| t.potential_flag))
    .bind(col(|f| f.computed_tier.as_str_name()))
    .bind(col(|f| &f.dedup_name))
    .bind(customers.iter().map(|c| c.row).collect::<Vec<_>>())
    .bind(now)
    .bind(actor)
    .bind(Stage::InitialContact.as_str_name())
    .bind(import)
    .execute(&mut *tx)
    .await?;
    let contacts: Vec<(Uuid, i32, &crate::records::rules::ContactFields)> = customers
        .iter()
        .flat_map(|c| {
            c.fields
                .contacts
                .iter()
                .enumerate()
                .map(|(i, k)| (c.id, i as i32, k))
        })
        .collect();
    if !contacts.is_empty() {
        let text = |f: fn(&crate::records::rules::ContactFields) -> &str| -> Vec<&str> {
            contacts.iter().map(|(_, _, k)| f(k)).collect()
        };
        sqlx::query(
            "INSERT INTO contacts (customer_id, position, name, phone, phone_key, email, email_key, role) \
             SELECT * FROM unnest($1::uuid[], $2::int4[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::text[])",
        )
        .bind(contacts.iter().map(|(id, _, _)| *id).collect::<Vec<_>>())
        .bind(contacts.iter().map(|(_, i, _)| *i).collect::<Vec<_>>())
        .bind(text(|k| &k.name))
        .bind(text(|k| &k.phone))
        .bind(text(|k| &k.phone_key))
        .bind(text(|k| &k.email))
        .bind(contacts.iter().map(|(_, _, k)| crm_kit::email::key(&k.email)).collect::<Vec<_>>())
        .bind(text(|k| &k.role))
        .execute(&mut *tx)
        .await?;
    }
    // each new customer's first stage and tier, in the kit's history
    let subjects: Vec<String> = ids.iter().map(|id| subject(*id)).collect();
    let mut changes = Vec::with_capacity(customers.len() * 2);
    for (c, subject) in customers.iter().zip(&subjects) {
        changes.push(history::Change {
            subject,
            kind: STAGE,
            from: Stage::Unspecified.as_str_name(),
            to: Stage::InitialContact.as_str_name(),
            reason: "created",
            via: "",
            actor,
            at: now,
        });
        changes.push(history::Change {
            subject,
            kind: TIER,
            from: pb::Tier::Unspecified.as_str_name(),
            to: c.fields.tier.as_str_name(),
            reason: &c.tier_reason,
            via: "",
            actor,
            at: now,
        });
    }
    history::record_many(tx, &changes).await?;
    Ok(())
}

/// An import's report rows after `after`, in file order.
pub async fn import_rows(
    conn: &mut PgConnection,
    import: Uuid,
    status: Option<pb::ImportRowStatus>,
    after: Option<i64>,
    limit: i64,
) -> Result<Vec<pb::ImportRow>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        row_number: i64,
        status: String,
        customer_id: Option<Uuid>,
        column_name: String,
        reason: String,
        duplicate_of_row: i64,
        duplicate_of_customer: Option<Uuid>,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT row_number, status, customer_id, column_name, reason, duplicate_of_row, \
         duplicate_of_customer FROM import_rows WHERE import_id = $1 \
         AND ($2::text IS NULL OR status = $2) AND ($3::bigint IS NULL OR row_number > $3) \
         ORDER BY row_number LIMIT $4",
    )
    .bind(import)
    .bind(status.map(|s| s.as_str_name()))
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let id = |u: Option<Uuid>| u.map(|c| c.to_string()).unwrap_or_default();
    Ok(rows
        .into_iter()
        .map(|r| pb::ImportRow {
            row_number: r.row_number,
            status: enum_value(pb::ImportRowStatus::from_str_name(&r.status)),
            customer_id: id(r.customer_id),
            column: r.column_name,
            reason: r.reason,
            duplicate_of_row: r.duplicate_of_row,
            duplicate_of_customer_id: id(r.duplicate_of_customer),
        })
        .collect())
}

/// The regions of the customers an import made, with how many each.
pub async fn import_regions(conn: &mut PgConnection, import: Uuid) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT c.region, count(*) FROM import_rows r JOIN customers c ON c.id = r.customer_id \
         WHERE r.import_id = $1 AND r.status = 'IMPORT_ROW_STATUS_ACCEPTED' \
         GROUP BY c.region ORDER BY c.region",
    )
    .bind(import)
    .fetch_all(&mut *conn)
    .await?)
}

/// Marks FAILED the imports left PROCESSING without progress since `stale_before` (their process
/// died); returns how many.
pub async fn fail_stale_imports(
    tx: &mut PgConnection,
    stale_before: OffsetDateTime,
) -> Result<u64> {
    Ok(sqlx::query(
        "UPDATE imports SET state = 'IMPORT_STATE_FAILED', failure = 'interrupted after row ' || rows || \
         ' (no progress since ' || update_time || '): the rows before are imported and in the report; \
         upload the file again, they become duplicates' \
         WHERE state = 'IMPORT_STATE_PROCESSING' AND update_time < $1",
    )
    .bind(stale_before)
    .execute(&mut *tx)
    .await?
    .rows_affected())
}
