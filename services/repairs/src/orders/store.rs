//! The SQL of repair orders: one row per order, written whole by each step.

use crm_kit::{Result, convert, scope::Scope};
use crm_proto::{
    common::v1::Money,
    repairs::v1::{self as pb, OrderKind, OrderPriority, OrderState},
};
use sqlx::{PgConnection, QueryBuilder};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::service::push_scope;
use crate::service::stored;

const COLUMNS: &str = "id, number, kind, centre_id, partner_id, state, ticket_id, customer_id, \
    contact_name, contact_phone, product_model, serial_number, fault_description, \
    fault_reproduced, configuration, accessories, quote_currency, quote_units, quote_nanos, paid, \
    service_record, inbound_carrier, inbound_tracking, outbound_carrier, outbound_tracking, \
    signed_by, arrival_time, repaired_while_waiting, counter_wait_s, receipt_digest, due_time, \
    create_time, created_by, update_time, updated_by, priority, warning_time, breach_time";

/// A stored order, with what the API does not show.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderRow {
    id: Uuid,
    number: i64,
    kind: String,
    centre_id: Uuid,
    /// The partner organisation of its centre.
    pub partner_id: String,
    state: String,
    ticket_id: String,
    customer_id: String,
    contact_name: String,
    contact_phone: String,
    product_model: String,
    serial_number: String,
    fault_description: String,
    fault_reproduced: bool,
    configuration: String,
    accessories: Vec<String>,
    quote_currency: String,
    quote_units: i64,
    quote_nanos: i32,
    paid: bool,
    service_record: String,
    inbound_carrier: String,
    inbound_tracking: String,
    outbound_carrier: String,
    outbound_tracking: String,
    signed_by: String,
    /// Carry-in: when the customer arrived at the counter.
    pub arrival_time: Option<OffsetDateTime>,
    /// Repaired while the customer waited.
    pub repaired_while_waiting: bool,
    counter_wait_s: i64,
    /// The pickup receipt's digest, once issued.
    pub receipt_digest: Option<Vec<u8>>,
    due_time: OffsetDateTime,
    create_time: OffsetDateTime,
    created_by: String,
    update_time: OffsetDateTime,
    updated_by: String,
    priority: String,
    warning_time: Option<OffsetDateTime>,
    breach_time: Option<OffsetDateTime>,
}

fn state_of(name: &str) -> i32 {
    OrderState::from_str_name(&format!("ORDER_STATE_{name}")).map_or(0, |s| s as i32)
}

impl OrderRow {
    /// Whether it is closed (handed back or shipped).
    pub fn closed(&self) -> bool {
        super::rules::closed(OrderState::try_from(state_of(&self.state)).unwrap_or_default())
    }

    /// Its centre.
    pub fn centre_id(&self) -> Uuid {
        self.centre_id
    }

    /// The order as the API shows it.
    pub fn to_proto(&self) -> pb::RepairOrder {
        pb::RepairOrder {
            id: self.id.to_string(),
            number: format!("R{:08}", self.number),
            kind: OrderKind::from_str_name(&format!("ORDER_KIND_{}", self.kind))
                .map_or(0, |k| k as i32),
            centre_id: self.centre_id.to_string(),
            state: state_of(&self.state),
            ticket_id: self.ticket_id.clone(),
            customer_id: self.customer_id.clone(),
            contact_name: self.contact_name.clone(),
            contact_phone: self.contact_phone.clone(),
            product_model: self.product_model.clone(),
            serial_number: self.serial_number.clone(),
            fault_description: self.fault_description.clone(),
            fault_reproduced: self.fault_reproduced,
            configuration: self.configuration.clone(),
            accessories: self.accessories.clone(),
            quote: (!self.quote_currency.is_empty()).then(|| Money {
                currency_code: self.quote_currency.clone(),
                units: self.quote_units,
                nanos: self.quote_nanos,
            }),
            paid: self.paid,
            service_record: self.service_record.clone(),
            inbound_carrier: self.inbound_carrier.clone(),
            inbound_tracking: self.inbound_tracking.clone(),
            outbound_carrier: self.outbound_carrier.clone(),
            outbound_tracking: self.outbound_tracking.clone(),
            signed_by: self.signed_by.clone(),
            counter_wait_seconds: self.counter_wait_s,
            receipt_issued: self.receipt_digest.is_some(),
            due_time: Some(convert::timestamp(self.due_time)),
            created: Some(convert::stamp(self.create_time, &self.created_by)),
            updated: Some(convert::stamp(self.update_time, &self.updated_by)),
            priority: OrderPriority::from_str_name(&format!("ORDER_PRIORITY_{}", self.priority))
                .map_or(0, |p| p as i32),
            warning_time: self.warning_time.map(convert::timestamp),
            breach_time: self.breach_time.map(convert::timestamp),
        }
    }
}

/// What a new order stores beyond what it was given.
pub struct Insert<'a> {
    /// Its id.
    pub id: Uuid,
    /// The order as given.
    pub order: &'a pb::RepairOrder,
    /// The centre.
    pub centre: &'a pb::Centre,
    /// Its first state.
    pub state: OrderState,
    /// Its turnaround deadline.
    pub due: OffsetDateTime,
    /// Carry-in: the customer's arrival at the counter.
    pub arrival: Option<OffsetDateTime>,
}

/// Stores a new order.
pub async fn insert(
    tx: &mut PgConnection,
    i: &Insert<'_>,
    now: OffsetDateTime,
    actor: &str,
) -> Result<OrderRow> {
    let o = i.order;
    let kind = OrderKind::try_from(o.kind).unwrap_or_default();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO repair_orders (id, kind, centre_id, partner_id, state, ticket_id, customer_id, \
         contact_name, contact_phone, product_model, serial_number, fault_description, \
         inbound_carrier, inbound_tracking, arrival_time, due_time, create_time, created_by, \
         update_time, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, \
         $14, $15, $16, $17, $18, $17, $18) RETURNING {COLUMNS}"
    )))
    .bind(i.id)
    .bind(stored(kind.as_str_name(), "ORDER_KIND_"))
    .bind(Uuid::parse_str(&i.centre.id).unwrap_or_default())
    .bind(&i.centre.partner_id)
    .bind(stored(i.state.as_str_name(), "ORDER_STATE_"))
    .bind(&o.ticket_id)
    .bind(&o.customer_id)
    .bind(&o.contact_name)
    .bind(&o.contact_phone)
    .bind(&o.product_model)
    .bind(&o.serial_number)
    .bind(&o.fault_description)
    .bind(&o.inbound_carrier)
    .bind(&o.inbound_tracking)
    .bind(i.arrival)
    .bind(i.due)
    .bind(now)
    .bind(actor)
    .fetch_one(&mut *tx)
    .await?)
}

/// One order, locked for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection, id: Uuid) -> Result<Option<OrderRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM repair_orders WHERE id = $1 FOR UPDATE"
    )))
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?)
}

/// One order in `scope`.
pub async fn get(conn: &mut PgConnection, scope: &Scope, id: Uuid) -> Result<Option<OrderRow>> {
    let mut b = QueryBuilder::new(format!("SELECT {COLUMNS} FROM repair_orders WHERE id = "));
    b.push_bind(id);
    push_scope(&mut b, scope);
    Ok(b.build_query_as().fetch_optional(&mut *conn).await?)
}

/// What a step changes beyond the order's shown fields.
pub struct Hidden<'a> {
    /// Repaired while the customer waited.
    pub repaired_while_waiting: bool,
    /// The receipt's digest.
    pub receipt_digest: Option<&'a [u8]>,
    /// Closed now (handed back or shipped).
    pub closed: bool,
}

/// Writes order `o` after a step.
pub async fn save(
    tx: &mut PgConnection,
    o: &pb::RepairOrder,
    h: &Hidden<'_>,
    now: OffsetDateTime,
    actor: &str,
) -> Result<OrderRow> {
    let state = OrderState::try_from(o.state).unwrap_or_default();
    let quote = o.quote.clone().unwrap_or_default();
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE repair_orders SET state = $2, fault_reproduced = $3, configuration = $4, \
         accessories = $5, quote_currency = $6, quote_units = $7, quote_nanos = $8, paid = $9, \
         service_record = $10, inbound_carrier = $11, inbound_tracking = $12, \
         outbound_carrier = $13, outbound_tracking = $14, signed_by = $15, counter_wait_s = $16, \
         repaired_while_waiting = $17, receipt_digest = $18, update_time = $19, updated_by = $20, \
         close_time = CASE WHEN $21 THEN $19 ELSE close_time END \
         WHERE id = $1 RETURNING {COLUMNS}"
    )))
    .bind(Uuid::parse_str(&o.id).unwrap_or_default())
    .bind(stored(state.as_str_name(), "ORDER_STATE_"))
    .bind(o.fault_reproduced)
    .bind(&o.configuration)
    .bind(&o.accessories)
    .bind(&quote.currency_code)
    .bind(quote.units)
    .bind(quote.nanos)
    .bind(o.paid)
    .bind(&o.service_record)
    .bind(&o.inbound_carrier)
    .bind(&o.inbound_tracking)
    .bind(&o.outbound_carrier)
    .bind(&o.outbound_tracking)
    .bind(&o.signed_by)
    .bind(o.counter_wait_seconds)
    .bind(h.repaired_while_waiting)
    .bind(h.receipt_digest)
    .bind(now)
    .bind(actor)
    .bind(h.closed)
    .fetch_one(&mut *tx)
    .await?)
}

/// Orders in `scope` (of `centre` when given; open ones unless `include_closed`), by
/// turnaround deadline after `after`.
pub async fn list(
    conn: &mut PgConnection,
    scope: &Scope,
    centre: Option<Uuid>,
    include_closed: bool,
    after: Option<(OffsetDateTime, Uuid)>,
    limit: i64,
) -> Result<Vec<OrderRow>> {
    let mut b = QueryBuilder::new(format!("SELECT {COLUMNS} FROM repair_orders WHERE true"));
    push_scope(&mut b, scope);
    if let Some(centre) = centre {
        b.push(" AND centre_id = ").push_bind(centre);
    }
    if !include_closed {
        b.push(" AND close_time IS NULL");
    }
    if let Some((due, id)) = after {
        b.push(" AND (due_time, id) > (")
            .push_bind(due)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    b.push(" ORDER BY due_time, id LIMIT ").push_bind(limit);
    Ok(b.build_query_as().fetch_all(&mut *conn).await?)
}
