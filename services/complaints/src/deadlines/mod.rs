//! A complaint's clocks: the processing deadline committed to the customer, the CRM
//! lead's approval of a submitted plan, and the resolution target of its kind — each a kit
//! timer pair (warning, breach) scheduled in the transaction that starts it, cancelled in the
//! one that ends it, and fired once. A breach is recorded once per deadline and due time, never
//! for a clock that stopped (a resolved or closed complaint, an approved plan), and published
//! urgently. Only the customer's confirmation stops the committed and resolution clocks — no
//! "replied" step does. The resolution clock pauses while the customer decides on an approved
//! plan. Moving the committed deadline needs a reason, is audited and tells the customer.

pub mod rules;
mod store;

use crm_kit::{
    Error, Result, audit,
    context::Call,
    convert, history,
    idempotency::RequestKey,
    timers::{self, NewTimer, Timer, TimerHandler},
};
use crm_proto::complaints::v1::{self as pb, ComplaintState, Deadline};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    service::{
        Complaints, DEADLINE_BREACHED, DEADLINE_MOVED, DEADLINE_WARNING, publish, subject, view,
    },
    store::{self as complaints_store, Record},
};

/// Whether `deadline` still runs for a complaint in `state`.
pub fn running(deadline: Deadline, state: ComplaintState) -> bool {
    use ComplaintState as S;
    match deadline {
        Deadline::PlanApproval => state == S::AwaitingApproval,
        Deadline::Committed | Deadline::Resolution => !matches!(
            state,
            S::Resolved | S::Closed | S::Reopened | S::Unspecified
        ),
        Deadline::Unspecified => false,
    }
}

/// The due time `deadline` has on `c`, if it runs.
fn due_of(c: &pb::Complaint, deadline: Deadline) -> Option<OffsetDateTime> {
    let t = match deadline {
        Deadline::Committed => c.committed_due.as_ref(),
        Deadline::PlanApproval => c.approval_due.as_ref(),
        Deadline::Resolution => c.resolution_due.as_ref(),
        Deadline::Unspecified => None,
    };
    t.and_then(|t| convert::from_timestamp(t).ok())
}

/// Records a step of complaint `id` in its history.
pub(crate) async fn record(
    tx: &mut PgConnection,
    id: &str,
    (from, to): (ComplaintState, ComplaintState),
    via: &str,
    reason: &str,
    actor: &str,
    at: OffsetDateTime,
) -> Result<()> {
    let name = |s: ComplaintState| crate::rules::stored(s.as_str_name(), "COMPLAINT_STATE_");
    history::record(
        tx,
        &history::Change {
            subject: &subject(id),
            kind: "state",
            from: if from == ComplaintState::Unspecified {
                ""
            } else {
                name(from)
            },
            to: name(to),
            reason,
            via,
            actor,
            at,
        },
    )
    .await?;
    Ok(())
}

impl Complaints {
    /// The warning and breach timers of `deadline` on complaint `id`, started at `from` and due
    /// at `due` (`business`: counted in business time).
    pub(crate) fn clock(
        &self,
        id: &str,
        deadline: Deadline,
        (from, due): (OffsetDateTime, OffsetDateTime),
        business: bool,
    ) -> Vec<NewTimer> {
        let warning = self
            .calendar
            .fraction(from, due, self.settings.warning_at, business);
        [(due, false), (warning, true)]
            .into_iter()
            .filter(|(at, w)| !*w || *at < due)
            .map(|(at, w)| NewTimer {
                kind: rules::timer_kind(deadline, w).into(),
                subject: subject(id),
                due: at,
                payload: serde_json::json!({ "due": convert::timestamp(due).seconds }),
            })
            .collect()
    }

    /// Cancels `deadline`'s timers on complaint `id`.
    pub(crate) async fn stop(tx: &mut PgConnection, id: &str, deadline: Deadline) -> Result<()> {
        for w in [false, true] {
            timers::cancel(tx, &subject(id), Some(rules::timer_kind(deadline, w))).await?;
        }
        Ok(())
    }

    /// Pauses the resolution clock of `r` at `now` (the customer decides on a plan).
    pub(crate) async fn pause_resolution(
        &self,
        tx: &mut PgConnection,
        r: &mut Record,
        now: OffsetDateTime,
    ) -> Result<()> {
        if let Some(due) = due_of(&r.complaint, Deadline::Resolution) {
            let left = rules::pause(&self.calendar, due, now);
            r.resolution_left_us = Some(i64::try_from(left.whole_microseconds()).unwrap_or(0));
            r.complaint.resolution_due = None;
            Self::stop(tx, &r.complaint.id, Deadline::Resolution).await?;
        }
        Ok(())
    }

    /// Resumes a paused resolution clock of `r` at `now`; the timers to schedule.
    pub(crate) fn resume_resolution(&self, r: &mut Record, now: OffsetDateTime) -> Vec<NewTimer> {
        let Some(left) = r.resolution_left_us.take() else {
            return Vec::new();
        };
        let due = rules::resume(&self.calendar, time::Duration::microseconds(left), now);
        r.complaint.resolution_due = Some(convert::timestamp(due));
        self.clock(&r.complaint.id, Deadline::Resolution, (now, due), true)
    }

    /// Moves the committed deadline of a complaint in the caller's scope.
    pub async fn move_committed_deadline(
        &self,
        key: RequestKey,
        m: Move,
        call: &Call,
    ) -> Result<pb::MoveCommittedDeadlineResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        if m.due <= now {
            return Err(Error::invalid("committed_due", "must be in the future"));
        }
        let mut r = self.lock(&mut tx, m.id, m.version, call).await?;
        let state = r.state();
        if !running(Deadline::Committed, state) {
            return Err(Error::precondition(
                "DEADLINE_STOPPED",
                "the complaint is resolved: its committed deadline no longer runs",
            ));
        }
        let before = r.complaint.committed_due.map_or(0, |t| t.seconds);
        let id = r.complaint.id.clone();
        r.complaint.committed_due = Some(convert::timestamp(m.due));
        r.complaint.version += 1;
        r.complaint.updated = Some(convert::stamp(now, &call.principal.subject));
        complaints_store::save(&mut tx, &r).await?;
        Self::stop(&mut tx, &id, Deadline::Committed).await?;
        let armed = timers::schedule(
            &mut tx,
            &self.clock(&id, Deadline::Committed, (now, m.due), false),
            now,
        )
        .await?;
        let reason = format!(
            "committed deadline moved from {before} to {}: {}",
            convert::timestamp(m.due).seconds,
            m.reason
        );
        record(
            &mut tx,
            &id,
            (state, state),
            "MOVE_COMMITTED_DEADLINE",
            &reason,
            &call.principal.subject,
            now,
        )
        .await?;
        let event = pb::ComplaintEvent {
            complaint: Some(r.complaint.clone()),
            deadline: Deadline::Committed as i32,
            reason: m.reason.clone(),
            ..Default::default()
        };
        publish(&mut tx, call, now, DEADLINE_MOVED, &event, false).await?;
        audit::record(&mut tx, call, now, &subject(&id), &["committed_due"]).await?;
        let response = pb::MoveCommittedDeadlineResponse {
            complaint: Some(view(r.complaint, &call.principal)),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }
}

/// A checked MoveCommittedDeadline.
#[derive(Debug, Clone)]
pub struct Move {
    /// The complaint.
    pub id: Uuid,
    /// The version the caller saw (0: any).
    pub version: i64,
    /// The new deadline.
    pub due: OffsetDateTime,
    /// Why.
    pub reason: String,
}

impl Move {
    /// Checks the request: every wrong field named.
    pub fn parse(r: &pb::MoveCommittedDeadlineRequest) -> Result<Self> {
        let mut v = crm_kit::Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        let due = match r.committed_due.as_ref().map(convert::from_timestamp) {
            Some(Ok(t)) => Some(t),
            _ => {
                v.add("committed_due", "is required");
                None
            }
        };
        crm_kit::text::require(
            &mut v,
            "reason",
            &r.reason,
            1000,
            crm_kit::text::Lines::Many,
        );
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            version: r.version,
            due: due.unwrap_or(OffsetDateTime::UNIX_EPOCH),
            reason: r.reason.trim().to_string(),
        })
    }
}

/// Fires the complaints service's timers: a deadline's warning or breach.
pub struct DeadlineTimers {
    /// The service.
    pub complaints: Complaints,
}

#[tonic::async_trait]
impl TimerHandler for DeadlineTimers {
    async fn fire(&self, tx: &mut PgConnection, timer: &Timer) -> std::result::Result<(), Error> {
        let Some((deadline, warning)) = rules::of_timer_kind(&timer.kind) else {
            tracing::warn!(kind = %timer.kind, "unknown complaints timer kind; ignored");
            return Ok(());
        };
        let Some(id) = timer
            .subject
            .strip_prefix("complaints/")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        let Some(r) = complaints_store::get(tx, id, true).await? else {
            return Ok(());
        };
        let state = r.state();
        // a clock that stopped, or a deadline that moved since, fires nothing
        let Some(due) = due_of(&r.complaint, deadline).filter(|_| running(deadline, state)) else {
            return Ok(());
        };
        if timer.payload.get("due").and_then(serde_json::Value::as_i64)
            != Some(convert::timestamp(due).seconds)
        {
            return Ok(());
        }
        let now = self.complaints.clock.now();
        let name = rules::stored(deadline);
        if !warning && !store::record_breach(tx, id, name, due, now).await? {
            return Ok(());
        }
        let via = format!("{name}_{}", if warning { "WARNING" } else { "BREACH" });
        let reason = format!("{name} deadline due {}", convert::timestamp(due).seconds);
        record(
            tx,
            &r.complaint.id,
            (state, state),
            &via,
            &reason,
            "deadlines",
            now,
        )
        .await?;
        let mut complaint = r.complaint;
        if !warning {
            complaint.breaches.push(pb::Breach {
                deadline: deadline as i32,
                due_time: Some(convert::timestamp(due)),
                breach_time: Some(convert::timestamp(now)),
            });
        }
        let event = pb::ComplaintEvent {
            complaint: Some(complaint),
            deadline: deadline as i32,
            ..Default::default()
        };
        let call = Call::system("deadlines", &timer.kind);
        let kind = if warning {
            DEADLINE_WARNING
        } else {
            DEADLINE_BREACHED
        };
        publish(tx, &call, now, kind, &event, !warning).await
    }
}
