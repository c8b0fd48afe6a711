//! Tech-support partners (C-5): the first partner is set at once, a change waits for a sales
//! manager's approval; every request and decision is kept and announced.

pub mod rules;
mod store;

pub use rules::{
    PartnerDecision, PartnerDecisionInput, PartnerRequestInput, decide_partner_request,
};

use crm_kit::{Error, Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::customers::v1::{self as pb, PartnerChangeState};
use uuid::Uuid;

use crate::{
    service::{
        Customers, PARTNER_CHANGE_DECIDED, PARTNER_CHANGE_REQUESTED, customer_event, event,
        lock_visible, not_found, scope,
    },
    store as records,
};
use crm_kit::events;

impl Customers {
    /// Sets the first partner or opens a pending change request (C-5).
    pub async fn request_partner(
        &self,
        key: RequestKey,
        input: PartnerRequestInput,
        call: &Call,
    ) -> Result<pb::RequestPartnerChangeResponse> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let id = input.customer_id;
        let current = lock_visible(&mut tx, id, &scope).await?;
        let decision =
            decide_partner_request(&current.tech_partner_id, &input.proposed_partner_id)?;
        let now = self.clock.now();
        let state = match decision {
            PartnerDecision::SetInitial => PartnerChangeState::Initial,
            PartnerDecision::AwaitApproval => PartnerChangeState::Pending,
        };
        let change = store::insert_partner_change(
            &mut tx,
            &store::NewPartnerChange {
                id: Uuid::now_v7(),
                customer_id: id,
                current: &current.tech_partner_id,
                proposed: &input.proposed_partner_id,
                reason: &input.reason,
                state,
                actor,
                now,
            },
        )
        .await
        .map_err(|e| {
            e.or_when("partner_changes_one_pending", || {
                Error::precondition(
                    "PARTNER_CHANGE_PENDING",
                    "a partner change for this customer is already waiting for a decision",
                )
            })
        })?;
        if decision == PartnerDecision::SetInitial {
            records::apply_transition(
                &mut tx,
                id,
                records::Transition::Partner(&input.proposed_partner_id),
                now,
                actor,
            )
            .await?;
        }
        let response = pb::RequestPartnerChangeResponse {
            change: Some(change),
        };
        let changed: &[&str] = if decision == PartnerDecision::SetInitial {
            &["tech_partner_id"]
        } else {
            &["partner_change"]
        };
        audit::record(
            &mut tx,
            call,
            now,
            &format!(
                "customers/{id}/partner_changes/{}",
                response.change.as_ref().map_or("", |c| c.id.as_str())
            ),
            changed,
        )
        .await?;
        if let Some(change) = &response.change {
            let customer = records::get_customer(&mut tx, id, false)
                .await?
                .ok_or_else(|| not_found(id))?;
            let payload = customer_event(&customer, None, Some(change));
            let aggregate = format!("customers/{id}");
            events::publish(
                &mut tx,
                call,
                now,
                event(PARTNER_CHANGE_REQUESTED, &aggregate, payload),
            )
            .await?;
        }
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Approves (the proposed partner takes over) or rejects (the old one stays) a pending request.
    pub async fn decide_partner(
        &self,
        key: RequestKey,
        input: PartnerDecisionInput,
        approve: bool,
        call: &Call,
    ) -> Result<pb::PartnerChange> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let change = store::lock_partner_change(&mut tx, input.id)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "partner change",
                id: input.id.to_string(),
            })?;
        if change.state() != PartnerChangeState::Pending {
            return Err(Error::precondition(
                "PARTNER_CHANGE_DECIDED",
                format!(
                    "the partner change is {}, not pending",
                    change.state().as_str_name()
                ),
            ));
        }
        let customer_id: Uuid = change
            .customer_id
            .parse()
            .map_err(|e| Error::Internal(anyhow::anyhow!("{e}")))?;
        let now = self.clock.now();
        let state = if approve {
            PartnerChangeState::Approved
        } else {
            PartnerChangeState::Rejected
        };
        // the customer row is locked before the partner changes, like every other write
        lock_visible(&mut tx, customer_id, &scope).await?;
        if approve {
            records::apply_transition(
                &mut tx,
                customer_id,
                records::Transition::Partner(&change.proposed_partner_id),
                now,
                actor,
            )
            .await?;
        }
        let decided =
            store::decide_partner_change(&mut tx, input.id, state, &input.reason, actor, now)
                .await?;
        let changed: &[&str] = if approve {
            &["state", "tech_partner_id"]
        } else {
            &["state"]
        };
        audit::record(
            &mut tx,
            call,
            now,
            &format!("customers/{customer_id}/partner_changes/{}", input.id),
            changed,
        )
        .await?;
        let customer = records::get_customer(&mut tx, customer_id, false)
            .await?
            .ok_or_else(|| not_found(customer_id))?;
        let payload = customer_event(&customer, None, Some(&decided));
        let aggregate = format!("customers/{customer_id}");
        events::publish(
            &mut tx,
            call,
            now,
            event(PARTNER_CHANGE_DECIDED, &aggregate, payload),
        )
        .await?;
        key.finish(tx, &decided, now).await?;
        Ok(decided)
    }

    /// Partner-change requests.
    pub async fn list_partner_changes(
        &self,
        customer: Option<Uuid>,
        state: Option<PartnerChangeState>,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListPartnerChangesResponse> {
        let scope = scope(caller);
        let filter = format!("{customer:?}/{state:?}");
        let page = self.pager.read::<Uuid>(page, &filter)?;
        let mut conn = self.pool.acquire().await?;
        let mut changes = store::list_partner_changes(
            &mut conn,
            customer,
            state,
            &scope,
            page.after,
            page.limit(),
        )
        .await?;
        let page = self.pager.finish(&page, &mut changes, &filter, |c| {
            c.id.parse::<Uuid>().unwrap_or_default()
        });
        Ok(pb::ListPartnerChangesResponse {
            changes,
            page: Some(page),
        })
    }
}
