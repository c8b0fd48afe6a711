//! Intake and reading: a complaint is taken in with the apology logged and the processing
//! deadline committed to the customer; its committed and resolution clocks start in the same
//! transaction, and the customer's acknowledgement is published (`complaints.received`).
//! Reads are in the caller's scope; a partner's view leaves out the comments about its staff.

pub mod rules;

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, convert, history,
    idempotency::RequestKey, timers,
};
use crm_proto::{
    common::v1::PageRequest,
    complaints::v1::{self as pb, ComplaintKind, ComplaintState, ComplaintTransition, Deadline},
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    deadlines,
    rules::{kind_key, stored},
    service::{Complaints, RECEIVED, holder, not_found, publish, scope, subject, view},
    store::{self, Filter, Record},
};
use rules::NewComplaint;

/// The open states: what a list shows when no state is asked for.
pub const OPEN: &[ComplaintState] = &[
    ComplaintState::Received,
    ComplaintState::Investigating,
    ComplaintState::Planning,
    ComplaintState::AwaitingApproval,
    ComplaintState::PlanApproved,
    ComplaintState::Accepted,
    ComplaintState::Executed,
    ComplaintState::Resolved,
];

impl Complaints {
    /// Takes in a complaint.
    pub async fn create_complaint(
        &self,
        key: RequestKey,
        new: NewComplaint,
        call: &Call,
    ) -> Result<pb::CreateComplaintResponse> {
        let now = self.clock.now();
        if new.committed_due <= now {
            return Err(Error::invalid(
                "complaint.committed_due",
                "must be in the future",
            ));
        }
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let id = Uuid::now_v7().to_string();
        let actor = &call.principal.subject;
        let resolution_due = self.calendar.add(now, self.settings.resolution(new.kind));
        let complaint = pb::Complaint {
            id: id.clone(),
            number: store::next_number(&mut tx).await?,
            cycle: 1,
            state: ComplaintState::Received as i32,
            apologised: Some(convert::stamp(now, actor)),
            committed_due: Some(convert::timestamp(new.committed_due)),
            resolution_due: Some(convert::timestamp(resolution_due)),
            version: 1,
            created: Some(convert::stamp(now, actor)),
            updated: Some(convert::stamp(now, actor)),
            ..new.complaint
        };
        let record = Record {
            complaint,
            resolution_left_us: None,
        };
        store::save(&mut tx, &record).await?;
        let mut clocks = self.clock(&id, Deadline::Committed, (now, new.committed_due), false);
        clocks.extend(self.clock(&id, Deadline::Resolution, (now, resolution_due), true));
        let armed = timers::schedule(&mut tx, &clocks, now).await?;
        deadlines::record(
            &mut tx,
            &id,
            (ComplaintState::Unspecified, ComplaintState::Received),
            "CREATE",
            &format!(
                "{} complaint; apology: {}",
                kind_key(new.kind),
                record.complaint.apology
            ),
            actor,
            now,
        )
        .await?;
        let event = pb::ComplaintEvent {
            complaint: Some(record.complaint.clone()),
            ..Default::default()
        };
        publish(&mut tx, call, now, RECEIVED, &event, false).await?;
        audit::record(&mut tx, call, now, &subject(&id), &["created"]).await?;
        let response = pb::CreateComplaintResponse {
            complaint: Some(view(record.complaint, &call.principal)),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// One complaint in the caller's scope.
    pub async fn get_complaint(&self, id: Uuid, caller: &Principal) -> Result<pb::Complaint> {
        let mut conn = self.pool.acquire().await?;
        let scope = scope(caller);
        store::get(&mut conn, id, false)
            .await?
            .filter(|r| scope.permits(holder(&r.complaint.partner_id)))
            .map(|r| view(r.complaint, caller))
            .ok_or_else(|| not_found(id))
    }

    /// Complaints in the caller's scope by committed deadline.
    pub async fn list_complaints(
        &self,
        r: &pb::ListComplaintsRequest,
        caller: &Principal,
    ) -> Result<pb::ListComplaintsResponse> {
        let mut v = crm_kit::Violations::new();
        let mut states = Vec::new();
        for (i, s) in r.states.iter().enumerate() {
            match ComplaintState::try_from(*s) {
                Ok(ComplaintState::Unspecified) | Err(_) => {
                    v.add(format!("states[{i}]"), "is not a complaint state");
                }
                Ok(s) => states.push(stored(s.as_str_name(), "COMPLAINT_STATE_").to_string()),
            }
        }
        let kind = match ComplaintKind::try_from(r.kind) {
            Ok(ComplaintKind::Unspecified) => None,
            Ok(k) => Some(stored(k.as_str_name(), "COMPLAINT_KIND_")),
            Err(_) => {
                v.add("kind", "is not a complaint kind");
                None
            }
        };
        if !r.department.is_empty() && self.settings.department(&r.department).is_none() {
            v.add("department", "is not a configured department");
        }
        v.finish()?;
        if states.is_empty() {
            states = OPEN
                .iter()
                .map(|s| stored(s.as_str_name(), "COMPLAINT_STATE_").to_string())
                .collect();
        }
        let filter_key = format!("{}|{kind:?}|{}", states.join(","), r.department);
        let page = self
            .pager
            .read::<(i64, Uuid)>(r.page.as_ref(), &filter_key)?;
        let after = page.after.map(|(nanos, id)| {
            (
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                id,
            )
        });
        let mut conn = self.pool.acquire().await?;
        let filter = Filter {
            states: &states,
            kind,
            department: (!r.department.is_empty()).then_some(r.department.as_str()),
        };
        let rows = store::list(&mut conn, &scope(caller), &filter, after, page.limit()).await?;
        let mut complaints: Vec<pb::Complaint> = rows
            .into_iter()
            .map(|r| view(r.complaint, caller))
            .collect();
        let next = self.pager.finish(&page, &mut complaints, &filter_key, |c| {
            let due = c
                .committed_due
                .as_ref()
                .and_then(|t| convert::from_timestamp(t).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            (
                i64::try_from(due.unix_timestamp_nanos()).unwrap_or(i64::MAX),
                Uuid::parse_str(&c.id).unwrap_or_default(),
            )
        });
        Ok(pb::ListComplaintsResponse {
            complaints,
            page: Some(next),
        })
    }

    /// A complaint's steps, oldest first.
    pub async fn complaint_history(
        &self,
        id: Uuid,
        page: Option<&PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListComplaintHistoryResponse> {
        let filter = format!("complaint_history/{id}");
        let page = self.pager.read::<Uuid>(page, &filter)?;
        self.get_complaint(id, caller).await?;
        let mut conn = self.pool.acquire().await?;
        let mut entries = history::page(
            &mut conn,
            &subject(&id.to_string()),
            "state",
            page.after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut entries, &filter, |e| e.id);
        let state = |s: &str| {
            ComplaintState::from_str_name(&format!("COMPLAINT_STATE_{s}")).map_or(0, |s| s as i32)
        };
        Ok(pb::ListComplaintHistoryResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::ComplaintHistoryEntry {
                    transition: ComplaintTransition::from_str_name(&format!(
                        "COMPLAINT_TRANSITION_{}",
                        e.via
                    ))
                    .map_or(0, |t| t as i32),
                    from_state: state(&e.from_value),
                    to_state: state(&e.to_value),
                    via: e.via,
                    reason: e.reason,
                    changed: Some(convert::stamp(e.change_time, &e.actor)),
                })
                .collect(),
            page: Some(next),
        })
    }

    /// The configured departments.
    pub fn list_departments(&self) -> pb::ListDepartmentsResponse {
        pb::ListDepartmentsResponse {
            departments: self
                .settings
                .departments()
                .iter()
                .map(|d| d.to_proto())
                .collect(),
        }
    }
}
