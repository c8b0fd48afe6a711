//! The complaint aggregate's SQL: a cycle is read into its protobuf form with what the service
//! keeps beside it, changed by a use case, and written back whole by [`save`].

use crm_kit::{Error, Result, convert, scope::Scope};
use crm_proto::{
    common::v1::Money,
    complaints::v1::{self as pb, ComplaintChannel, ComplaintKind, ComplaintState, Deadline},
};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rules::stored;

/// A complaint cycle with what the service keeps beside its API form.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// The complaint as the API shows it.
    pub complaint: pb::Complaint,
    /// Business microseconds of resolution time left while paused.
    pub resolution_left_us: Option<i64>,
}

impl Record {
    /// Its id.
    pub fn id(&self) -> Uuid {
        Uuid::parse_str(&self.complaint.id).unwrap_or_default()
    }

    /// Its state.
    pub fn state(&self) -> ComplaintState {
        ComplaintState::try_from(self.complaint.state).unwrap_or_default()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: Uuid,
    number: i64,
    cycle: i32,
    state: String,
    kind: String,
    channel: String,
    customer_id: Uuid,
    contact_name: String,
    contact_phone: String,
    contact_email: String,
    contact_language: String,
    content: String,
    staff_comment: String,
    product_model: String,
    serial_number: String,
    ticket_id: String,
    staff_id: String,
    partner_id: String,
    apology: String,
    apologised_by: String,
    apologised_time: OffsetDateTime,
    committed_due: OffsetDateTime,
    policy_judgement: String,
    policy_explanation: String,
    cause: String,
    department: String,
    plan: String,
    compensation_kind: String,
    compensation_currency: String,
    compensation_units: i64,
    compensation_nanos: i32,
    plan_author: String,
    plan_approver: String,
    approval_due: Option<OffsetDateTime>,
    resolution_due: Option<OffsetDateTime>,
    resolution_left_us: Option<i64>,
    resolve_time: Option<OffsetDateTime>,
    satisfaction: i32,
    previous_cycle_id: Option<Uuid>,
    next_cycle_id: Option<Uuid>,
    version: i64,
    create_time: OffsetDateTime,
    created_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
}

const COLUMNS: &str = "id, number, cycle, state, kind, channel, customer_id, contact_name, \
    contact_phone, contact_email, contact_language, content, staff_comment, product_model, \
    serial_number, ticket_id, staff_id, partner_id, apology, apologised_by, apologised_time, \
    committed_due, policy_judgement, policy_explanation, cause, department, plan, \
    compensation_kind, compensation_currency, compensation_units, compensation_nanos, \
    plan_author, plan_approver, approval_due, resolution_due, resolution_left_us, resolve_time, \
    satisfaction, previous_cycle_id, next_cycle_id, version, create_time, created_by, \
    update_time, updated_by";

fn ts(t: Option<OffsetDateTime>) -> Option<prost_types::Timestamp> {
    t.map(convert::timestamp)
}

/// A complaint number as customers quote it: `Q` and eight digits.
pub fn number(n: i64) -> String {
    format!("Q{n:08}")
}

fn number_of(s: &str) -> i64 {
    s.trim_start_matches('Q').parse().unwrap_or(0)
}

fn enum_value<E: Into<i32>>(parsed: Option<E>) -> i32 {
    parsed.map_or(0, Into::into)
}

impl From<Row> for Record {
    fn from(r: Row) -> Self {
        let compensation = (!r.compensation_kind.is_empty()).then_some(pb::Compensation {
            kind: r.compensation_kind,
            amount: Some(Money {
                currency_code: r.compensation_currency,
                units: r.compensation_units,
                nanos: r.compensation_nanos,
            }),
        });
        let complaint = pb::Complaint {
            id: r.id.to_string(),
            number: number(r.number),
            cycle: r.cycle,
            state: enum_value(ComplaintState::from_str_name(&format!(
                "COMPLAINT_STATE_{}",
                r.state
            ))),
            kind: enum_value(ComplaintKind::from_str_name(&format!(
                "COMPLAINT_KIND_{}",
                r.kind
            ))),
            channel: enum_value(ComplaintChannel::from_str_name(&format!(
                "COMPLAINT_CHANNEL_{}",
                r.channel
            ))),
            customer_id: r.customer_id.to_string(),
            contact_name: r.contact_name,
            contact_phone: r.contact_phone,
            contact_email: r.contact_email,
            contact_language: r.contact_language,
            content: r.content,
            staff_comment: r.staff_comment,
            product_model: r.product_model,
            serial_number: r.serial_number,
            ticket_id: r.ticket_id,
            staff_id: r.staff_id,
            partner_id: r.partner_id,
            apology: r.apology,
            apologised: Some(convert::stamp(r.apologised_time, &r.apologised_by)),
            committed_due: Some(convert::timestamp(r.committed_due)),
            policy_judgement: r.policy_judgement,
            policy_explanation: r.policy_explanation,
            cause: r.cause,
            department: r.department,
            plan: r.plan,
            compensation,
            plan_author: r.plan_author,
            plan_approver: r.plan_approver,
            approval_due: ts(r.approval_due),
            resolution_due: ts(r.resolution_due),
            resolve_time: ts(r.resolve_time),
            satisfaction: r.satisfaction,
            previous_cycle_id: r
                .previous_cycle_id
                .map(|i| i.to_string())
                .unwrap_or_default(),
            next_cycle_id: r.next_cycle_id.map(|i| i.to_string()).unwrap_or_default(),
            breaches: Vec::new(),
            version: r.version,
            created: Some(convert::stamp(r.create_time, &r.created_by)),
            updated: Some(convert::stamp(r.update_time, &r.updated_by)),
        };
        Self {
            complaint,
            resolution_left_us: r.resolution_left_us,
        }
    }
}

/// A new complaint number.
pub async fn next_number(tx: &mut PgConnection) -> Result<String> {
    let n: i64 = sqlx::query_scalar("SELECT nextval('complaint_numbers')")
        .fetch_one(&mut *tx)
        .await?;
    Ok(number(n))
}

fn time_of(t: Option<&prost_types::Timestamp>) -> Option<OffsetDateTime> {
    t.and_then(|t| convert::from_timestamp(t).ok())
}

fn uuid_of(s: &str) -> Option<Uuid> {
    Uuid::parse_str(s).ok()
}

/// Writes a cycle whole (insert or replace).
pub async fn save(tx: &mut PgConnection, r: &Record) -> Result<()> {
    let c = &r.complaint;
    let id = uuid_of(&c.id).ok_or_else(|| Error::Internal(anyhow::anyhow!("bad id")))?;
    let customer =
        uuid_of(&c.customer_id).ok_or_else(|| Error::Internal(anyhow::anyhow!("bad customer")))?;
    let apologised = c.apologised.clone().unwrap_or_default();
    let created = c.created.clone().unwrap_or_default();
    let updated = c.updated.clone().unwrap_or_default();
    let compensation = c.compensation.clone().unwrap_or_default();
    let amount = compensation.amount.unwrap_or_default();
    let name = |v: &'static str, prefix: &str| stored(v, prefix).to_string();
    let placeholders: Vec<String> = (1..=45).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = COLUMNS
        .split(',')
        .map(str::trim)
        .enumerate()
        .filter(|(_, col)| !matches!(*col, "id" | "number" | "create_time" | "created_by"))
        .map(|(i, col)| format!("{col} = ${}", i + 1))
        .collect();
    let sql = format!(
        "INSERT INTO complaints ({COLUMNS}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}",
        placeholders.join(", "),
        updates.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(number_of(&c.number))
        .bind(c.cycle)
        .bind(name(
            ComplaintState::try_from(c.state)
                .unwrap_or_default()
                .as_str_name(),
            "COMPLAINT_STATE_",
        ))
        .bind(name(
            ComplaintKind::try_from(c.kind)
                .unwrap_or_default()
                .as_str_name(),
            "COMPLAINT_KIND_",
        ))
        .bind(name(
            ComplaintChannel::try_from(c.channel)
                .unwrap_or_default()
                .as_str_name(),
            "COMPLAINT_CHANNEL_",
        ))
        .bind(customer)
        .bind(&c.contact_name)
        .bind(&c.contact_phone)
        .bind(&c.contact_email)
        .bind(&c.contact_language)
        .bind(&c.content)
        .bind(&c.staff_comment)
        .bind(&c.product_model)
        .bind(&c.serial_number)
        .bind(&c.ticket_id)
        .bind(&c.staff_id)
        .bind(&c.partner_id)
        .bind(&c.apology)
        .bind(&apologised.actor)
        .bind(time_of(apologised.time.as_ref()))
        .bind(time_of(c.committed_due.as_ref()))
        .bind(&c.policy_judgement)
        .bind(&c.policy_explanation)
        .bind(&c.cause)
        .bind(&c.department)
        .bind(&c.plan)
        .bind(&compensation.kind)
        .bind(&amount.currency_code)
        .bind(amount.units)
        .bind(amount.nanos)
        .bind(&c.plan_author)
        .bind(&c.plan_approver)
        .bind(time_of(c.approval_due.as_ref()))
        .bind(time_of(c.resolution_due.as_ref()))
        .bind(r.resolution_left_us)
        .bind(time_of(c.resolve_time.as_ref()))
        .bind(c.satisfaction)
        .bind(uuid_of(&c.previous_cycle_id))
        .bind(uuid_of(&c.next_cycle_id))
        .bind(c.version)
        .bind(time_of(created.time.as_ref()))
        .bind(&created.actor)
        .bind(time_of(updated.time.as_ref()))
        .bind(&updated.actor)
        .execute(&mut *tx)
        .await
        .map_err(Error::from)
        .map_err(|e| {
            e.or_when("complaints_approver_not_author", || {
                Error::precondition(
                    "APPROVER_IS_AUTHOR",
                    "a plan is approved by someone other than its author",
                )
            })
            .or_when("complaints_previous_cycle", || {
                Error::precondition("ALREADY_REOPENED", "this cycle was reopened already")
            })
        })?;
    Ok(())
}

/// A cycle with its breaches, locked for the transaction when `lock`.
pub async fn get(conn: &mut PgConnection, id: Uuid, lock: bool) -> Result<Option<Record>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM complaints WHERE id = $1{}",
        if lock { " FOR UPDATE" } else { "" }
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut records = vec![Record::from(row)];
    with_breaches(conn, &mut records).await?;
    Ok(records.pop())
}

/// Fills in the deadlines each of `records` missed, in order, in one query.
async fn with_breaches(conn: &mut PgConnection, records: &mut [Record]) -> Result<()> {
    let ids: Vec<Uuid> = records.iter().map(Record::id).collect();
    let rows: Vec<(Uuid, String, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
        "SELECT complaint_id, deadline, due_time, breach_time FROM complaint_breaches \
         WHERE complaint_id = ANY($1) ORDER BY breach_time, deadline",
    )
    .bind(&ids)
    .fetch_all(&mut *conn)
    .await?;
    for (complaint, d, due, at) in rows {
        if let Some(r) = records.iter_mut().find(|r| r.id() == complaint) {
            r.complaint.breaches.push(pb::Breach {
                deadline: enum_value(Deadline::from_str_name(&format!("DEADLINE_{d}"))),
                due_time: Some(convert::timestamp(due)),
                breach_time: Some(convert::timestamp(at)),
            });
        }
    }
    Ok(())
}

/// What a list selects.
pub struct Filter<'a> {
    /// The stored states.
    pub states: &'a [String],
    /// The stored kind, if any.
    pub kind: Option<&'a str>,
    /// The department, if any.
    pub department: Option<&'a str>,
}

/// Cycles in `scope` matching `filter`, by committed deadline, after the key `(due, id)`.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    filter: &Filter<'_>,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<Record>> {
    let mut b: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {COLUMNS} FROM complaints WHERE state = ANY("
    ));
    b.push_bind(filter.states.to_vec()).push(")");
    if let Some(k) = filter.kind {
        b.push(" AND kind = ").push_bind(k.to_string());
    }
    if let Some(d) = filter.department {
        b.push(" AND department = ").push_bind(d.to_string());
    }
    scope.push_sql(&mut b, crate::service::COLUMNS);
    if let Some((due, id)) = after {
        b.push(" AND (committed_due, id) > (")
            .push_bind(due)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY committed_due, id LIMIT ")
        .push_bind(limit);
    let rows: Vec<Row> = b.build_query_as().fetch_all(&mut *conn).await?;
    let mut out: Vec<Record> = rows.into_iter().map(Record::from).collect();
    with_breaches(conn, &mut out).await?;
    Ok(out)
}
