//! Escalations of hard problems (疑难问题升级, T-8): the engineer applies with the form
//! (product, customer, symptom, time limit), the hotline engineer filters, an approved one is
//! routed by its kind and worked to its resolution; its time limit is a timer on the ticket
//! that breaches like an SLA deadline, and the customer is told of each step.

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, convert, idempotency::RequestKey, timers,
};
use crm_proto::tickets::v1::{self as pb, Deadline, EscalationState, TicketState};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

pub mod rules;
mod store;

pub use rules::{EscalationRequest, escalation_open, parse_note};

use crate::{
    service::{
        ESCALATION_CHANGED, ESCALATION_REJECTED, ESCALATION_REQUESTED, ESCALATION_ROUTED, Tickets,
        subject, supervising, ts,
    },
    store::{self as tickets_store, Record},
};

/// The latest escalation of ticket `id`, with its progress (shown on the ticket).
pub(crate) async fn latest(conn: &mut PgConnection, id: Uuid) -> Result<Option<pb::Escalation>> {
    store::latest_escalation(conn, id).await
}

/// Writes an escalation as it is (the SLA timers mark a missed time limit).
pub(crate) async fn save(tx: &mut PgConnection, e: &pb::Escalation) -> Result<()> {
    store::save_escalation(tx, e).await
}

fn escalation_not_found(id: Uuid) -> Error {
    Error::NotFound {
        kind: "escalation",
        id: id.to_string(),
    }
}

#[derive(Serialize, Deserialize)]
struct EscalationKey(i64, Uuid);

/// One step of an escalation: its new form, the ticket history's note and the events.
struct Step {
    escalation: pb::Escalation,
    history: String,
    events: Vec<(&'static str, bool)>,
    now: OffsetDateTime,
}

impl Tickets {
    /// Ends the ticket's escalation clock: its timers are cancelled.
    async fn stop_escalation_clock(
        &self,
        tx: &mut PgConnection,
        record: &mut Record,
    ) -> Result<()> {
        for warning in [false, true] {
            timers::cancel(
                tx,
                &subject(&record.ticket.id),
                Some(crate::sla::rules::timer_kind(Deadline::Escalation, warning)),
            )
            .await?;
        }
        record.escalation_due = None;
        Ok(())
    }

    /// Saves the escalation and its ticket, with a history entry and the events, in `tx`.
    async fn write_step(
        &self,
        tx: &mut PgConnection,
        record: &mut Record,
        step: Step,
        call: &Call,
    ) -> Result<()> {
        let now = step.now;
        store::save_escalation(tx, &step.escalation).await?;
        let t = &mut record.ticket;
        t.escalation = Some(step.escalation);
        t.version += 1;
        t.updated = Some(convert::stamp(now, &call.principal.subject));
        tickets_store::save(tx, record).await?;
        let t = &record.ticket;
        let id = Uuid::parse_str(&t.id).map_err(|e| Error::Internal(e.into()))?;
        tickets_store::insert_history(
            tx,
            id,
            &pb::TicketHistoryEntry {
                from_state: t.state,
                to_state: t.state,
                reason: step.history,
                ..Default::default()
            },
            now,
            &call.principal.subject,
        )
        .await?;
        for (event, urgent) in step.events {
            Self::publish(tx, call, now, event, t, urgent).await?;
        }
        audit::record(tx, call, now, &subject(&t.id), &["escalation"]).await?;
        Ok(())
    }

    /// The engineer applies to escalate a hard problem on their ticket.
    pub async fn request_escalation(
        &self,
        key: RequestKey,
        input: EscalationRequest,
        call: &Call,
    ) -> Result<pb::RequestEscalationResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut record = self
            .lock(&mut tx, input.ticket_id, 0, &call.principal)
            .await?;
        let t = &record.ticket;
        if !matches!(
            TicketState::try_from(t.state),
            Ok(TicketState::Accepted | TicketState::InProgress | TicketState::WaitingForCustomer)
        ) {
            return Err(Error::precondition(
                "TICKET_NOT_IN_WORK",
                "only a ticket an engineer has accepted can be escalated",
            ));
        }
        let caller = &call.principal;
        if caller.subject != t.assignee_id && !supervising(caller) {
            return Err(Error::PermissionDenied {
                permission: "escalating a ticket assigned to another engineer".into(),
            });
        }
        if t.escalation
            .as_ref()
            .is_some_and(|e| escalation_open(e.state))
        {
            return Err(Error::precondition(
                "ESCALATION_OPEN",
                "the ticket already has an open escalation",
            ));
        }
        let now = self.clock.now();
        let due = self
            .calendar
            .add(now, time::Duration::hours(input.time_limit_hours));
        let stamp = convert::stamp(now, &caller.subject);
        let e = pb::Escalation {
            id: Uuid::now_v7().to_string(),
            ticket_id: t.id.clone(),
            kind: input.kind as i32,
            state: EscalationState::Requested as i32,
            customer_id: t.customer_id.clone(),
            product_model: t.product_model.clone(),
            serial_number: t.serial_number.clone(),
            symptom: if input.symptom.is_empty() {
                t.symptom.clone()
            } else {
                input.symptom
            },
            batch_failure: input.batch_failure,
            due_time: ts(due),
            reason: input.reason.clone(),
            version: 1,
            requested: Some(stamp.clone()),
            updated: Some(stamp),
            ..Default::default()
        };
        let new = self.deadline_timers(&t.id, Deadline::Escalation, now, due, true);
        record.escalation_due = Some(due);
        let note = format!(
            "escalation requested ({}): {}",
            input.kind.as_str_name(),
            input.reason
        );
        let step = Step {
            escalation: e,
            history: note,
            events: vec![(ESCALATION_REQUESTED, false)],
            now,
        };
        self.write_step(&mut tx, &mut record, step, call).await?;
        let armed = timers::schedule(&mut tx, &new, now).await?;
        let response = pb::RequestEscalationResponse {
            escalation: record.ticket.escalation.clone(),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// Locks an escalation's ticket, then the escalation, and checks its state.
    async fn lock_escalation(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        state: EscalationState,
        caller: &Principal,
    ) -> Result<(Record, pb::Escalation)> {
        let ticket = store::get_escalation(tx, id, false)
            .await?
            .ok_or_else(|| escalation_not_found(id))?
            .ticket_id;
        let ticket = Uuid::parse_str(&ticket).map_err(|e| Error::Internal(e.into()))?;
        let record = self
            .lock(tx, ticket, 0, caller)
            .await
            .map_err(|e| match e {
                Error::NotFound { .. } => escalation_not_found(id),
                other => other,
            })?;
        let e = store::get_escalation(tx, id, true)
            .await?
            .ok_or_else(|| escalation_not_found(id))?;
        if e.state != state as i32 {
            return Err(Error::precondition(
                "ESCALATION_STATE",
                format!(
                    "the escalation is {}, not {}",
                    EscalationState::try_from(e.state)
                        .unwrap_or_default()
                        .as_str_name(),
                    state.as_str_name()
                ),
            ));
        }
        Ok((record, e))
    }

    /// The hotline engineer approves (routes) or rejects an escalation.
    pub async fn review_escalation(
        &self,
        key: RequestKey,
        id: Uuid,
        approve: bool,
        note: String,
        call: &Call,
    ) -> Result<pb::ReviewEscalationResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let (mut record, mut e) = self
            .lock_escalation(&mut tx, id, EscalationState::Requested, &call.principal)
            .await?;
        let now = self.clock.now();
        let kind = pb::EscalationKind::try_from(e.kind).unwrap_or_default();
        e.review_note.clone_from(&note);
        e.version += 1;
        e.updated = Some(convert::stamp(now, &call.principal.subject));
        let (history, events): (String, Vec<(&'static str, bool)>) = if approve {
            e.state = EscalationState::Routed as i32;
            e.routed_to = rules::route(kind).to_string();
            let major = kind == pb::EscalationKind::MajorQuality;
            (
                format!("escalation routed to {}", e.routed_to),
                vec![(ESCALATION_ROUTED, major), (ESCALATION_CHANGED, false)],
            )
        } else {
            e.state = EscalationState::Rejected as i32;
            self.stop_escalation_clock(&mut tx, &mut record).await?;
            (
                format!("escalation rejected: {note}"),
                vec![(ESCALATION_REJECTED, false)],
            )
        };
        let step = Step {
            escalation: e,
            history,
            events,
            now,
        };
        self.write_step(&mut tx, &mut record, step, call).await?;
        let response = pb::ReviewEscalationResponse {
            escalation: record.ticket.escalation.clone(),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// The department records progress on a routed escalation, or resolves it.
    pub async fn record_escalation_progress(
        &self,
        key: RequestKey,
        id: Uuid,
        note: String,
        resolve: bool,
        call: &Call,
    ) -> Result<pb::RecordEscalationProgressResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let (mut record, mut e) = self
            .lock_escalation(&mut tx, id, EscalationState::Routed, &call.principal)
            .await?;
        let now = self.clock.now();
        store::insert_progress(&mut tx, id, &note, now, &call.principal.subject).await?;
        e.progress.push(pb::EscalationProgress {
            note: note.clone(),
            recorded: Some(convert::stamp(now, &call.principal.subject)),
        });
        e.version += 1;
        e.updated = Some(convert::stamp(now, &call.principal.subject));
        let history = if resolve {
            e.state = EscalationState::Resolved as i32;
            e.resolution.clone_from(&note);
            self.stop_escalation_clock(&mut tx, &mut record).await?;
            format!("escalation resolved: {note}")
        } else {
            format!("escalation progress: {note}")
        };
        let step = Step {
            escalation: e,
            history,
            events: vec![(ESCALATION_CHANGED, false)],
            now,
        };
        self.write_step(&mut tx, &mut record, step, call).await?;
        let response = pb::RecordEscalationProgressResponse {
            escalation: record.ticket.escalation.clone(),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Escalations by state, department and ticket, earliest time limit first.
    pub async fn list_escalations(
        &self,
        r: &pb::ListEscalationsRequest,
        caller: &Principal,
    ) -> Result<pb::ListEscalationsResponse> {
        let mut states = Vec::new();
        for (i, s) in r.states.iter().enumerate() {
            match EscalationState::try_from(*s) {
                Ok(EscalationState::Unspecified) | Err(_) => {
                    return Err(Error::invalid(
                        format!("states[{i}]"),
                        "is not an escalation state",
                    ));
                }
                Ok(s) => states.push(s.as_str_name().to_string()),
            }
        }
        let ticket = if r.ticket_id.is_empty() {
            None
        } else {
            Some(
                Uuid::parse_str(&r.ticket_id)
                    .map_err(|_| Error::invalid("ticket_id", "is not a valid id"))?,
            )
        };
        let filter = format!("{}|{}|{}", states.join(","), r.routed_to, r.ticket_id);
        let page = self.pager.read::<EscalationKey>(r.page.as_ref(), &filter)?;
        let after = page.after.as_ref().and_then(|k| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(k.0) * 1_000)
                .ok()
                .map(|t| (t, k.1))
        });
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_escalations(
            &mut conn,
            &states,
            (!r.routed_to.is_empty()).then_some(r.routed_to.as_str()),
            ticket,
            &crate::service::Scope::of(caller),
            after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut rows, &filter, |e| {
            let due = e
                .due_time
                .as_ref()
                .and_then(|t| convert::from_timestamp(t).ok())
                .map_or(0, |t| {
                    i64::try_from(t.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
                });
            EscalationKey(due, Uuid::parse_str(&e.id).unwrap_or_default())
        });
        Ok(pb::ListEscalationsResponse {
            escalations: rows,
            page: Some(next),
        })
    }
}
