//! The complaints service's state and what its capabilities share: the scope rule (the
//! organisation's staff see every complaint, a partner only those about its centres, without
//! the customer's comments about its staff), the events it publishes, and errors.

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
use crm_proto::complaints::v1 as pb;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::rules::ComplaintSettings;

/// The topic of the complaints service's events.
pub const TOPIC: &str = crate::NAME;
/// A complaint was taken in: the customer's acknowledgement (payload: a ComplaintEvent).
pub const RECEIVED: &str = "complaints.received";
/// A complaint was judged and routed by its kind (payload: a ComplaintEvent naming where):
/// a product complaint to the product department, a service complaint into the service flow
/// (the tickets service opens or reopens a ticket), a staff complaint to supervisors.
pub const ROUTED: &str = "complaints.routed";
/// A product complaint was fed back to the product department (payload: a ComplaintEvent with
/// the department's code and roles): its people are told.
pub const ROUTED_TO_DEPARTMENT: &str = "complaints.routed_to_department";
/// A staff complaint went to the staff member's supervisors and the person responsible
/// (payload: a ComplaintEvent; the complaint names the staff member).
pub const ROUTED_TO_SUPERVISOR: &str = "complaints.routed_to_supervisor";
/// A complaint took a step (payload: a ComplaintEvent with the transition).
pub const CHANGED: &str = "complaints.changed";
/// An approved plan is told to the customer (payload: a ComplaintEvent).
pub const PLAN_APPROVED: &str = "complaints.plan_approved";
/// The committed deadline moved: the customer is told (payload: a ComplaintEvent).
pub const DEADLINE_MOVED: &str = "complaints.deadline_moved";
/// A deadline is close (payload: a ComplaintEvent naming it).
pub const DEADLINE_WARNING: &str = "complaints.deadline_warning";
/// A deadline was missed (payload: a ComplaintEvent naming it). Urgent.
pub const DEADLINE_BREACHED: &str = "complaints.deadline_breached";

/// Who sees which complaints (G-2): the organisation's staff every one; a partner (user or API
/// key) only those about its own centres' work. Out of scope is `NOT_FOUND`.
pub(crate) const GRANTS: Grants = Grants {
    all: &[
        Role::Admin,
        Role::ComplaintOfficer,
        Role::CrmLead,
        Role::Supervisor,
        Role::TechCenter,
        Role::TechSupport,
        Role::HotlineAgent,
        Role::HotlineEngineer,
        Role::Coordinator,
        Role::SalesManager,
    ],
    own: &[],
    region: &[],
    organisation: &[Role::Partner],
    partnered: &[],
};

/// The column the complaints table holds its scope in.
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

/// What a complaint about `partner_id`'s centre is checked on.
pub(crate) fn holder(partner_id: &str) -> Holder<'_> {
    Holder {
        organisation: partner_id,
        ..Holder::default()
    }
}

/// The complaint as `caller` may read it: a caller who sees it only as the partner it is about
/// does not see the customer's comments about its staff, nor the contact's phone and e-mail.
pub(crate) fn view(mut c: pb::Complaint, caller: &Principal) -> pb::Complaint {
    if !caller.has_any(GRANTS.all) {
        c.staff_comment.clear();
        c.staff_id.clear();
        c.contact_phone.clear();
        c.contact_email.clear();
    }
    c
}

/// `NOT_FOUND` for complaint `id`.
pub(crate) fn not_found(id: impl ToString) -> Error {
    Error::NotFound {
        kind: "complaint",
        id: id.to_string(),
    }
}

/// The subject of a complaint's history, timers and audit.
pub(crate) fn subject(id: &str) -> String {
    format!("complaints/{id}")
}

/// Publishes `event_type` about `event`'s complaint in `tx`, urgent when `urgent`.
pub(crate) async fn publish(
    tx: &mut PgConnection,
    call: &Call,
    now: OffsetDateTime,
    event_type: &str,
    event: &pb::ComplaintEvent,
    urgent: bool,
) -> Result<()> {
    let id = event.complaint.as_ref().map_or("", |c| c.id.as_str());
    events::publish(
        tx,
        call,
        now,
        NewEvent {
            topic: TOPIC,
            event_type,
            aggregate: &subject(id),
            payload: Payload::of(event),
            urgent,
        },
    )
    .await?;
    Ok(())
}

/// The complaints service's state.
#[derive(Clone)]
pub struct Complaints {
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    pub(crate) pager: Pager,
    pub(crate) settings: Arc<ComplaintSettings>,
    pub(crate) calendar: Arc<Calendar>,
    pub(crate) timers: Timers,
}

impl Complaints {
    /// The service over `pool` (already migrated).
    pub fn new(
        pool: PgPool,
        clock: Clock,
        pager: Pager,
        settings: Arc<ComplaintSettings>,
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

    /// The Redis side of the timers.
    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// Locks complaint `id` for a change by the caller (in their scope), at `version` (0: any).
    pub(crate) async fn lock(
        &self,
        tx: &mut PgConnection,
        id: uuid::Uuid,
        version: i64,
        call: &Call,
    ) -> Result<crate::store::Record> {
        let scope = scope(&call.principal);
        let r = crate::store::get(tx, id, true)
            .await?
            .filter(|r| scope.permits(holder(&r.complaint.partner_id)))
            .ok_or_else(|| not_found(id))?;
        if version != 0 && version != r.complaint.version {
            return Err(Error::StaleVersion {
                kind: "complaint",
                id: id.to_string(),
                given: version,
                current: r.complaint.version,
            });
        }
        Ok(r)
    }
}
