//! The tickets service's use cases: each a transaction that changes the ticket, its history,
//! its SLA timers and its outbox events together; timers are armed in Redis after the commit.

use std::sync::Arc;

use crm_kit::{
    Clock, Error, Result, Role, audit,
    auth::Principal,
    calendar::Calendar,
    context::Call,
    convert, directory,
    events::{self, NewEvent, Payload},
    idempotency::{Begun, RequestKey},
    paging::Pager,
    timers::{self, NewTimer, Timers},
};
use crm_proto::{
    common::v1::PageRequest,
    tickets::v1::{self as pb, Deadline, TicketState, Transition},
};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{self, TicketSettings, TransitionInput},
    store::{self, Record},
};

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

/// Whether the caller may act on any ticket, not only those assigned to them.
pub(crate) fn supervising(caller: &Principal) -> bool {
    caller.has_any(SUPERVISING)
}

/// Which tickets a caller may see (G-2), the same for the work queue and for every read or
/// change of one ticket: an engineer (not supervising) only those assigned to them, a caller
/// with a region only that region's (admins all). Out of scope is `NOT_FOUND`, as if the
/// ticket did not exist.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    /// Only tickets assigned to this engineer.
    pub assignee: Option<String>,
    /// Only tickets of this region.
    pub region: Option<String>,
}

impl Scope {
    /// The scope of `caller`.
    pub fn of(caller: &Principal) -> Self {
        Self {
            assignee: (caller.has(ENGINEER) && !supervising(caller))
                .then(|| caller.subject.clone()),
            region: (!caller.region.is_empty() && !caller.has(Role::Admin))
                .then(|| caller.region.clone()),
        }
    }

    /// Whether `ticket` is in the scope.
    pub fn allows(&self, ticket: &pb::Ticket) -> bool {
        self.assignee
            .as_ref()
            .is_none_or(|a| *a == ticket.assignee_id)
            && self.region.as_ref().is_none_or(|r| *r == ticket.region)
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

#[derive(Serialize, Deserialize)]
struct QueueKey(Option<i64>, Uuid);

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

    /// The engineer a dispatch goes to (T-6): the one named, who must be an engineer; else a
    /// VIP or core customer's usual engineer; else the engineer of the ticket's region with the
    /// fewest tickets in hand.
    async fn choose_engineer(
        &self,
        tx: &mut PgConnection,
        t: &pb::Ticket,
        named: &str,
    ) -> Result<String> {
        if !named.is_empty() {
            if directory::region_of(tx, named, ENGINEER).await?.is_none() {
                return Err(Error::precondition(
                    "NOT_AN_ENGINEER",
                    format!(
                        "{named} is not an engineer (users with the engineer role, as the gateway announces them)"
                    ),
                ));
            }
            return Ok(named.to_string());
        }
        let customer = Uuid::parse_str(&t.customer_id).map_err(|e| Error::Internal(e.into()))?;
        if self.settings.sla(&t.tier).dedicated_engineer
            && let Some(usual) = crate::usual::of(tx, customer)
                .await?
                .filter(|u| !u.engineer_id.is_empty())
        {
            // still an engineer (roles change): else by load
            if directory::region_of(tx, &usual.engineer_id, ENGINEER)
                .await?
                .is_some()
            {
                return Ok(usual.engineer_id);
            }
            tracing::info!(%customer, usual = %usual.engineer_id, "the usual engineer is no longer an engineer: dispatching by load");
        }
        let working: Vec<String> = domain::WORKING
            .iter()
            .map(|s| s.as_str_name().to_string())
            .collect();
        store::least_loaded_engineer(tx, &t.region, &working)
            .await?
            .ok_or_else(|| {
                Error::precondition(
                    "NO_ENGINEER",
                    format!(
                        "no engineer works in region {}: name the engineer",
                        t.region
                    ),
                )
            })
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
        let warning = if business {
            let total = self.calendar.between(from, due);
            self.calendar
                .add(from, scaled(total, self.settings.warning_at))
        } else {
            from + scaled(due - from, self.settings.warning_at)
        };
        [(due, false), (warning, true)]
            .into_iter()
            .map(|(at, w)| NewTimer {
                kind: domain::timer_kind(deadline, w).into(),
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

    /// Opens a ticket with its deadlines running.
    pub async fn create(
        &self,
        key: RequestKey,
        mut ticket: pb::Ticket,
        call: &Call,
    ) -> Result<pb::CreateTicketResponse> {
        let customer =
            Uuid::parse_str(&ticket.customer_id).map_err(|e| Error::Internal(e.into()))?;
        let tier = self.known_customer(customer, "ticket.customer_id").await?;
        let mut tx = match key.begin(&self.pool).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
        let now = self.clock.now();
        let actor = call.principal.subject.as_str();
        let id = Uuid::now_v7().to_string();
        let sla = self.settings.sla(&tier);
        let response_due = self
            .calendar
            .add(now, time::Duration::minutes(sla.response_minutes));
        let handoff_due = now + time::Duration::minutes(self.settings.handoff_minutes);
        let resolution_due = self
            .calendar
            .add(now, time::Duration::hours(sla.resolution_hours));
        // only the intake fields come from the request; the rest is the service's
        ticket = pb::Ticket {
            channel: ticket.channel,
            customer_id: ticket.customer_id,
            region: ticket.region,
            contact_name: ticket.contact_name,
            contact_phone: ticket.contact_phone,
            product_model: ticket.product_model,
            serial_number: ticket.serial_number,
            symptom: ticket.symptom,
            warranty: ticket.warranty,
            service_mode: ticket.service_mode,
            price_policy_told: ticket.price_policy_told,
            accepted_quote: ticket.accepted_quote,
            contact_language: ticket.contact_language,
            id: id.clone(),
            tier,
            state: TicketState::New as i32,
            priority: pb::Priority::Normal as i32,
            assignee_id: String::new(),
            response_due: ts(response_due),
            handoff_due: ts(handoff_due),
            resolution_due: ts(resolution_due),
            breaches: Vec::new(),
            satisfaction: 0,
            satisfaction_refusal: String::new(),
            version: 1,
            created: Some(convert::stamp(now, actor)),
            updated: Some(convert::stamp(now, actor)),
            ..Default::default()
        };
        ticket.number = store::save(
            &mut tx,
            &Record {
                ticket: ticket.clone(),
                ..Default::default()
            },
        )
        .await?;
        let uuid = Uuid::parse_str(&id).expect("made above");
        store::insert_history(
            &mut tx,
            uuid,
            &pb::TicketHistoryEntry {
                to_state: TicketState::New as i32,
                reason: "opened".into(),
                ..Default::default()
            },
            now,
            actor,
        )
        .await?;
        let mut new = self.deadline_timers(&id, Deadline::Response, now, response_due, true);
        new.extend(self.deadline_timers(&id, Deadline::Handoff, now, handoff_due, false));
        new.extend(self.deadline_timers(&id, Deadline::Resolution, now, resolution_due, true));
        let armed = timers::schedule(&mut tx, &new, now).await?;
        Self::publish(&mut tx, call, now, CREATED, &ticket, false).await?;
        audit::record(&mut tx, call, now, &subject(&id), &["ticket"]).await?;
        let response = pb::CreateTicketResponse {
            ticket: Some(ticket),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// Waits for `customer` to be known here (from the customers service's events), up to
    /// `tickets.customer_wait_ms`: a ticket is for a customer that exists (T-1). Its tier; a
    /// customer not known is `INVALID_ARGUMENT` on `field`.
    pub(crate) async fn known_customer(&self, customer: Uuid, field: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + self.settings.customer_wait;
        loop {
            let mut conn = self.pool.acquire().await?;
            if let Some(tier) = store::tier(&mut conn, customer).await? {
                return Ok(tier);
            }
            drop(conn);
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::invalid(
                    field,
                    format!("no customer {customer} is known"),
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// One ticket, if in the caller's scope.
    pub async fn get(&self, id: Uuid, caller: &Principal) -> Result<pb::Ticket> {
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, id, false)
            .await?
            .map(|r| r.ticket)
            .filter(|t| Scope::of(caller).allows(t))
            .ok_or_else(|| not_found(id))
    }

    /// A work queue, earliest deadline first, scoped by the caller: with no states given, the
    /// caller's roles choose the queue; an engineer sees only their own tickets, a caller with a
    /// region only that region's (admins see all).
    pub async fn queue(
        &self,
        filter: Option<&pb::TicketFilter>,
        page: Option<&PageRequest>,
        call: &Call,
    ) -> Result<pb::ListTicketsResponse> {
        let mut f = filter.cloned().unwrap_or_default();
        let caller = &call.principal;
        let scope = Scope::of(caller);
        if let Some(me) = scope.assignee {
            if !f.assignee_id.is_empty() && f.assignee_id != me {
                return Err(Error::PermissionDenied {
                    permission: "the queue of another engineer".into(),
                });
            }
            f.assignee_id = me;
        }
        if let Some(region) = scope.region {
            if !f.region.is_empty() && f.region != region {
                return Err(Error::PermissionDenied {
                    permission: format!("tickets of region {}", f.region),
                });
            }
            f.region = region;
        }
        let mut states: Vec<String> = Vec::new();
        for (i, s) in f.states.iter().enumerate() {
            match TicketState::try_from(*s) {
                Ok(TicketState::Unspecified) | Err(_) => {
                    return Err(Error::invalid(
                        format!("filter.states[{i}]"),
                        "is not a ticket state",
                    ));
                }
                Ok(s) => states.push(s.as_str_name().to_string()),
            }
        }
        if states.is_empty() {
            states = domain::role_queue(&caller.roles)
                .as_deref()
                .unwrap_or(domain::OPEN)
                .iter()
                .map(|s| s.as_str_name().to_string())
                .collect();
        }
        let filter_key = format!("{}|{}|{}", states.join(","), f.assignee_id, f.region);
        let page = self.pager.read::<QueueKey>(page, &filter_key)?;
        let after = page.after.as_ref().map(|k| {
            (
                k.0.and_then(|ms| {
                    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000).ok()
                }),
                k.1,
            )
        });
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::queue(
            &mut conn,
            &states,
            (!f.assignee_id.is_empty()).then_some(f.assignee_id.as_str()),
            (!f.region.is_empty()).then_some(f.region.as_str()),
            after,
            page.limit(),
        )
        .await?;
        let next = self
            .pager
            .finish(&page, &mut rows, &filter_key, |(r, due)| {
                QueueKey(
                    due.map(|d| {
                        i64::try_from(d.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
                    }),
                    Uuid::parse_str(&r.ticket.id).unwrap_or_default(),
                )
            });
        Ok(pb::ListTicketsResponse {
            tickets: rows.into_iter().map(|(r, _)| r.ticket).collect(),
            page: Some(next),
        })
    }

    /// Locks a ticket for a change by `caller` (in their scope), at `version` (0: any).
    pub(crate) async fn lock(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        version: i64,
        caller: &Principal,
    ) -> Result<Record> {
        let record = store::get(tx, id, true)
            .await?
            .filter(|r| Scope::of(caller).allows(&r.ticket))
            .ok_or_else(|| not_found(id))?;
        if version != 0 && version != record.ticket.version {
            return Err(Error::StaleVersion {
                kind: "ticket",
                id: id.to_string(),
                given: version,
                current: record.ticket.version,
            });
        }
        Ok(record)
    }

    /// Updates intake fields.
    pub async fn update(
        &self,
        id: Uuid,
        patch: &pb::Ticket,
        mask: &[String],
        call: &Call,
    ) -> Result<pb::Ticket> {
        let mut tx = self.pool.begin().await?;
        let mut record = self
            .lock(&mut tx, id, patch.version, &call.principal)
            .await?;
        if record.ticket.state == TicketState::Closed as i32 {
            return Err(Error::precondition(
                "TICKET_CLOSED",
                "a closed ticket cannot be changed",
            ));
        }
        domain::apply_update(&mut record.ticket, patch, mask)?;
        let now = self.clock.now();
        record.ticket.version += 1;
        record.ticket.updated = Some(convert::stamp(now, &call.principal.subject));
        store::save(&mut tx, &record).await?;
        let fields: Vec<&str> = mask.iter().map(String::as_str).collect();
        audit::record(&mut tx, call, now, &subject(&record.ticket.id), &fields).await?;
        tx.commit().await?;
        Ok(record.ticket)
    }

    /// Moves a ticket by a named transition, with its deadlines.
    pub async fn transition(
        &self,
        key: RequestKey,
        input: TransitionInput,
        call: &Call,
    ) -> Result<pb::TransitionTicketResponse> {
        let mut tx = match key.begin(&self.pool).await? {
            Begun::Replay(previous) => return Ok(previous),
            Begun::Fresh(tx) => tx,
        };
        let mut record = self
            .lock(&mut tx, input.id, input.version, &call.principal)
            .await?;
        let t = &mut record.ticket;
        let from = TicketState::try_from(t.state).unwrap_or(TicketState::Unspecified);
        let to = domain::next_state(from, input.transition)?;
        if domain::hands_on(input.transition) {
            let missing = domain::missing(t);
            if !missing.is_empty() {
                return Err(Error::precondition(
                    "TICKET_INCOMPLETE",
                    format!(
                        "the ticket cannot be handed on before these are filled in: {}",
                        missing.join(", ")
                    ),
                ));
            }
        }
        let caller = &call.principal;
        if domain::engineer_step(input.transition)
            && caller.subject != t.assignee_id
            && !supervising(caller)
        {
            return Err(Error::PermissionDenied {
                permission: format!(
                    "{} on a ticket assigned to another engineer",
                    input.transition.as_str_name()
                ),
            });
        }
        let now = self.clock.now();
        let id = t.id.clone();
        let was_second_service = t.second_service;
        // deadlines that stop running
        for deadline in domain::deadlines_ended_by(to) {
            for warning in [false, true] {
                timers::cancel(
                    &mut tx,
                    &subject(&id),
                    Some(domain::timer_kind(*deadline, warning)),
                )
                .await?;
            }
            match deadline {
                Deadline::Response => t.response_due = None,
                Deadline::Handoff => t.handoff_due = None,
                Deadline::Resolution => {
                    if to == TicketState::WaitingForCustomer
                        && let Some(due) = at(t.resolution_due.as_ref())
                    {
                        // to the microsecond: whole seconds lost up to one at every pause
                        record.resolution_left_us = Some(
                            i64::try_from(self.calendar.between(now, due).whole_microseconds())
                                .unwrap_or(i64::MAX),
                        );
                    }
                    t.resolution_due = None;
                }
                Deadline::Escalation | Deadline::Unspecified => {}
            }
        }
        // deadlines that start
        let mut new = Vec::new();
        match (input.transition, to) {
            (Transition::HandToHotlineEngineer, _) => {
                let due = now + time::Duration::minutes(self.settings.handoff_minutes);
                t.handoff_due = ts(due);
                new.extend(self.deadline_timers(&id, Deadline::Handoff, now, due, false));
            }
            (Transition::Dispatch, _) => {
                t.assignee_id = self.choose_engineer(&mut tx, t, &input.assignee_id).await?;
                t.parts_to_prepare.clone_from(&input.parts_to_prepare);
                t.contact_time = None;
                t.arrival_time = None;
                t.contact_due = ts(self
                    .calendar
                    .add(now, time::Duration::minutes(self.settings.contact_minutes)));
            }
            (Transition::StartWork, _) => {
                t.contact_time = ts(now);
                // work taken today is recorded today (T-9): a reminder at the day's close
                new.push(NewTimer {
                    kind: RECORD_DUE_TIMER.into(),
                    subject: subject(&id),
                    due: self.calendar.closing(now),
                    payload: serde_json::json!({ "started": now.unix_timestamp() }),
                });
            }
            (Transition::Resume, _) => {
                let left =
                    time::Duration::microseconds(record.resolution_left_us.take().unwrap_or(0));
                let due = self.calendar.add(now, left);
                t.resolution_due = ts(due);
                new.extend(self.deadline_timers(&id, Deadline::Resolution, now, due, true));
            }
            (Transition::RecordUnfinishedVisit, _) => {
                let record = input.record.as_ref().expect("checked with the input");
                let visit = at(record.second_visit_time.as_ref()).unwrap_or(now);
                if visit <= now {
                    return Err(Error::invalid(
                        "service_record.second_visit_time",
                        "must be in the future",
                    ));
                }
                t.second_service = true;
                t.second_service_reason
                    .clone_from(&record.unfinished_reason);
            }
            (Transition::RecordArrival, _) => t.arrival_time = ts(now),
            (Transition::Resolve, _)
                if domain::needs_arrival(t.service_mode) && t.arrival_time.is_none() =>
            {
                return Err(Error::precondition(
                    "ARRIVAL_NOT_RECORDED",
                    "record the arrival (on site or in the workshop) before resolving",
                ));
            }
            (Transition::Close, _) => {
                if t.escalation
                    .as_ref()
                    .is_some_and(|e| crate::escalations::escalation_open(e.state))
                {
                    return Err(Error::precondition(
                        "ESCALATION_OPEN",
                        "the ticket's escalation is still open: it is tracked to its end first",
                    ));
                }
                t.satisfaction = input.satisfaction;
                if input.satisfaction == 0 {
                    t.satisfaction_refusal.clone_from(&input.reason);
                }
            }
            _ => {}
        }
        if let Some(record) = &input.record {
            // a record made after an unfinished visit is of a second service, and says why
            let mut record = record.clone();
            if was_second_service {
                record.second_service = true;
                record
                    .second_service_reason
                    .clone_from(&t.second_service_reason);
            }
            store::insert_service_record(&mut tx, input.id, &record, now, &caller.subject).await?;
        }
        t.state = to as i32;
        t.version += 1;
        t.updated = Some(convert::stamp(now, &caller.subject));
        store::save(&mut tx, &record).await?;
        let uuid = input.id;
        store::insert_history(
            &mut tx,
            uuid,
            &pb::TicketHistoryEntry {
                transition: input.transition as i32,
                from_state: from as i32,
                to_state: to as i32,
                reason: input.reason.clone(),
                ..Default::default()
            },
            now,
            &caller.subject,
        )
        .await?;
        let armed = timers::schedule(&mut tx, &new, now).await?;
        // read back with its service records
        let record = store::get(&mut tx, uuid, false)
            .await?
            .ok_or_else(|| not_found(uuid))?;
        let t = &record.ticket;
        let event = match input.transition {
            Transition::Dispatch => Some(DISPATCHED),
            Transition::Resolve => Some(RESOLVED),
            _ => None,
        };
        if let Some(event) = event {
            Self::publish(&mut tx, call, now, event, t, false).await?;
        }
        if input.transition == Transition::Resolve {
            // service history: who resolved it becomes the customer's usual engineer
            self.learn_usual_engineer(&mut tx, call, now, t).await?;
        }
        audit::record(&mut tx, call, now, &subject(&id), &["state"]).await?;
        let response = pb::TransitionTicketResponse {
            ticket: Some(t.clone()),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// A ticket's history, oldest first.
    pub async fn history(
        &self,
        id: Uuid,
        page: Option<&PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListTicketHistoryResponse> {
        let filter = id.to_string();
        let page = self.pager.read::<Uuid>(page, &filter)?;
        let mut conn = self.pool.acquire().await?;
        let visible = store::get(&mut conn, id, false)
            .await?
            .is_some_and(|r| Scope::of(caller).allows(&r.ticket));
        if !visible {
            return Err(not_found(id));
        }
        let mut entries = store::history(&mut conn, id, page.after, page.limit()).await?;
        let next = self.pager.finish(&page, &mut entries, &filter, |e| {
            Uuid::parse_str(&e.id).unwrap_or_default()
        });
        Ok(pb::ListTicketHistoryResponse {
            entries,
            page: Some(next),
        })
    }
}
