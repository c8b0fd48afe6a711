//! The repairs service's state and what its capabilities share: the scope rule (a partner
//! sees only its own organisation's rows), the rights to manage the catalogue and the
//! centres, and the events it publishes.

use std::sync::Arc;

use crm_kit::{
    Clock, Error, Result, Role,
    auth::Principal,
    calendar::Calendar,
    context::Call,
    events::{self, NewEvent, Payload},
    paging::Pager,
    scope::{Columns, Grants, Holder, Scope},
    timers::Timers,
};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use time::OffsetDateTime;

use crate::rules::RepairSettings;

/// The topic of the repairs service's events.
pub const TOPIC: &str = crate::NAME;
/// A centre's available stock of a part fell below its minimum (payload: a
/// `crm.repairs.v1.StockEvent`); published once per fall.
pub const STOCK_LOW: &str = "repairs.stock_low";

/// A part request was made, issued, settled or cancelled (payload: the PartRequest).
pub const PART_REQUEST_CHANGED: &str = "repairs.part_request_changed";

/// A repair order was registered or took a step (payload: a `crm.repairs.v1.OrderEvent`).
pub const ORDER_CHANGED: &str = "repairs.order_changed";

/// A part was swapped: a removed unit labelled and on its way back (payload: the Swap).
pub const PART_SWAPPED: &str = "repairs.part_swapped";

/// A repair order's turnaround warning fired (payload: a `crm.repairs.v1.TurnaroundEvent`).
pub const TURNAROUND_WARNING: &str = "repairs.turnaround_warning";
/// A repair order missed its turnaround deadline (payload: a
/// `crm.repairs.v1.TurnaroundEvent`). Urgent: the centre's supervisor is told.
pub const TURNAROUND_BREACHED: &str = "repairs.turnaround_breached";

/// A return/exchange request was made or took a step (payload: a `crm.repairs.v1.RmaEvent`);
/// the requester hears of each decision.
pub const RMA_CHANGED: &str = "repairs.rma_changed";
/// An exchanged unit's faulty original is overdue (payload: a `crm.repairs.v1.RmaEvent`).
pub const RMA_RETURN_OVERDUE: &str = "repairs.rma_return_overdue";

/// Who sees which rows (R-1, G-2): the service organisation's own staff see every centre;
/// a partner (user or API key) only the rows of its partner organisation — its centres, their
/// stock and part requests. Out of scope is `NOT_FOUND`, on every method.
pub(crate) const GRANTS: Grants = Grants {
    all: &[
        Role::Admin,
        Role::Supervisor,
        Role::Coordinator,
        Role::HotlineEngineer,
        Role::HotlineAgent,
        Role::Engineer,
        Role::TechCenter,
        Role::TechSupport,
        Role::CrmLead,
    ],
    own: &[],
    region: &[],
    organisation: &[Role::Partner],
    partnered: &[],
};

/// The columns every repairs table holds its scope in: the partner organisation.
pub(crate) const COLUMNS: Columns = Columns {
    owner: None,
    region: None,
    organisation: Some("partner_id"),
    partner: None,
};

/// The caller's scope.
pub(crate) fn scope(caller: &Principal) -> Scope {
    Scope::of(caller, &GRANTS)
}

/// What a row belonging to `partner_id` is checked on.
pub(crate) fn holder(partner_id: &str) -> Holder<'_> {
    Holder {
        organisation: partner_id,
        ..Holder::default()
    }
}

/// The stored name of an enum value: its protobuf name without the enum's `prefix`
/// (`ORDER_STATE_RECEIVED` → `RECEIVED`), as the tables hold states, kinds and outcomes.
pub(crate) fn stored(name: &'static str, prefix: &str) -> &'static str {
    name.trim_start_matches(prefix)
}

/// Restricts a query on a repairs table to `scope`.
pub(crate) fn push_scope(b: &mut QueryBuilder<Postgres>, scope: &Scope) {
    scope.push_sql(b, COLUMNS);
}

/// The roles that manage the centres and the parts catalogue: service managers.
const MANAGING: &[Role] = &[Role::Admin, Role::Supervisor];

/// `PERMISSION_DENIED` unless the caller manages centres and the catalogue.
pub(crate) fn require_managing(caller: &Principal, what: &str) -> Result<()> {
    if caller.has_any(MANAGING) {
        Ok(())
    } else {
        Err(Error::PermissionDenied {
            permission: format!("{what} (service managers)"),
        })
    }
}

/// `NOT_FOUND` for a `kind` with `id`.
pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// The repairs service's state.
#[derive(Clone)]
pub struct Repairs {
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    pub(crate) pager: Pager,
    pub(crate) settings: Arc<RepairSettings>,
    pub(crate) calendar: Arc<Calendar>,
    pub(crate) timers: Timers,
}

impl Repairs {
    /// The service over `pool` (already migrated).
    pub fn new(
        pool: PgPool,
        clock: Clock,
        pager: Pager,
        settings: Arc<RepairSettings>,
        calendar: Arc<Calendar>,
        timers: Timers,
    ) -> Self {
        Self {
            pool,
            clock,
            pager,
            settings,
            calendar,
            timers,
        }
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Publishes a repairs event about `aggregate` in the caller's transaction.
pub(crate) async fn publish<M: prost::Name>(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    event_type: &str,
    aggregate: &str,
    payload: &M,
) -> Result<()> {
    publish_with(tx, call, now, event_type, aggregate, payload, false).await
}

/// [`publish`], urgent when `urgent` (the notifications service sends it at once).
pub(crate) async fn publish_with<M: prost::Name>(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    event_type: &str,
    aggregate: &str,
    payload: &M,
    urgent: bool,
) -> Result<()> {
    events::publish(
        tx,
        call,
        now,
        NewEvent {
            topic: TOPIC,
            event_type,
            aggregate,
            payload: Payload::of(payload),
            urgent,
        },
    )
    .await?;
    Ok(())
}
