//! The tickets service's state and what its capabilities share: the events it publishes, the
//! scope rule, the deadline timers and the publishing of a ticket. The use cases are in the
//! capability folders (`intake`, `lifecycle`, `escalations`, `usual`, `sla`, `tiers`): each a
//! transaction that changes the ticket, its history, its SLA timers and its outbox events
//! together; timers are armed in Redis after the commit.

use std::sync::Arc;

use crm_kit::{
    Clock, Error, Result, Role,
    auth::Principal,
    calendar::Calendar,
    context::Call,
    convert,
    events::{self, NewEvent, Payload},
    paging::Pager,
    scope,
    timers::{NewTimer, Timers},
};
use crm_proto::tickets::v1::{self as pb, Deadline};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

use crate::rules::TicketSettings;

/// The topics the tickets service consumes: the gateway's users (the engineers), then the
/// customers' tiers.
pub const TOPICS_CONSUMED: &[&str] = &["gateway", "customers"];

/// The topic of the tickets service's events.
pub const TOPIC: &str = crate::NAME;
/// A ticket was opened (payload: the Ticket).
pub const CREATED: &str = "tickets.created";
/// A ticket was dispatched to an engineer (payload: the Ticket).
pub const DISPATCHED: &str = "tickets.dispatched";
/// A ticket was resolved (payload: the Ticket).
pub const RESOLVED: &str = "tickets.resolved";
/// A deadline is close (payload: the Ticket).
pub const SLA_WARNING: &str = "tickets.sla_warning";
/// A deadline was missed (payload: the Ticket, its last breach the new one). Urgent.
pub const SLA_BREACHED: &str = "tickets.sla_breached";
/// Work started on a day has no service record at that day's close (T-9; payload: the Ticket).
pub const RECORD_DUE: &str = "tickets.record_due";
/// An escalation was applied for; the hotline engineers filter it (payload: the Ticket with
/// the escalation).
pub const ESCALATION_REQUESTED: &str = "tickets.escalation_requested";
/// An escalation was rejected by the hotline engineer (payload: the Ticket).
pub const ESCALATION_REJECTED: &str = "tickets.escalation_rejected";
/// An escalation was routed to its department (payload: the Ticket); urgent for a major
/// quality problem.
pub const ESCALATION_ROUTED: &str = "tickets.escalation_routed";
/// An escalation was routed, progressed or resolved: the customer is told (payload: the
/// Ticket).
pub const ESCALATION_CHANGED: &str = "tickets.escalation_changed";
/// A customer's usual engineer changed (from service history or by a manager); the payload is
/// a `crm.tickets.v1.UsualEngineer`.
pub const USUAL_ENGINEER_CHANGED: &str = "tickets.usual_engineer_changed";
/// A service complaint opened, reopened or was linked to a ticket (Q-2; payload: the Ticket
/// with its complaint_id): the complaints service links the complaint back.
pub const COMPLAINT_LINKED: &str = "tickets.complaint_linked";
/// The timer kind of the same-day record reminder.
pub(crate) const RECORD_DUE_TIMER: &str = "tickets.record_due";

/// The role tickets are dispatched to.
pub(crate) const ENGINEER: Role = Role::Engineer;

/// Roles that may act on any ticket's engineer steps (accept, start, resolve).
const SUPERVISING: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Coordinator,
    Role::HotlineEngineer,
];

/// Whether the caller is only a partner (a repair centre's user or API key): no staff role
/// besides, so it is limited to the tickets routed to its organisation.
fn only_partner(caller: &Principal) -> bool {
    caller.has(Role::Partner)
        && !Role::ALL
            .iter()
            .any(|r| *r != Role::Partner && caller.has(*r))
}

/// Whether the caller may act on any ticket, not only those assigned to them.
pub(crate) fn supervising(caller: &Principal) -> bool {
    caller.has_any(SUPERVISING)
}

/// Which tickets a caller may see (G-2), the same for the work queue and for every read or
/// change of one ticket: an engineer (not supervising) only those assigned to them, a caller
/// with a region only that region's (admins all). Out of scope is `NOT_FOUND`, as if the
/// ticket did not exist. A partner (a repair centre's user or API key) sees only the tickets
/// routed to its organisation's centres, none without an organisation.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only tickets assigned to this engineer.
    pub assignee: Option<String>,
    /// Only tickets of this region.
    pub region: Option<String>,
    /// Only tickets routed to this partner organisation (empty: none).
    pub partner: Option<String>,
}

impl Scope {
    /// The scope of `caller`.
    pub fn of(caller: &Principal) -> Self {
        // the kit's "own" and "region" rules, combined: both restrict
        Self {
            assignee: scope::own(caller, &[ENGINEER]).filter(|_| !supervising(caller)),
            region: scope::region(caller, &Role::ALL).filter(|_| !caller.has(Role::Admin)),
            partner: only_partner(caller).then(|| caller.partner_id.clone()),
        }
    }

    /// Whether `ticket` is in the scope.
    pub fn allows(&self, ticket: &pb::Ticket) -> bool {
        self.assignee
            .as_ref()
            .is_none_or(|a| *a == ticket.assignee_id)
            && self.region.as_ref().is_none_or(|r| *r == ticket.region)
            && self
                .partner
                .as_ref()
                .is_none_or(|p| !p.is_empty() && *p == ticket.partner_id)
    }
}

/// The tickets service's state.
#[derive(Clone)]
pub struct Tickets {
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    pub(crate) pager: Pager,
    pub(crate) settings: Arc<TicketSettings>,
    pub(crate) calendar: Arc<Calendar>,
    pub(crate) timers: Timers,
}

pub(crate) fn not_found(id: impl ToString) -> Error {
    Error::NotFound {
        kind: "ticket",
        id: id.to_string(),
    }
}

pub(crate) fn subject(id: &str) -> String {
    format!("tickets/{id}")
}

pub(crate) fn ts(t: OffsetDateTime) -> Option<prost_types::Timestamp> {
    Some(convert::timestamp(t))
}

pub(crate) fn at(t: Option<&prost_types::Timestamp>) -> Option<OffsetDateTime> {
    t.and_then(|t| convert::from_timestamp(t).ok())
}

pub(crate) fn scaled(d: time::Duration, f: f64) -> time::Duration {
    time::Duration::seconds_f64(d.as_seconds_f64() * f)
}

impl Tickets {
    /// The service over `pool` (already migrated).
    pub fn new(
        pool: PgPool,
        clock: Clock,
        pager: Pager,
        settings: Arc<TicketSettings>,
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

    /// Timers for `deadline` due at `due` (counted from `from`), with its warning.
    pub(crate) fn deadline_timers(
        &self,
        id: &str,
        deadline: Deadline,
        from: OffsetDateTime,
        due: OffsetDateTime,
        business: bool,
    ) -> Vec<NewTimer> {
        let warning = self
            .calendar
            .fraction(from, due, self.settings.warning_at, business);
        [(due, false), (warning, true)]
            .into_iter()
            .map(|(at, w)| NewTimer {
                kind: crate::sla::rules::timer_kind(deadline, w).into(),
                subject: subject(id),
                due: at,
                payload: serde_json::json!({ "due": convert::timestamp(due).seconds }),
            })
            .collect()
    }

    pub(crate) async fn publish(
        tx: &mut PgConnection,
        call: &Call,
        now: OffsetDateTime,
        event_type: &str,
        ticket: &pb::Ticket,
        urgent: bool,
    ) -> Result<()> {
        let aggregate = subject(&ticket.id);
        events::publish(
            tx,
            call,
            now,
            NewEvent {
                topic: TOPIC,
                event_type,
                aggregate: &aggregate,
                payload: Payload::of(ticket),
                urgent,
            },
        )
        .await?;
        Ok(())
    }
}
