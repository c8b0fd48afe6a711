//! The SQL of the communication log (C-6).

use crm_kit::{Result, convert};
use crm_proto::customers::v1 as pb;
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crm_kit::scope::Scope;

use crate::{
    communications::CommunicationInput,
    store::{customers_query, enum_value, fetch_customers, push_scope},
};

/// Records a communication and makes the next contact date of the customer's latest
/// communication its next contact date; bumps the customer's version.
pub async fn insert_communication(
    tx: &mut PgConnection,
    id: Uuid,
    c: &CommunicationInput,
    occur_time: OffsetDateTime,
    actor: &str,
    now: OffsetDateTime,
) -> Result<pb::Communication> {
    sqlx::query(
        "INSERT INTO communications (id, customer_id, kind, occur_time, summary, needs, concerns, \
         next_contact_date, care_plan_step, created_by, create_time) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(id)
    .bind(c.customer_id)
    .bind(c.kind.as_str_name())
    .bind(occur_time)
    .bind(&c.summary)
    .bind(&c.needs)
    .bind(&c.concerns)
    .bind(c.next_contact_date)
    .bind(&c.care_plan_step)
    .bind(actor)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE customers SET next_contact_date = (SELECT next_contact_date FROM communications \
         WHERE customer_id = $1 ORDER BY occur_time DESC, id DESC LIMIT 1), \
         version = version + 1, update_time = $2, updated_by = $3 WHERE id = $1",
    )
    .bind(c.customer_id)
    .bind(now)
    .bind(actor)
    .execute(&mut *tx)
    .await?;
    Ok(pb::Communication {
        id: id.to_string(),
        customer_id: c.customer_id.to_string(),
        kind: c.kind.into(),
        occur_time: Some(convert::timestamp(occur_time)),
        summary: c.summary.clone(),
        needs: c.needs.clone(),
        concerns: c.concerns.clone(),
        next_contact_date: Some(convert::date(c.next_contact_date)),
        care_plan_step: c.care_plan_step.clone(),
        created: Some(convert::stamp(now, actor)),
    })
}

/// A customer's communications, newest first, after the key `(occur_time, id)`.
pub async fn list_communications(
    conn: &mut PgConnection,
    customer: Uuid,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<pb::Communication>> {
    type Row = (
        Uuid,
        Uuid,
        String,
        OffsetDateTime,
        String,
        String,
        String,
        Date,
        String,
        String,
        OffsetDateTime,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, customer_id, kind, occur_time, summary, needs, concerns, next_contact_date, care_plan_step, \
         created_by, create_time FROM communications WHERE customer_id = $1 \
         AND ($2::timestamptz IS NULL OR (occur_time, id) < ($2, $3)) \
         ORDER BY occur_time DESC, id DESC LIMIT $4",
    )
    .bind(customer)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, customer_id, kind, occur, summary, needs, concerns, next, step, by, at)| {
                pb::Communication {
                    id: id.to_string(),
                    customer_id: customer_id.to_string(),
                    kind: enum_value(pb::CommunicationKind::from_str_name(&kind)),
                    occur_time: Some(convert::timestamp(occur)),
                    summary,
                    needs,
                    concerns,
                    next_contact_date: Some(convert::date(next)),
                    care_plan_step: step,
                    created: Some(convert::stamp(at, &by)),
                }
            },
        )
        .collect())
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
    let mut b = customers_query();
    b.push(" AND owner_id = ")
        .push_bind(owner.to_string())
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
    fetch_customers(conn, b).await
}
