//! The customers service's use cases: each one a transaction that checks the rules of
//! [`crate::domain`], writes through [`crate::store`] and, for Creates and transitions, records
//! its response under the request id so a retry returns it unchanged.

use std::sync::Arc;

use crm_kit::{
    Clock, Error, Result, audit,
    auth::Principal,
    context::Call,
    events::{self, NewEvent, Payload},
    idempotency::RequestKey,
    paging::Pager,
};
use crm_proto::customers::v1::{self as pb, Stage, Tier};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    domain::{self, CustomerFields, CustomerQuery, Policy, Scope, StageChangeInput},
    store,
};

/// The customers service's state: its pool, clock and pager.
#[derive(Clone)]
pub struct Customers {
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    pub(crate) pager: Pager,
    pub(crate) policy: Arc<Policy>,
}

pub(crate) fn not_found(id: impl ToString) -> Error {
    Error::NotFound {
        kind: "customer",
        id: id.to_string(),
    }
}

/// The topic of the customers service's events.
pub const TOPIC: &str = crate::NAME;
/// A customer moved to another maturity stage (payload: CustomerEvent with the stage change).
pub const STAGE_CHANGED: &str = "customers.stage_changed";
/// A tech-support partner was asked for (payload: CustomerEvent with the request, INITIAL or
/// PENDING).
pub const PARTNER_CHANGE_REQUESTED: &str = "customers.partner_change_requested";
/// A pending partner change was approved or rejected (payload: CustomerEvent with the request).
pub const PARTNER_CHANGE_DECIDED: &str = "customers.partner_change_decided";
/// A customer was created or its record changed (payload: CustomerEvent, the customer after
/// the change): other services keep their copies (tickets: the tier) from it.
pub const CUSTOMER_CHANGED: &str = "customers.customer_changed";
/// A customer's fortnightly care message is due (payload: CustomerEvent, the customer with
/// its contacts).
pub const CARE_DUE: &str = "customers.care_due";
/// An import finished: one event per region with new customers (payload: ImportEvent), so its
/// sales manager assigns them (C-3).
pub const IMPORT_DONE: &str = "customers.import_done";
/// A batch of an import created customers (payload: CustomersImportedEvent, the customers in
/// file order): one event per batch instead of a customers.customer_changed per customer.
pub const CUSTOMERS_IMPORTED: &str = "customers.customers_imported";
/// A signed customer's service plan lags (C-8): visits behind the tier's quota or the service
/// report overdue (payload: CustomerEvent, the customer with its owner).
pub const SERVICE_OVERDUE: &str = "customers.service_overdue";
/// A customer's next contact date has passed with no contact (payload: CustomerEvent, the
/// customer with its owner and next contact date).
pub const NEXT_CONTACT_OVERDUE: &str = "customers.next_contact_overdue";

/// The payload of every customers event.
pub fn customer_event(
    customer: &pb::Customer,
    stage: Option<&pb::StageChange>,
    partner: Option<&pb::PartnerChange>,
) -> Payload {
    let data = pb::CustomerEvent {
        customer: Some(customer.clone()),
        stage_change: stage.cloned(),
        partner_change: partner.cloned(),
    };
    Payload::of(&data)
}

/// Reads the customer as it is after a change in `tx` and announces it
/// (`customers.customer_changed`), so other services keep their copies; returns it.
pub(crate) async fn announce_changed(
    tx: &mut sqlx::PgConnection,
    call: &Call,
    now: OffsetDateTime,
    id: Uuid,
) -> Result<pb::Customer> {
    let customer = store::get_customer(tx, id, false)
        .await?
        .ok_or_else(|| not_found(id))?;
    let aggregate = format!("customers/{id}");
    let payload = customer_event(&customer, None, None);
    events::publish(tx, call, now, event(CUSTOMER_CHANGED, &aggregate, payload)).await?;
    Ok(customer)
}

pub(crate) fn event<'a>(event_type: &'a str, aggregate: &'a str, payload: Payload) -> NewEvent<'a> {
    NewEvent {
        topic: TOPIC,
        event_type,
        aggregate,
        payload,
        urgent: false,
    }
}

/// Locks a live customer in the caller's scope for the rest of the transaction; one outside
/// the scope is NOT_FOUND, as if it did not exist.
pub(crate) async fn lock_visible(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    scope: &Scope,
) -> Result<pb::Customer> {
    store::get_customer(tx, id, true)
        .await?
        .filter(|c| scope.permits_customer(c))
        .ok_or_else(|| not_found(id))
}

fn out_of_scope() -> Error {
    Error::PermissionDenied {
        permission: "customers outside your region, ownership or partnership".into(),
    }
}

fn check_version(id: Uuid, given: i64, current: i64) -> Result<()> {
    if given != 0 && given != current {
        return Err(Error::StaleVersion {
            kind: "customer",
            id: id.to_string(),
            given,
            current,
        });
    }
    Ok(())
}

impl Customers {
    /// The service over `pool` (already migrated), with the configured `policy` (tier
    /// thresholds, assignment rules).
    pub fn new(pool: PgPool, clock: Clock, pager: Pager, policy: Policy) -> Self {
        Self {
            pool,
            clock,
            pager,
            policy: Arc::new(policy),
        }
    }

    /// Computes `fields`' tier from their inputs and sets the tier in force (the override, if
    /// any, wins); returns why the computed tier is what it is.
    pub(crate) fn settle_tier(
        &self,
        fields: &mut CustomerFields,
        override_tier: Option<Tier>,
    ) -> String {
        let (computed, why) = self.policy.tiers.classify(&fields.tier_inputs);
        fields.computed_tier = computed;
        fields.tier = domain::tier_in_force(computed, override_tier);
        why
    }

    /// Records a change of the tier in force, if the tier did change.
    async fn record_tier(
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

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The configured policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub(crate) async fn check_visible(
        &self,
        conn: &mut sqlx::PgConnection,
        id: Uuid,
        caller: &Principal,
    ) -> Result<()> {
        let scope = Scope::of(caller);
        store::get_customer(conn, id, false)
            .await?
            .filter(|c| scope.permits_customer(c))
            .map(|_| ())
            .ok_or_else(|| not_found(id))
    }

    /// One page of a customer's records kept in id (creation) order — its stage, tier and owner
    /// changes, its visits — after checking the caller sees the customer (NOT_FOUND if not).
    pub(crate) async fn customer_page<T>(
        &self,
        customer: Uuid,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
        fetch: impl AsyncFnOnce(&mut sqlx::PgConnection, Option<Uuid>, i64) -> Result<Vec<T>>,
        id_of: impl Fn(&T) -> &str,
    ) -> Result<(Vec<T>, crm_proto::common::v1::PageResponse)> {
        let filter = customer.to_string();
        let page = self.pager.read::<Uuid>(page, &filter)?;
        let mut conn = self.pool.acquire().await?;
        self.check_visible(&mut conn, customer, caller).await?;
        let mut items = fetch(&mut conn, page.after, page.limit()).await?;
        let next = self.pager.finish(&page, &mut items, &filter, |item| {
            id_of(item).parse::<Uuid>().unwrap_or_default()
        });
        Ok((items, next))
    }

    /// Creates a customer in the initial-contact stage.
    pub async fn create(
        &self,
        key: RequestKey,
        fields: CustomerFields,
        call: &Call,
    ) -> Result<pb::CreateCustomerResponse> {
        let caller = &call.principal;
        let scope = Scope::of(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        if !scope.permits(&fields.owner_id, &fields.region, "") {
            return Err(out_of_scope());
        }
        let now = self.clock.now();
        let customer = self.create_in(&mut tx, fields, call, now).await?;
        let id = customer.id.clone();
        let response = pb::CreateCustomerResponse {
            customer: Some(customer),
        };
        key.finish(tx, &response, now).await?;
        tracing::info!(customer.id = %id, "customer created");
        Ok(response)
    }

    /// Creates a customer in the initial-contact stage inside `tx`: its tier computed, the
    /// first stage and tier rows, the audit event and `customers.customer_changed`.
    pub(crate) async fn create_in(
        &self,
        tx: &mut sqlx::PgConnection,
        mut fields: CustomerFields,
        call: &Call,
        now: OffsetDateTime,
    ) -> Result<pb::Customer> {
        let actor = call.principal.subject.as_str();
        let id = Uuid::now_v7();
        let why = self.settle_tier(&mut fields, None);
        store::insert_customer(tx, id, &fields, Stage::InitialContact, now, actor).await?;
        let change = domain::tier_change(Tier::Unspecified, fields.tier, why, false);
        Self::record_tier(tx, id, change, now, actor).await?;
        store::insert_stage_change(
            tx,
            &pb::StageChange {
                from_stage: Stage::Unspecified.into(),
                to_stage: Stage::InitialContact.into(),
                reason: "created".into(),
                changed: Some(crm_kit::convert::stamp(now, actor)),
                ..Default::default()
            },
            Uuid::now_v7(),
            id,
            now,
        )
        .await?;
        let customer = announce_changed(tx, call, now, id).await?;
        audit::record(tx, call, now, &format!("customers/{id}"), &fields.present()).await?;
        Ok(customer)
    }

    /// One live customer.
    pub async fn get(&self, id: Uuid, caller: &Principal) -> Result<pb::Customer> {
        let scope = Scope::of(caller);
        let mut conn = self.pool.acquire().await?;
        store::get_customer(&mut conn, id, false)
            .await?
            .filter(|c| scope.permits_customer(c))
            .ok_or_else(|| not_found(id))
    }

    /// Searches customers.
    pub async fn list(
        &self,
        query: CustomerQuery,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListCustomersResponse> {
        let scope = Scope::of(caller);
        let filter = query.fingerprint();
        let page = self.pager.read::<Uuid>(page, &filter)?;
        let mut conn = self.pool.acquire().await?;
        let mut customers =
            store::list_customers(&mut conn, &query, &scope, page.after, page.limit()).await?;
        let page = self.pager.finish(&page, &mut customers, &filter, |c| {
            c.id.parse::<Uuid>().unwrap_or_default()
        });
        Ok(pb::ListCustomersResponse {
            customers,
            page: Some(page),
        })
    }

    /// Applies the masked fields of `patch` if `patch.version` is current.
    pub async fn update(
        &self,
        patch: pb::Customer,
        mask: Vec<String>,
        call: &Call,
    ) -> Result<pb::Customer> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = Scope::of(caller);
        let id = domain::parse_id(&patch.id).map_err(|e| Error::invalid("customer.id", e))?;
        let mut tx = self.pool.begin().await?;
        let mut current = lock_visible(&mut tx, id, &scope).await?;
        let tier_before = current.tier();
        let override_tier = current.tier_override.as_ref().map(|o| o.tier());
        domain::apply_mask(&mut current, &patch, &mask)?;
        let mut fields = CustomerFields::parse("customer", &current)?;
        let why = self.settle_tier(&mut fields, override_tier);
        if patch.version <= 0 {
            return Err(Error::invalid(
                "customer.version",
                "is required: send the version you read",
            ));
        }
        check_version(id, patch.version, current.version)?;
        if !scope.permits(&fields.owner_id, &fields.region, &current.tech_partner_id) {
            return Err(out_of_scope());
        }
        let now = self.clock.now();
        store::update_customer(&mut tx, id, &fields, now, actor).await?;
        let change = domain::tier_change(tier_before, fields.tier, why, false);
        Self::record_tier(&mut tx, id, change, now, actor).await?;
        let changed: Vec<&str> = mask.iter().map(String::as_str).collect();
        audit::record(&mut tx, call, now, &format!("customers/{id}"), &changed).await?;
        let updated = announce_changed(&mut tx, call, now, id).await?;
        tx.commit().await?;
        Ok(updated)
    }

    /// Soft-deletes a customer.
    pub async fn delete(
        &self,
        key: RequestKey,
        id: Uuid,
        version: i64,
        call: &Call,
    ) -> Result<pb::DeleteCustomerResponse> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = Scope::of(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let current = lock_visible(&mut tx, id, &scope).await?;
        check_version(id, version, current.version)?;
        let now = self.clock.now();
        store::soft_delete(&mut tx, id, now, actor).await?;
        let response = pb::DeleteCustomerResponse {
            customer: Some(current),
        };
        audit::record(
            &mut tx,
            call,
            now,
            &format!("customers/{id}"),
            &["delete_time"],
        )
        .await?;
        key.finish(tx, &response, now).await?;
        Ok(response)
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
        let scope = Scope::of(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let id = input.customer_id;
        let current = lock_visible(&mut tx, id, &scope).await?;
        check_version(id, input.version, current.version)?;
        domain::check_stage_change(current.stage(), input.stage)?;
        let now = self.clock.now();
        let change = pb::StageChange {
            id: Uuid::now_v7().to_string(),
            customer_id: id.to_string(),
            from_stage: current.stage,
            to_stage: input.stage.into(),
            reason: input.reason,
            changed: Some(crm_kit::convert::stamp(now, actor)),
        };
        store::apply_transition(
            &mut tx,
            id,
            store::Transition::Stage(input.stage),
            now,
            actor,
        )
        .await?;
        store::insert_stage_change(&mut tx, &change, change.id.parse().expect("uuid"), id, now)
            .await?;
        let customer = store::get_customer(&mut tx, id, false)
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
        let scope = Scope::of(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let current = lock_visible(&mut tx, id, &scope).await?;
        check_version(id, version, current.version)?;
        let computed = current.computed_tier();
        let in_force = domain::tier_in_force(computed, override_tier);
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
        let change = domain::tier_change(current.tier(), in_force, why, true);
        Self::record_tier(&mut tx, id, change, now, actor).await?;
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
