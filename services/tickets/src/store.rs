//! Storage of the tickets service: plain SQL over its own schema. A ticket is read into its
//! protobuf form, changed by the service, and written back whole by [`save`].

use crm_kit::{Result, convert, history};
use crm_proto::{common::v1::Money, tickets::v1 as pb};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

/// A ticket with what the service keeps beside its API form.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The ticket as the API shows it.
    pub ticket: pb::Ticket,
    /// Business microseconds of resolution time left while paused.
    pub resolution_left_us: Option<i64>,
    /// The time limit of the open escalation (its timers run on the ticket).
    pub escalation_due: Option<OffsetDateTime>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    channel: String,
    customer_id: Uuid,
    tier: String,
    region: String,
    contact_name: String,
    contact_phone: String,
    product_model: String,
    serial_number: String,
    symptom: String,
    warranty: String,
    service_mode: String,
    price_policy_told: bool,
    quote_currency: String,
    quote_units: i64,
    quote_nanos: i32,
    state: String,
    priority: String,
    assignee_id: String,
    response_due: Option<OffsetDateTime>,
    handoff_due: Option<OffsetDateTime>,
    resolution_due: Option<OffsetDateTime>,
    resolution_left_us: Option<i64>,
    satisfaction: i32,
    satisfaction_refusal: String,
    version: i64,
    create_time: OffsetDateTime,
    created_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
    second_service: bool,
    second_service_reason: String,
    parts_to_prepare: sqlx::types::Json<Vec<(String, i32)>>,
    contact_time: Option<OffsetDateTime>,
    arrival_time: Option<OffsetDateTime>,
    escalation_due: Option<OffsetDateTime>,
    contact_language: String,
    contact_due: Option<OffsetDateTime>,
    number: i64,
    routed_centre_id: String,
    partner_id: String,
    complaint_id: String,
}

fn parts(p: Vec<(String, i32)>) -> Vec<pb::PartUsed> {
    p.into_iter()
        .map(|(part_number, quantity)| pb::PartUsed {
            part_number,
            quantity,
        })
        .collect()
}

fn part_pairs(p: &[pb::PartUsed]) -> sqlx::types::Json<Vec<(String, i32)>> {
    sqlx::types::Json(
        p.iter()
            .map(|p| (p.part_number.clone(), p.quantity))
            .collect(),
    )
}

pub(crate) fn value<E: Into<i32>>(parsed: Option<E>) -> i32 {
    parsed.map_or(0, Into::into)
}

pub(crate) fn time_of(t: Option<&prost_types::Timestamp>) -> Option<OffsetDateTime> {
    t.and_then(|t| convert::from_timestamp(t).ok())
}

impl From<Row> for Record {
    fn from(r: Row) -> Self {
        let quote = (!r.quote_currency.is_empty()).then_some(Money {
            currency_code: r.quote_currency,
            units: r.quote_units,
            nanos: r.quote_nanos,
        });
        Self {
            resolution_left_us: r.resolution_left_us,
            escalation_due: r.escalation_due,
            ticket: pb::Ticket {
                id: r.id.to_string(),
                channel: value(pb::Channel::from_str_name(&r.channel)),
                customer_id: r.customer_id.to_string(),
                tier: r.tier,
                region: r.region,
                contact_name: r.contact_name,
                contact_phone: r.contact_phone,
                product_model: r.product_model,
                serial_number: r.serial_number,
                symptom: r.symptom,
                warranty: value(pb::Warranty::from_str_name(&r.warranty)),
                service_mode: value(pb::ServiceMode::from_str_name(&r.service_mode)),
                price_policy_told: r.price_policy_told,
                accepted_quote: quote,
                state: value(pb::TicketState::from_str_name(&r.state)),
                priority: value(pb::Priority::from_str_name(&r.priority)),
                assignee_id: r.assignee_id,
                response_due: r.response_due.map(convert::timestamp),
                handoff_due: r.handoff_due.map(convert::timestamp),
                resolution_due: r.resolution_due.map(convert::timestamp),
                breaches: Vec::new(),
                satisfaction: r.satisfaction,
                satisfaction_refusal: r.satisfaction_refusal,
                version: r.version,
                created: Some(convert::stamp(r.create_time, &r.created_by)),
                updated: Some(convert::stamp(r.update_time, &r.updated_by)),
                service_records: Vec::new(),
                second_service: r.second_service,
                second_service_reason: r.second_service_reason,
                parts_to_prepare: parts(r.parts_to_prepare.0),
                contact_time: r.contact_time.map(convert::timestamp),
                arrival_time: r.arrival_time.map(convert::timestamp),
                escalation: None,
                number: number(r.number),
                contact_language: r.contact_language,
                contact_due: r.contact_due.map(convert::timestamp),
                routed_centre_id: r.routed_centre_id,
                partner_id: r.partner_id,
                complaint_id: r.complaint_id,
            },
        }
    }
}

/// A ticket number as customers quote it: `T` and eight digits.
pub fn number(n: i64) -> String {
    format!("T{n:08}")
}

/// The columns a save writes.
macro_rules! columns {
    () => {
        "id, channel, customer_id, tier, region, contact_name, contact_phone, product_model, \
     serial_number, symptom, warranty, service_mode, price_policy_told, quote_currency, quote_units, \
     quote_nanos, state, priority, assignee_id, response_due, handoff_due, resolution_due, \
     resolution_left_us, satisfaction, satisfaction_refusal, version, create_time, created_by, \
     update_time, updated_by, second_service, second_service_reason, parts_to_prepare, contact_time, \
     arrival_time, escalation_due, contact_language, contact_due"
    };
}

const COLUMNS: &str = columns!();

/// What a read selects: the written columns, the number the database gives, the routing the
/// repairs service's events set (`routing`) and the complaint that opened or reopened it
/// (`complaints`).
const SELECTED: &str = concat!(
    columns!(),
    ", number, routed_centre_id, partner_id, complaint_id"
);

pub(crate) fn name<E: TryFrom<i32>>(v: i32, f: impl Fn(&E) -> &'static str) -> &'static str {
    E::try_from(v).map(|e| f(&e)).unwrap_or("")
}

/// Writes a ticket whole (insert or replace); `next_due` is derived from its deadlines. Returns
/// the ticket's number.
pub async fn save(tx: &mut PgConnection, r: &Record) -> Result<String> {
    let t = &r.ticket;
    let id = Uuid::parse_str(&t.id).map_err(|e| crm_kit::Error::Internal(e.into()))?;
    let customer =
        Uuid::parse_str(&t.customer_id).map_err(|e| crm_kit::Error::Internal(e.into()))?;
    let created = t.created.clone().unwrap_or_default();
    let updated = t.updated.clone().unwrap_or_default();
    let dues = [&t.response_due, &t.handoff_due, &t.resolution_due];
    let next_due = dues
        .iter()
        .filter_map(|d| time_of(d.as_ref()))
        .chain(r.escalation_due)
        .min();
    let quote = t.accepted_quote.clone().unwrap_or_default();
    let sql = format!(
        "INSERT INTO tickets ({COLUMNS}, next_due) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
         $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $32, $33, $34, $35, $36, $37, $38, $39, $31) \
         ON CONFLICT (id) DO UPDATE SET tier = $4, contact_name = $6, contact_phone = $7, product_model = $8, \
         serial_number = $9, symptom = $10, warranty = $11, service_mode = $12, price_policy_told = $13, \
         quote_currency = $14, quote_units = $15, quote_nanos = $16, state = $17, priority = $18, \
         assignee_id = $19, response_due = $20, handoff_due = $21, resolution_due = $22, \
         resolution_left_us = $23, satisfaction = $24, satisfaction_refusal = $25, version = $26, \
         update_time = $29, updated_by = $30, next_due = $31, second_service = $32, \
         second_service_reason = $33, parts_to_prepare = $34, contact_time = $35, arrival_time = $36, \
         escalation_due = $37, contact_language = $38, contact_due = $39 RETURNING number"
    );
    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(name(t.channel, pb::Channel::as_str_name))
        .bind(customer)
        .bind(&t.tier)
        .bind(&t.region)
        .bind(&t.contact_name)
        .bind(&t.contact_phone)
        .bind(&t.product_model)
        .bind(&t.serial_number)
        .bind(&t.symptom)
        .bind(name(t.warranty, pb::Warranty::as_str_name))
        .bind(name(t.service_mode, pb::ServiceMode::as_str_name))
        .bind(t.price_policy_told)
        .bind(&quote.currency_code)
        .bind(quote.units)
        .bind(quote.nanos)
        .bind(name(t.state, pb::TicketState::as_str_name))
        .bind(name(t.priority, pb::Priority::as_str_name))
        .bind(&t.assignee_id)
        .bind(time_of(t.response_due.as_ref()))
        .bind(time_of(t.handoff_due.as_ref()))
        .bind(time_of(t.resolution_due.as_ref()))
        .bind(r.resolution_left_us)
        .bind(t.satisfaction)
        .bind(&t.satisfaction_refusal)
        .bind(t.version)
        .bind(time_of(created.time.as_ref()))
        .bind(&created.actor)
        .bind(time_of(updated.time.as_ref()))
        .bind(&updated.actor)
        .bind(next_due)
        .bind(t.second_service)
        .bind(&t.second_service_reason)
        .bind(part_pairs(&t.parts_to_prepare))
        .bind(time_of(t.contact_time.as_ref()))
        .bind(time_of(t.arrival_time.as_ref()))
        .bind(r.escalation_due)
        .bind(&t.contact_language)
        .bind(time_of(t.contact_due.as_ref()))
        .fetch_one(&mut *tx)
        .await?;
    Ok(number(n))
}

/// A ticket with its breaches, locked for the transaction when `lock`.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Record>> {
    let sql = format!(
        "SELECT {SELECTED} FROM tickets WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut record = Record::from(row);
    complete(conn, &mut record.ticket, id).await?;
    Ok(Some(record))
}

/// Fills in what a ticket holds beside its row: breaches, service records, latest escalation.
async fn complete(conn: &mut PgConnection, t: &mut pb::Ticket, id: Uuid) -> Result<()> {
    t.breaches = breaches(conn, id).await?;
    t.service_records = service_records(conn, id).await?;
    t.escalation = crate::escalations::latest(conn, id).await?;
    Ok(())
}

async fn breaches(conn: &mut PgConnection, id: Uuid) -> Result<Vec<pb::Breach>> {
    let rows: Vec<(String, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT deadline, due_time, breach_time FROM ticket_breaches WHERE ticket_id = $1 ORDER BY breach_time",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(d, due, at)| pb::Breach {
            deadline: value(pb::Deadline::from_str_name(&d)),
            due_time: Some(convert::timestamp(due)),
            breach_time: Some(convert::timestamp(at)),
        })
        .collect())
}

/// Records a breach.
pub async fn insert_breach(
    tx: &mut PgConnection,
    ticket: Uuid,
    deadline: pb::Deadline,
    due: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_breaches (id, ticket_id, deadline, due_time, breach_time) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(Uuid::now_v7())
    .bind(ticket)
    .bind(deadline.as_str_name())
    .bind(due)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The kind of the tickets' history in the kit's history table.
const LIFECYCLE: &str = "lifecycle";

/// Records a history entry (a transition, a warning, a breach, a reminder).
pub async fn insert_history(
    tx: &mut PgConnection,
    ticket: Uuid,
    entry: &pb::TicketHistoryEntry,
    at: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let subject = format!("tickets/{ticket}");
    let change = history::Change {
        subject: &subject,
        kind: LIFECYCLE,
        from: name(entry.from_state, pb::TicketState::as_str_name),
        to: name(entry.to_state, pb::TicketState::as_str_name),
        reason: &entry.reason,
        via: name(entry.transition, pb::Transition::as_str_name),
        actor,
        at,
    };
    history::record(tx, &change).await?;
    Ok(())
}

/// A ticket's history after `after`, oldest first.
pub async fn history(
    conn: &mut PgConnection,
    ticket: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<pb::TicketHistoryEntry>> {
    let entries =
        history::page(conn, &format!("tickets/{ticket}"), LIFECYCLE, after, limit).await?;
    Ok(entries
        .into_iter()
        .map(|e| pb::TicketHistoryEntry {
            id: e.id.to_string(),
            transition: value(pb::Transition::from_str_name(&e.via)),
            from_state: value(pb::TicketState::from_str_name(&e.from_value)),
            to_state: value(pb::TicketState::from_str_name(&e.to_value)),
            reason: e.reason,
            changed: Some(convert::stamp(e.change_time, &e.actor)),
        })
        .collect())
}

/// A queue: tickets in `states` (and of `assignee`, `region`, routed to `partner`), earliest next deadline first
/// (those with none last), after the key `(next_due, id)`.
pub async fn queue(
    conn: &mut PgConnection,
    states: &[String],
    assignee: Option<&str>,
    region: Option<&str>,
    partner: Option<&str>,
    after: Option<(Option<OffsetDateTime>, Uuid)>,
    limit: i64,
) -> Result<Vec<(Record, Option<OffsetDateTime>)>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {SELECTED}, next_due FROM tickets WHERE state = ANY("
    ));
    b.push_bind(states.to_vec()).push(")");
    if let Some(a) = assignee {
        b.push(" AND assignee_id = ").push_bind(a.to_string());
    }
    if let Some(r) = region {
        b.push(" AND region = ").push_bind(r.to_string());
    }
    if let Some(p) = partner {
        b.push(" AND partner_id <> '' AND partner_id = ")
            .push_bind(p.to_string());
    }
    // keyset over (next_due NULLS LAST, id)
    match after {
        Some((Some(due), id)) => {
            b.push(" AND (next_due IS NULL OR (next_due, id) > (")
                .push_bind(due)
                .push(", ")
                .push_bind(id)
                .push("))");
        }
        Some((None, id)) => {
            b.push(" AND next_due IS NULL AND id > ").push_bind(id);
        }
        None => {}
    }
    b.push(" ORDER BY next_due NULLS LAST, id LIMIT ")
        .push_bind(limit);
    #[derive(sqlx::FromRow)]
    struct QueueRow {
        #[sqlx(flatten)]
        row: Row,
        next_due: Option<OffsetDateTime>,
    }
    let rows: Vec<QueueRow> = b.build_query_as().fetch_all(&mut *conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut record = Record::from(r.row);
        let id = Uuid::parse_str(&record.ticket.id).unwrap_or_default();
        complete(conn, &mut record.ticket, id).await?;
        out.push((record, r.next_due));
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct RecordRow {
    id: Uuid,
    work_done: String,
    diagnosis: String,
    parts_used: sqlx::types::Json<Vec<(String, i32)>>,
    signature_name: String,
    signature_time: Option<OffsetDateTime>,
    image_ref: String,
    finished: bool,
    unfinished_reason: String,
    second_visit_time: Option<OffsetDateTime>,
    second_service: bool,
    second_service_reason: String,
    record_time: OffsetDateTime,
    recorded_by: String,
}

async fn service_records(conn: &mut PgConnection, id: Uuid) -> Result<Vec<pb::ServiceRecord>> {
    let rows: Vec<RecordRow> = sqlx::query_as(
        "SELECT id, work_done, diagnosis, parts_used, signature_name, signature_time, image_ref, finished, \
         unfinished_reason, second_visit_time, second_service, second_service_reason, record_time, recorded_by \
         FROM service_records WHERE ticket_id = $1 ORDER BY record_time, id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            use pb::confirmation::Proof;
            let proof = if !r.image_ref.is_empty() {
                Some(Proof::ImageRef(r.image_ref))
            } else if !r.signature_name.is_empty() {
                Some(Proof::Signature(pb::Signature {
                    name: r.signature_name,
                    time: r.signature_time.map(convert::timestamp),
                }))
            } else {
                None
            };
            pb::ServiceRecord {
                id: r.id.to_string(),
                work_done: r.work_done,
                diagnosis: r.diagnosis,
                parts_used: parts(r.parts_used.0),
                confirmation: proof.map(|p| pb::Confirmation { proof: Some(p) }),
                finished: r.finished,
                unfinished_reason: r.unfinished_reason,
                second_visit_time: r.second_visit_time.map(convert::timestamp),
                second_service: r.second_service,
                second_service_reason: r.second_service_reason,
                recorded: Some(convert::stamp(r.record_time, &r.recorded_by)),
            }
        })
        .collect())
}

/// Adds a service record to a ticket.
pub async fn insert_service_record(
    tx: &mut PgConnection,
    ticket: Uuid,
    r: &pb::ServiceRecord,
    at: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    use pb::confirmation::Proof;
    let (name, signed, image) = match r.confirmation.as_ref().and_then(|c| c.proof.as_ref()) {
        Some(Proof::Signature(s)) => (s.name.clone(), time_of(s.time.as_ref()), String::new()),
        Some(Proof::ImageRef(i)) => (String::new(), None, i.clone()),
        None => (String::new(), None, String::new()),
    };
    sqlx::query(
        "INSERT INTO service_records (id, ticket_id, work_done, diagnosis, parts_used, signature_name, \
         signature_time, image_ref, finished, unfinished_reason, second_visit_time, second_service, \
         second_service_reason, record_time, recorded_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(Uuid::now_v7())
    .bind(ticket)
    .bind(&r.work_done)
    .bind(&r.diagnosis)
    .bind(part_pairs(&r.parts_used))
    .bind(name)
    .bind(signed)
    .bind(image)
    .bind(r.finished)
    .bind(&r.unfinished_reason)
    .bind(time_of(r.second_visit_time.as_ref()))
    .bind(r.second_service)
    .bind(&r.second_service_reason)
    .bind(at)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The ids of `customer`'s tickets in `states`.
pub async fn open_tickets_of(
    conn: &mut PgConnection,
    customer: Uuid,
    states: &[String],
) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM tickets WHERE customer_id = $1 AND state = ANY($2) ORDER BY id",
    )
    .bind(customer)
    .bind(states)
    .fetch_all(&mut *conn)
    .await?)
}

/// The engineer of `region` with the fewest tickets in `working` states (ties: the smallest
/// id). Dispatches in one region are serialised for the transaction, so two at once do not
/// both pick the same least-loaded engineer.
pub async fn least_loaded_engineer(
    tx: &mut PgConnection,
    region: &str,
    working: &[String],
) -> Result<Option<String>> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('tickets.dispatch:' || $1, 0))")
        .bind(region)
        .execute(&mut *tx)
        .await?;
    Ok(sqlx::query_scalar(
        "SELECT e.user_id FROM directory_members e \
         LEFT JOIN tickets t ON t.assignee_id = e.user_id AND t.state = ANY($2) \
         WHERE e.role = 'engineer' AND e.active AND e.region = $1 \
         GROUP BY e.user_id ORDER BY count(t.id), e.user_id LIMIT 1",
    )
    .bind(region)
    .bind(working)
    .fetch_optional(&mut *tx)
    .await?)
}
