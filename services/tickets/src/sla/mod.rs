//! The SLA timers (T-4, T-5, T-9): a warning is recorded and announced, a breach recorded with
//! its due time, raising the priority and announced urgently; work started without a record by
//! the day's close is reminded.

pub mod rules;

use crm_kit::{
    Error,
    context::Call,
    convert,
    timers::{Timer, TimerHandler},
};
use crm_proto::tickets::v1::{self as pb, Deadline, TicketState};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    service::{RECORD_DUE, RECORD_DUE_TIMER, SLA_BREACHED, SLA_WARNING, Tickets, at, ts},
    store,
};

/// Fires the tickets' SLA timers: a warning is recorded and announced; a breach is recorded
/// with its due time, raises the priority and is announced urgently (the supervisor is told by
/// the notifications service's rules).
pub struct SlaTimers {
    /// The service.
    pub tickets: Tickets,
}

#[tonic::async_trait]
impl TimerHandler for SlaTimers {
    async fn fire(&self, tx: &mut PgConnection, timer: &Timer) -> std::result::Result<(), Error> {
        if timer.kind == RECORD_DUE_TIMER {
            return self.record_due(tx, timer).await;
        }
        let Some((deadline, warning)) = crate::sla::rules::parse_timer_kind(&timer.kind) else {
            tracing::warn!(kind = %timer.kind, "unknown ticket timer kind; ignored");
            return Ok(());
        };
        let Some(id) = timer
            .subject
            .strip_prefix("tickets/")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        let Some(mut record) = store::get(tx, id, true).await? else {
            return Ok(());
        };
        let now = self.tickets.clock.now();
        let t = &mut record.ticket;
        let due = match deadline {
            Deadline::Response => at(t.response_due.as_ref()),
            Deadline::Handoff => at(t.handoff_due.as_ref()),
            Deadline::Resolution => at(t.resolution_due.as_ref()),
            Deadline::Escalation => record.escalation_due,
            Deadline::Unspecified => None,
        };
        // a deadline no longer running (the ticket moved on) fires nothing
        let Some(due) = due else {
            return Ok(());
        };
        let call = Call::system("sla", &timer.kind);
        let state = t.state;
        if warning {
            store::insert_history(
                tx,
                id,
                &pb::TicketHistoryEntry {
                    from_state: state,
                    to_state: state,
                    reason: format!(
                        "warning: {} due at {}",
                        deadline.as_str_name(),
                        convert::timestamp(due).seconds
                    ),
                    ..Default::default()
                },
                now,
                "sla",
            )
            .await?;
            Tickets::publish(tx, &call, now, SLA_WARNING, t, false).await?;
            return Ok(());
        }
        store::insert_breach(tx, id, deadline, due, now).await?;
        if deadline == Deadline::Escalation
            && let Some(mut e) = t.escalation.clone()
            && crate::escalations::escalation_open(e.state)
        {
            // the escalation missed its time limit: it stays open, marked overdue
            e.overdue = true;
            e.version += 1;
            crate::escalations::save(tx, &e).await?;
            t.escalation = Some(e);
        }
        t.priority = crate::sla::rules::raised(t.priority) as i32;
        t.version += 1;
        t.updated = Some(convert::stamp(now, "sla"));
        t.breaches.push(pb::Breach {
            deadline: deadline as i32,
            due_time: ts(due),
            breach_time: ts(now),
        });
        store::save(tx, &record).await?;
        store::insert_history(
            tx,
            id,
            &pb::TicketHistoryEntry {
                from_state: state,
                to_state: state,
                reason: format!("breach: {}", deadline.as_str_name()),
                ..Default::default()
            },
            now,
            "sla",
        )
        .await?;
        Tickets::publish(tx, &call, now, SLA_BREACHED, &record.ticket, true).await?;
        Ok(())
    }
}

impl SlaTimers {
    /// At the close of the day work started: if the ticket is still being worked on and no
    /// service record was made since, the engineer is reminded (history and an event).
    async fn record_due(
        &self,
        tx: &mut PgConnection,
        timer: &Timer,
    ) -> std::result::Result<(), Error> {
        let Some(id) = timer
            .subject
            .strip_prefix("tickets/")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        let Some(record) = store::get(tx, id, true).await? else {
            return Ok(());
        };
        let t = &record.ticket;
        let working = matches!(
            TicketState::try_from(t.state),
            Ok(TicketState::InProgress | TicketState::WaitingForCustomer)
        );
        let started = timer.payload["started"].as_i64().unwrap_or(0);
        let recorded = t.service_records.iter().any(|r| {
            r.recorded
                .as_ref()
                .and_then(|s| s.time.as_ref())
                .is_some_and(|time| time.seconds >= started)
        });
        if !working || recorded {
            return Ok(());
        }
        let now = self.tickets.clock.now();
        store::insert_history(
            tx,
            id,
            &pb::TicketHistoryEntry {
                from_state: t.state,
                to_state: t.state,
                reason: "reminder: today's work has no service record".into(),
                ..Default::default()
            },
            now,
            "sla",
        )
        .await?;
        let call = Call::system("sla", &timer.kind);
        Tickets::publish(tx, &call, now, RECORD_DUE, t, false).await
    }
}
