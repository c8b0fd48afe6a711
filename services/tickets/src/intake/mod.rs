//! Intake and queues (T-1, T-2, G-2): a ticket opened for a known customer with its deadlines
//! running, read and listed in the caller's scope, its intake fields updated.

pub mod rules;

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, convert, idempotency::RequestKey, timers,
};
use crm_proto::{
    common::v1::PageRequest,
    tickets::v1::{self as pb, Deadline, TicketState},
};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    service::{CREATED, Scope, Tickets, not_found, subject, ts},
    store::{self, Record},
};

/// The position in a queue: the next deadline and the id.
#[derive(Serialize, Deserialize)]
struct QueueKey(Option<i64>, Uuid);

impl Tickets {
    /// Opens a ticket with its deadlines running.
    pub async fn create(
        &self,
        key: RequestKey,
        ticket: pb::Ticket,
        call: &Call,
    ) -> Result<pb::CreateTicketResponse> {
        let customer =
            Uuid::parse_str(&ticket.customer_id).map_err(|e| Error::Internal(e.into()))?;
        let tier = self.known_customer(customer, "ticket.customer_id").await?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let (ticket, armed) = self.open(&mut tx, ticket, tier, now, call).await?;
        let response = pb::CreateTicketResponse {
            ticket: Some(ticket),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// Opens a ticket in `tx` for a customer of `tier`: its number, history, deadlines, event
    /// and audit; the timers to arm after the commit. Only the intake fields of `ticket` are
    /// taken; the rest is the service's.
    pub(crate) async fn open(
        &self,
        tx: &mut PgConnection,
        ticket: pb::Ticket,
        tier: String,
        now: OffsetDateTime,
        call: &Call,
    ) -> Result<(pb::Ticket, Vec<timers::Armed>)> {
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
        let mut ticket = pb::Ticket {
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
            tx,
            &Record {
                ticket: ticket.clone(),
                ..Default::default()
            },
        )
        .await?;
        let uuid = Uuid::parse_str(&id).expect("made above");
        store::insert_history(
            tx,
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
        let armed = timers::schedule(tx, &new, now).await?;
        Self::publish(tx, call, now, CREATED, &ticket, false).await?;
        audit::record(tx, call, now, &subject(&id), &["ticket"]).await?;
        Ok((ticket, armed))
    }

    /// Waits for `customer` to be known here (from the customers service's events), up to
    /// `tickets.customer_wait_ms`: a ticket is for a customer that exists (T-1). Its tier; a
    /// customer not known is `INVALID_ARGUMENT` on `field`.
    pub(crate) async fn known_customer(&self, customer: Uuid, field: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + self.settings.customer_wait;
        loop {
            let mut conn = self.pool.acquire().await?;
            if let Some(tier) = crate::tiers::tier(&mut conn, customer).await? {
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
        if let Some(me) = scope.assignee.clone() {
            if !f.assignee_id.is_empty() && f.assignee_id != me {
                return Err(Error::PermissionDenied {
                    permission: "the queue of another engineer".into(),
                });
            }
            f.assignee_id = me;
        }
        if let Some(region) = scope.region.clone() {
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
            states = crate::rules::role_queue(&caller.roles)
                .as_deref()
                .unwrap_or(crate::rules::OPEN)
                .iter()
                .map(|s| s.as_str_name().to_string())
                .collect();
        }
        let filter_key = format!(
            "{}|{}|{}|{}",
            states.join(","),
            f.assignee_id,
            f.region,
            scope.partner.as_deref().unwrap_or("")
        );
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
            scope.partner.as_deref(),
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
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let mut record = self
            .lock(&mut tx, id, patch.version, &call.principal)
            .await?;
        if record.ticket.state == TicketState::Closed as i32 {
            return Err(Error::precondition(
                "TICKET_CLOSED",
                "a closed ticket cannot be changed",
            ));
        }
        crate::intake::rules::apply_update(&mut record.ticket, patch, mask)?;
        let now = self.clock.now();
        record.ticket.version += 1;
        record.ticket.updated = Some(convert::stamp(now, &call.principal.subject));
        store::save(&mut tx, &record).await?;
        let fields: Vec<&str> = mask.iter().map(String::as_str).collect();
        audit::record(&mut tx, call, now, &subject(&record.ticket.id), &fields).await?;
        tx.commit().await?;
        Ok(record.ticket)
    }
}
