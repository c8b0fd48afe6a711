//! The customers service's state and what every capability shares: the events it publishes,
//! the caller's scope (G-2, by the kit's [`crm_kit::scope`] rules), locking a visible customer,
//! the version check and one page of a customer's records. The use cases are in the capability
//! folders (`records/`, `stages/`, `tiers/`, …), each a transaction that checks its rules,
//! writes through its SQL and, for Creates and transitions, records its response under the
//! request id so a retry returns it unchanged.

use std::sync::Arc;

use crm_kit::{
    Clock, Error, Result, Role,
    auth::Principal,
    context::Call,
    events::{self, NewEvent, Payload},
    paging::Pager,
    scope::{Grants, Holder, Scope},
};
use crm_proto::customers::v1 as pb;
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{rules::Policy, store};

/// Who sees which customers (G-2): the back office and service roles every customer; a sales
/// rep the customers they own and those of their region; a tech support the customers they
/// partner; a partner none. Roles add up.
pub(crate) const GRANTS: Grants = Grants {
    all: &[
        Role::Admin,
        Role::SalesManager,
        Role::DataClerk,
        Role::HotlineAgent,
        Role::HotlineEngineer,
        Role::Coordinator,
        Role::Engineer,
        Role::TechCenter,
        Role::ComplaintOfficer,
        Role::Supervisor,
        Role::CrmLead,
        Role::Finance,
    ],
    own: &[Role::SalesRep],
    region: &[Role::SalesRep],
    organisation: &[],
    partnered: &[Role::TechSupport],
};

/// The customers `caller` may see and change.
pub(crate) fn scope(caller: &Principal) -> Scope {
    Scope::of(caller, &GRANTS)
}

/// What a customer's scope is checked on: its owner, region and tech-support partner.
pub(crate) fn holder<'a>(owner: &'a str, region: &'a str, tech_partner: &'a str) -> Holder<'a> {
    Holder {
        owner,
        region,
        organisation: "",
        partner: tech_partner,
    }
}

/// Whether `customer` is in `scope`.
pub(crate) fn sees(scope: &Scope, customer: &pb::Customer) -> bool {
    scope.permits(holder(
        &customer.owner_id,
        &customer.region,
        &customer.tech_partner_id,
    ))
}

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
    find_visible(tx, id, scope, true).await
}

/// A live customer in `scope` (with a row lock when `lock`); one outside it is NOT_FOUND.
pub(crate) async fn find_visible(
    conn: &mut sqlx::PgConnection,
    id: Uuid,
    scope: &Scope,
    lock: bool,
) -> Result<pb::Customer> {
    store::get_customer(conn, id, lock)
        .await?
        .filter(|c| sees(scope, c))
        .ok_or_else(|| not_found(id))
}

/// [`lock_visible`], then the version the caller read checked (0 skips): how a transition
/// starts.
pub(crate) async fn lock_at_version(
    tx: &mut sqlx::PgConnection,
    id: Uuid,
    version: i64,
    scope: &Scope,
) -> Result<pb::Customer> {
    let current = lock_visible(tx, id, scope).await?;
    check_version(id, version, current.version)?;
    Ok(current)
}

pub(crate) fn out_of_scope() -> Error {
    Error::PermissionDenied {
        permission: "customers outside your region, ownership or partnership".into(),
    }
}

pub(crate) fn check_version(id: Uuid, given: i64, current: i64) -> Result<()> {
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
        find_visible(conn, id, &scope(caller), false)
            .await
            .map(drop)
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: &[&str], region: &str) -> Principal {
        Principal {
            subject: "u1".into(),
            name: "u1".into(),
            kind: crm_kit::auth::PrincipalKind::User,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: region.into(),
            partner_id: String::new(),
            session_id: String::new(),
        }
    }

    #[test]
    fn scopes_by_role() {
        let rep = scope(&principal(&["sales_rep"], "华东"));
        assert!(rep.permits(holder("u1", "华南", "")));
        assert!(rep.permits(holder("u2", "华东", "")));
        assert!(!rep.permits(holder("u2", "华南", "")));
        let ts = scope(&principal(&["tech_support"], ""));
        assert!(ts.permits(holder("u2", "华南", "u1")));
        assert!(!ts.permits(holder("u2", "华南", "")));
        assert!(!scope(&principal(&["partner"], "")).permits(holder("u2", "华东", "")));
        assert!(scope(&principal(&["sales_manager"], "")).permits(holder("u2", "华南", "")));
    }
}
