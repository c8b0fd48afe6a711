//! Handling a complaint (Q-2 … Q-5): judged against the policy and routed by kind, the
//! findings, the responsible department's plan, the CRM lead's approval or send-back, the
//! customer's acceptance or refusal, the execution, the customer's confirmation and the
//! follow-up visit — each a named step from one table (`rules::next`), taken only by who may
//! (`rules::may`), in the history with who/when/why, published (`complaints.changed`) and
//! audited. A dissatisfied follow-up closes the cycle and starts the next, linked both ways,
//! with new deadlines; the earlier cycle keeps its history and breaches.

pub mod rules;

use crm_kit::{
    Error, Result, audit, context::Call, convert, idempotency::RequestKey, timers, timers::NewTimer,
};
use crm_proto::complaints::v1::{
    self as pb, ComplaintKind, ComplaintState as S, ComplaintTransition as T, Deadline,
};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    deadlines,
    rules::stored,
    service::{
        CHANGED, Complaints, PLAN_APPROVED, ROUTED, ROUTED_TO_DEPARTMENT, ROUTED_TO_SUPERVISOR,
        publish, subject, view,
    },
    store::{self, Record},
};
use rules::Step;

impl Complaints {
    /// Takes a complaint one step.
    pub async fn transition_complaint(
        &self,
        key: RequestKey,
        step: Step,
        call: &Call,
    ) -> Result<pb::TransitionComplaintResponse> {
        let now = self.clock.now();
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut r = self.lock(&mut tx, step.id, step.version, call).await?;
        let from = r.state();
        let satisfied = step.r.satisfaction >= self.settings.satisfied_from;
        let to = rules::next(from, step.transition, satisfied)?;
        // the department that plans: the one recorded, or the one this step records
        let department_code = if step.transition == T::RecordFindings {
            step.r.department.as_str()
        } else {
            r.complaint.department.as_str()
        };
        let department = match self.settings.department(department_code) {
            Some(d) => Some(d),
            None if step.transition == T::RecordFindings => {
                return Err(Error::invalid(
                    "department",
                    "is not a configured department (see ListDepartments)",
                ));
            }
            None => None,
        };
        let in_department = department.is_some_and(|d| d.has_member(&call.principal));
        rules::may(
            &call.principal,
            step.transition,
            in_department,
            &r.complaint.plan_author,
        )?;
        let actor = call.principal.subject.clone();
        let id = r.complaint.id.clone();
        let mut clocks: Vec<NewTimer> = Vec::new();
        let mut routed_to = None;
        let mut next_cycle = None;
        let c = &mut r.complaint;
        match step.transition {
            T::Judge => {
                c.policy_judgement.clone_from(&step.r.policy_judgement);
                c.policy_explanation.clone_from(&step.r.policy_explanation);
                routed_to = Some(self.route(c));
            }
            T::RecordFindings => {
                c.cause.clone_from(&step.r.cause);
                c.department.clone_from(&step.r.department);
            }
            T::SubmitPlan => {
                c.plan.clone_from(&step.r.plan);
                c.compensation.clone_from(&step.r.compensation);
                c.plan_author.clone_from(&actor);
                c.plan_approver.clear();
                let due = self
                    .calendar
                    .add(now, time::Duration::hours(self.settings.approval_hours));
                c.approval_due = Some(convert::timestamp(due));
                clocks.extend(self.clock(&id, Deadline::PlanApproval, (now, due), true));
            }
            T::ApprovePlan | T::SendBackPlan => {
                c.approval_due = None;
                Self::stop(&mut tx, &id, Deadline::PlanApproval).await?;
                if step.transition == T::ApprovePlan {
                    c.plan_approver.clone_from(&actor);
                }
            }
            T::CustomerConfirms => {
                c.resolve_time = Some(convert::timestamp(now));
                c.resolution_due = None;
                Self::stop(&mut tx, &id, Deadline::Committed).await?;
                Self::stop(&mut tx, &id, Deadline::Resolution).await?;
            }
            T::FollowUp => c.satisfaction = step.r.satisfaction,
            T::CustomerAccepts | T::CustomerDeclines | T::Execute | T::Unspecified => {}
        }
        match step.transition {
            // the customer decides on the approved plan: the resolution clock waits
            T::ApprovePlan => self.pause_resolution(&mut tx, &mut r, now).await?,
            T::CustomerAccepts | T::CustomerDeclines => {
                clocks.extend(self.resume_resolution(&mut r, now));
            }
            _ => {}
        }
        if to == S::Reopened {
            let Some(due) = step.new_committed_due.filter(|d| *d > now) else {
                return Err(Error::invalid(
                    "new_committed_due",
                    "a dissatisfied follow-up reopens the complaint: commit a new deadline in \
                     the future",
                ));
            };
            let (cycle, timers) = self.reopen(&mut tx, &r, due, now, &actor).await?;
            r.complaint.next_cycle_id.clone_from(&cycle.complaint.id);
            clocks.extend(timers);
            next_cycle = Some(cycle);
        }
        r.complaint.state = to as i32;
        r.complaint.version += 1;
        r.complaint.updated = Some(convert::stamp(now, &actor));
        store::save(&mut tx, &r).await?;
        let via = stored(step.transition.as_str_name(), "COMPLAINT_TRANSITION_");
        deadlines::record(&mut tx, &id, (from, to), via, &step.reason(), &actor, now).await?;
        let event = |complaint: &pb::Complaint, routed: &str| pb::ComplaintEvent {
            complaint: Some(complaint.clone()),
            transition: step.transition as i32,
            routed_to: routed.to_string(),
            reason: step.r.note.clone(),
            ..Default::default()
        };
        publish(&mut tx, call, now, CHANGED, &event(&r.complaint, ""), false).await?;
        if let Some(routed) = &routed_to {
            self.announce_route(&mut tx, call, now, event(&r.complaint, routed))
                .await?;
        }
        if step.transition == T::ApprovePlan {
            publish(
                &mut tx,
                call,
                now,
                PLAN_APPROVED,
                &event(&r.complaint, ""),
                false,
            )
            .await?;
        }
        audit::record(&mut tx, call, now, &subject(&id), &["state"]).await?;
        let armed = timers::schedule(&mut tx, &clocks, now).await?;
        let response = pb::TransitionComplaintResponse {
            complaint: Some(view(r.complaint, &call.principal)),
            next_cycle: next_cycle.map(|c| view(c.complaint, &call.principal)),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// Where a judged complaint goes by its kind: a product complaint to the product
    /// department, a service complaint back into the service flow (the tickets service opens
    /// or reopens a ticket from the event), a staff complaint to the staff member's supervisors
    /// and the person complained about.
    fn route(&self, c: &pb::Complaint) -> String {
        match ComplaintKind::try_from(c.kind).unwrap_or_default() {
            ComplaintKind::Product => self.settings.product_department.clone(),
            ComplaintKind::Service => "tickets".into(),
            ComplaintKind::Staff | ComplaintKind::Unspecified => "supervisor".into(),
        }
    }

    /// Publishes where a judged complaint was routed (`complaints.routed`, which the tickets
    /// service acts on for a service complaint), and for the people to be told: the product
    /// department's (with its roles) or the staff member's supervisors.
    async fn announce_route(
        &self,
        tx: &mut PgConnection,
        call: &Call,
        now: OffsetDateTime,
        routed: pb::ComplaintEvent,
    ) -> Result<()> {
        publish(tx, call, now, ROUTED, &routed, false).await?;
        let kind = routed.complaint.as_ref().map_or(0, |c| c.kind);
        match ComplaintKind::try_from(kind).unwrap_or_default() {
            ComplaintKind::Product => {
                let roles = self
                    .settings
                    .department(&routed.routed_to)
                    .map(|d| d.roles.clone())
                    .unwrap_or_default();
                let told = pb::ComplaintEvent {
                    routed_roles: roles,
                    ..routed
                };
                publish(tx, call, now, ROUTED_TO_DEPARTMENT, &told, false).await
            }
            ComplaintKind::Staff => {
                publish(tx, call, now, ROUTED_TO_SUPERVISOR, &routed, false).await
            }
            ComplaintKind::Service | ComplaintKind::Unspecified => Ok(()),
        }
    }

    /// The next cycle of `closed`, dissatisfied at its follow-up: the same number and
    /// complaint, investigated again with the new committed deadline `due` and a new
    /// resolution clock; linked to the closed cycle. Returns it and its timers.
    async fn reopen(
        &self,
        tx: &mut PgConnection,
        closed: &Record,
        due: OffsetDateTime,
        now: OffsetDateTime,
        actor: &str,
    ) -> Result<(Record, Vec<NewTimer>)> {
        let old = &closed.complaint;
        let kind = ComplaintKind::try_from(old.kind).unwrap_or_default();
        let id = Uuid::now_v7().to_string();
        let resolution_due = self.calendar.add(now, self.settings.resolution(kind));
        let complaint = pb::Complaint {
            id: id.clone(),
            cycle: old.cycle + 1,
            state: S::Investigating as i32,
            committed_due: Some(convert::timestamp(due)),
            resolution_due: Some(convert::timestamp(resolution_due)),
            previous_cycle_id: old.id.clone(),
            version: 1,
            created: Some(convert::stamp(now, actor)),
            updated: Some(convert::stamp(now, actor)),
            // the case as taken in and judged; what was found and planned is done again
            number: old.number.clone(),
            kind: old.kind,
            channel: old.channel,
            customer_id: old.customer_id.clone(),
            contact_name: old.contact_name.clone(),
            contact_phone: old.contact_phone.clone(),
            contact_email: old.contact_email.clone(),
            contact_language: old.contact_language.clone(),
            content: old.content.clone(),
            staff_comment: old.staff_comment.clone(),
            product_model: old.product_model.clone(),
            serial_number: old.serial_number.clone(),
            ticket_id: old.ticket_id.clone(),
            staff_id: old.staff_id.clone(),
            partner_id: old.partner_id.clone(),
            apology: old.apology.clone(),
            apologised: old.apologised.clone(),
            policy_judgement: old.policy_judgement.clone(),
            policy_explanation: old.policy_explanation.clone(),
            ..Default::default()
        };
        let record = Record {
            complaint,
            resolution_left_us: None,
        };
        store::save(tx, &record).await?;
        deadlines::record(
            tx,
            &id,
            (S::Unspecified, S::Investigating),
            "REOPEN",
            &format!(
                "cycle {} of {}: the follow-up of cycle {} was dissatisfied",
                record.complaint.cycle, old.number, old.cycle
            ),
            actor,
            now,
        )
        .await?;
        let mut clocks = self.clock(&id, Deadline::Committed, (now, due), false);
        clocks.extend(self.clock(&id, Deadline::Resolution, (now, resolution_due), true));
        Ok((record, clocks))
    }
}
