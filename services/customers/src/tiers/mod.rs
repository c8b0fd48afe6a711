//! The tier (C-7): computed from the customer's inputs by the configured thresholds, overridden
//! by a manager with a reason, every change of the tier in force recorded in its history.

pub mod rules;
mod store;

use crm_kit::{Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::customers::v1::{self as pb, Tier};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Customers,
    records::rules::CustomerFields,
    service::{announce_changed, lock_at_version, scope},
};

/// Records a change of the tier in force inside `tx`, if the tier did change.
pub(crate) async fn record(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    change: pb::TierChange,
    now: OffsetDateTime,
    actor: &str,
) -> Result<()> {
    if change.from_tier == change.to_tier {
        return Ok(());
    }
    store::insert_tier_change(tx, id, &change, now, actor).await
}

impl Customers {
    /// Computes `fields`' tier from their inputs and sets the tier in force (the override, if
    /// any, wins); returns why the computed tier is what it is.
    pub(crate) fn settle_tier(
        &self,
        fields: &mut CustomerFields,
        override_tier: Option<Tier>,
    ) -> String {
        let (computed, why) = self.policy.tiers.classify(&fields.tier_inputs);
        fields.computed_tier = computed;
        fields.tier = crate::tiers::rules::tier_in_force(computed, override_tier);
        why
    }

    /// Sets or clears a manager's tier override (C-7); the change of the tier in force is
    /// recorded and announced like any change of the customer.
    pub async fn set_tier_override(
        &self,
        key: RequestKey,
        id: Uuid,
        override_tier: Option<Tier>,
        reason: String,
        version: i64,
        call: &Call,
    ) -> Result<pb::SetTierOverrideResponse> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let current = lock_at_version(&mut tx, id, version, &scope).await?;
        let computed = current.computed_tier();
        let in_force = crate::tiers::rules::tier_in_force(computed, override_tier);
        let now = self.clock.now();
        store::set_tier_override(
            &mut tx,
            id,
            override_tier.map(|t| (t, reason.as_str())),
            in_force,
            now,
            actor,
        )
        .await?;
        let why = match override_tier {
            Some(t) => format!("override to {}: {reason}", t.as_str_name()),
            None if reason.is_empty() => "override cleared".to_string(),
            None => format!("override cleared: {reason}"),
        };
        let change = crate::tiers::rules::tier_change(current.tier(), in_force, why, true);
        record(&mut tx, id, change, now, actor).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("customers/{id}"),
            &["tier_override"],
        )
        .await?;
        let updated = announce_changed(&mut tx, call, now, id).await?;
        let response = pb::SetTierOverrideResponse {
            customer: Some(updated),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// A customer's tier changes, oldest first.
    pub async fn list_tier_changes(
        &self,
        customer: Uuid,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListTierChangesResponse> {
        let fetch = async |conn: &mut sqlx::PgConnection, after, limit| {
            store::tier_changes(conn, customer, after, limit).await
        };
        let (changes, page) = self
            .customer_page(customer, page, caller, fetch, |c: &pb::TierChange| &c.id)
            .await?;
        Ok(pb::ListTierChangesResponse {
            changes,
            page: Some(page),
        })
    }
}
