//! The lifecycle (T-3, T-6, T-7): named transitions with the deadlines they stop and start,
//! dispatch to the named, usual or least-loaded engineer, service records, and the history.

pub mod rules;

use crm_kit::{
    Error, Result, audit,
    auth::Principal,
    context::Call,
    convert, directory,
    idempotency::RequestKey,
    timers::{self, NewTimer},
};
use crm_proto::{
    common::v1::PageRequest,
    tickets::v1::{self as pb, Deadline, TicketState, Transition},
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    lifecycle::rules::TransitionInput,
    service::{
        DISPATCHED, ENGINEER, RECORD_DUE_TIMER, RESOLVED, Scope, Tickets, at, not_found, subject,
        supervising, ts,
    },
    store,
};

impl Tickets {
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
        let working: Vec<String> = crate::rules::WORKING
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

    /// Moves a ticket by a named transition, with its deadlines.
    pub async fn transition(
        &self,
        key: RequestKey,
        input: TransitionInput,
        call: &Call,
    ) -> Result<pb::TransitionTicketResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut record = self
            .lock(&mut tx, input.id, input.version, &call.principal)
            .await?;
        let t = &mut record.ticket;
        let from = TicketState::try_from(t.state).unwrap_or(TicketState::Unspecified);
        let to = crate::rules::next_state(from, input.transition)?;
        if crate::rules::hands_on(input.transition) {
            let missing = crate::rules::missing(t);
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
        if crate::rules::engineer_step(input.transition)
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
        for deadline in crate::sla::rules::deadlines_ended_by(to) {
            for warning in [false, true] {
                timers::cancel(
                    &mut tx,
                    &subject(&id),
                    Some(crate::sla::rules::timer_kind(*deadline, warning)),
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
                if crate::rules::needs_arrival(t.service_mode) && t.arrival_time.is_none() =>
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
