//! The maturity stages (C-4): the change with who, when and why, and the stage history. Signing
//! schedules the visits after signing (C-9).

pub mod rules;
mod store;

use crm_kit::{Result, audit, auth::Principal, context::Call, events, idempotency::RequestKey};
use crm_proto::customers::v1::{self as pb, Stage};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Customers,
    service::{STAGE_CHANGED, customer_event, event, lock_at_version, not_found, scope},
    stages::rules::StageChangeInput,
};

/// Records a new customer's first stage, initial contact, inside `tx`.
pub(crate) async fn record_created(
    tx: &mut sqlx::PgConnection,
    customer: Uuid,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    let change = pb::StageChange {
        from_stage: Stage::Unspecified.into(),
        to_stage: Stage::InitialContact.into(),
        reason: "created".into(),
        changed: Some(crm_kit::convert::stamp(now, actor)),
        ..Default::default()
    };
    store::insert_stage_change(tx, &change, Uuid::now_v7(), customer, now).await
}

impl Customers {
    /// Moves `customer` to SIGNED inside `tx` because a contract was signed (P-4): the stage
    /// change with `reason` in its history and the visits after signing (C-9). The contract is
    /// the evidence, so the stages before it are not walked one by one; a customer signed
    /// already keeps its stage and visits.
    pub(crate) async fn sign(
        &self,
        tx: &mut sqlx::PgConnection,
        customer: &pb::Customer,
        reason: &str,
        actor: &str,
    ) -> Result<()> {
        if customer.stage() == Stage::Signed {
            return Ok(());
        }
        let id: Uuid = customer
            .id
            .parse()
            .map_err(|e: uuid::Error| crm_kit::Error::Internal(e.into()))?;
        let now = self.clock.now();
        let change = pb::StageChange {
            id: Uuid::now_v7().to_string(),
            customer_id: customer.id.clone(),
            from_stage: customer.stage,
            to_stage: Stage::Signed.into(),
            reason: reason.to_string(),
            changed: Some(crm_kit::convert::stamp(now, actor)),
        };
        crate::store::apply_transition(
            tx,
            id,
            crate::store::Transition::Stage(Stage::Signed),
            now,
            actor,
        )
        .await?;
        store::insert_stage_change(tx, &change, change.id.parse().expect("uuid"), id, now).await?;
        self.schedule_visits(tx, customer).await
    }

    /// Moves a customer to another stage, recording who, when and why.
    pub async fn change_stage(
        &self,
        key: RequestKey,
        input: StageChangeInput,
        call: &Call,
    ) -> Result<pb::ChangeCustomerStageResponse> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let id = input.customer_id;
        let current = lock_at_version(&mut tx, id, input.version, &scope).await?;
        crate::stages::rules::check_stage_change(current.stage(), input.stage)?;
        let now = self.clock.now();
        let change = pb::StageChange {
            id: Uuid::now_v7().to_string(),
            customer_id: id.to_string(),
            from_stage: current.stage,
            to_stage: input.stage.into(),
            reason: input.reason,
            changed: Some(crm_kit::convert::stamp(now, actor)),
        };
        crate::store::apply_transition(
            &mut tx,
            id,
            crate::store::Transition::Stage(input.stage),
            now,
            actor,
        )
        .await?;
        store::insert_stage_change(&mut tx, &change, change.id.parse().expect("uuid"), id, now)
            .await?;
        let customer = crate::store::get_customer(&mut tx, id, false)
            .await?
            .ok_or_else(|| not_found(id))?;
        if input.stage == Stage::Signed {
            // the return visit and the satisfaction visit (C-9)
            self.schedule_visits(&mut tx, &customer).await?;
        }
        audit::record(&mut tx, call, now, &format!("customers/{id}"), &["stage"]).await?;
        let aggregate = format!("customers/{id}");
        let payload = customer_event(&customer, Some(&change), None);
        events::publish(
            &mut tx,
            call,
            now,
            event(STAGE_CHANGED, &aggregate, payload),
        )
        .await?;
        let response = pb::ChangeCustomerStageResponse {
            customer: Some(customer),
            change: Some(change),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// A customer's stage history.
    pub async fn list_stage_changes(
        &self,
        customer: Uuid,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListStageChangesResponse> {
        let fetch = async |conn: &mut sqlx::PgConnection, after, limit| {
            store::list_stage_changes(conn, customer, after, limit).await
        };
        let (changes, page) = self
            .customer_page(customer, page, caller, fetch, |c: &pb::StageChange| &c.id)
            .await?;
        Ok(pb::ListStageChangesResponse {
            changes,
            page: Some(page),
        })
    }
}
