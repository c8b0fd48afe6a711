//! The pipeline service's state and what its capabilities share: the scope rule (a rep sees
//! their own leads and opportunities, a sales manager their region's, the CRM lead, finance and
//! admins all), the events it publishes, and errors.

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
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::rules::PipelineSettings;

/// The topic of the pipeline's events.
pub const TOPIC: &str = crate::NAME;
/// A lead was recorded, qualified, disqualified or converted (payload: a LeadEvent).
pub const LEAD_CHANGED: &str = "pipeline.lead_changed";
/// An opportunity was opened or changed (payload: an OpportunityEvent).
pub const OPPORTUNITY_CHANGED: &str = "pipeline.opportunity_changed";
/// An opportunity's follow-up log grew (payload: a FollowUpEvent).
pub const FOLLOW_UP_ADDED: &str = "pipeline.follow_up_added";
/// A quote's discount awaits the sales manager (payload: a QuoteEvent).
pub const DISCOUNT_REQUESTED: &str = "pipeline.discount_requested";
/// The sales manager decided on a discount (payload: a QuoteEvent).
pub const DISCOUNT_DECIDED: &str = "pipeline.discount_decided";
/// A quote was saved, copied or sent (payload: a QuoteEvent).
pub const QUOTE_CHANGED: &str = "pipeline.quote_changed";
/// A contract was signed (payload: a ContractEvent): the customers service applies it to the
/// customer.
pub const CONTRACT_SIGNED: &str = "pipeline.contract_signed";
/// A contract was amended (payload: a ContractEvent with the difference).
pub const CONTRACT_AMENDED: &str = "pipeline.contract_amended";
/// A payment was recorded (payload: a PaymentEvent).
pub const PAYMENT_RECORDED: &str = "pipeline.payment_recorded";
/// A payment was voided (payload: a PaymentEvent).
pub const PAYMENT_VOIDED: &str = "pipeline.payment_voided";
/// An instalment's due date passed with less paid than the schedule asked for by then
/// (payload: an InstalmentEvent): the owner is reminded.
pub const INSTALMENT_OVERDUE: &str = "pipeline.instalment_overdue";
/// A rep's open work moved to another (payload: a ReassignWorkRequest).
pub const WORK_REASSIGNED: &str = "pipeline.work_reassigned";

/// Who sees which leads and opportunities (G-2): a rep their own, a sales manager their
/// region's, the CRM lead, finance and admins every one. Out of scope is `NOT_FOUND`.
pub(crate) const GRANTS: Grants = Grants {
    all: &[Role::Admin, Role::CrmLead, Role::Finance],
    own: &[Role::SalesRep],
    region: &[Role::SalesManager],
    organisation: &[],
    partnered: &[],
};

/// The columns leads and opportunities hold their scope in.
pub(crate) const COLUMNS: Columns = Columns {
    owner: Some("owner_id"),
    region: Some("region"),
    organisation: None,
    partner: None,
};

/// The caller's scope: the grants', and a sales manager without a region (the national one)
/// manages every region.
pub(crate) fn scope(caller: &Principal) -> Scope {
    let mut scope = Scope::of(caller, &GRANTS);
    if caller.has(Role::SalesManager) && caller.region.is_empty() {
        scope.all = true;
    }
    scope
}

/// What a row owned by `owner` in `region` is checked on.
pub(crate) fn holder<'a>(owner: &'a str, region: &'a str) -> Holder<'a> {
    Holder {
        owner,
        region,
        ..Holder::default()
    }
}

/// `NOT_FOUND` for a `kind` with `id`.
pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}

/// The roles that decide discounts and reassign work: sales managers (and admins).
pub(crate) const MANAGING: &[Role] = &[Role::Admin, Role::SalesManager];

/// The roles that record and void payments: finance (and admins).
pub(crate) const FINANCE: &[Role] = &[Role::Admin, Role::Finance];

/// `PERMISSION_DENIED` unless the caller manages sales.
pub(crate) fn require_managing(caller: &Principal, what: &str) -> Result<()> {
    if caller.has_any(MANAGING) {
        Ok(())
    } else {
        Err(Error::PermissionDenied {
            permission: format!("{what} (sales managers)"),
        })
    }
}

/// Publishes `event_type` about `aggregate` in `tx`.
pub(crate) async fn publish<M: prost::Name>(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    event_type: &str,
    aggregate: &str,
    payload: &M,
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
            urgent: false,
        },
    )
    .await?;
    Ok(())
}

/// The pipeline service's state.
#[derive(Clone)]
pub struct Pipeline {
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    pub(crate) pager: Pager,
    pub(crate) settings: Arc<PipelineSettings>,
    pub(crate) calendar: Arc<Calendar>,
    pub(crate) timers: Timers,
    /// The customers service, for customers made from leads (`None`: not configured).
    pub(crate) customers: Option<tonic::transport::Channel>,
}

impl Pipeline {
    /// The service over `pool` (already migrated).
    pub fn new(
        pool: PgPool,
        clock: Clock,
        pager: Pager,
        settings: Arc<PipelineSettings>,
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
            customers: None,
        }
    }

    /// The service calling the customers service at `url` to make customers from leads.
    pub fn with_customers(mut self, url: &str) -> anyhow::Result<Self> {
        let channel = tonic::transport::Channel::from_shared(url.to_string())?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(5))
            .connect_lazy();
        self.customers = Some(channel);
        Ok(self)
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Today on the working calendar's clock: close dates, contract years and snapshots are
    /// the working day's, not UTC's.
    pub(crate) fn today(&self) -> time::Date {
        self.clock.now().to_offset(self.calendar.offset()).date()
    }
}
