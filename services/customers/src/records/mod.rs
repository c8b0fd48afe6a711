//! The customer record (C-1, C-10): create, read, search, update by field mask and soft delete.
//! Each write is one transaction that checks the record's [`rules`], writes through its
//! [`store`], audits and announces the customer as it is after the change.

pub mod rules;
pub(crate) mod store;

use crm_kit::{Error, Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::customers::v1::{self as pb, Stage, Tier};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    Customers,
    records::rules::{CustomerFields, CustomerQuery},
    service::{
        announce_changed, check_version, find_visible, holder, lock_at_version, lock_visible,
        out_of_scope, scope,
    },
    tiers,
};

impl Customers {
    /// Creates a customer in the initial-contact stage.
    pub async fn create(
        &self,
        key: RequestKey,
        fields: CustomerFields,
        call: &Call,
    ) -> Result<pb::CreateCustomerResponse> {
        let caller = &call.principal;
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        if !scope.permits(holder(&fields.owner_id, &fields.region, "")) {
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
        let change = crate::tiers::rules::tier_change(Tier::Unspecified, fields.tier, why, false);
        tiers::record(tx, id, change, now, actor).await?;
        crate::stages::record_created(tx, id, now, actor).await?;
        let customer = announce_changed(tx, call, now, id).await?;
        audit::record(tx, call, now, &format!("customers/{id}"), &fields.present()).await?;
        Ok(customer)
    }

    /// One live customer.
    pub async fn get(&self, id: Uuid, caller: &Principal) -> Result<pb::Customer> {
        let mut conn = self.pool.acquire().await?;
        find_visible(&mut conn, id, &scope(caller), false).await
    }

    /// Searches customers.
    pub async fn list(
        &self,
        query: CustomerQuery,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListCustomersResponse> {
        let scope = scope(caller);
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
        let scope = scope(caller);
        let id = crm_kit::convert::id("customer.id", &patch.id)?;
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let mut current = lock_visible(&mut tx, id, &scope).await?;
        let tier_before = current.tier();
        let override_tier = current.tier_override.as_ref().map(|o| o.tier());
        crate::records::rules::apply_mask(&mut current, &patch, &mask)?;
        let mut fields = CustomerFields::parse("customer", &current)?;
        let why = self.settle_tier(&mut fields, override_tier);
        if patch.version <= 0 {
            return Err(Error::invalid(
                "customer.version",
                "is required: send the version you read",
            ));
        }
        check_version(id, patch.version, current.version)?;
        if !scope.permits(holder(
            &fields.owner_id,
            &fields.region,
            &current.tech_partner_id,
        )) {
            return Err(out_of_scope());
        }
        let now = self.clock.now();
        store::update_customer(&mut tx, id, &fields, now, actor).await?;
        let change = crate::tiers::rules::tier_change(tier_before, fields.tier, why, false);
        tiers::record(&mut tx, id, change, now, actor).await?;
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
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let current = lock_at_version(&mut tx, id, version, &scope).await?;
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
}
