//! Assignment of customers to sales reps (C-3): by a configured rule, fairly by load in the
//! customer's region, or by hand; every change of owner recorded, audited and announced. The
//! sales reps are known from the gateway's user events.

use std::collections::BTreeMap;

use crm_kit::{Error, Result, audit, context::Call, convert, directory, idempotency::RequestKey};
use crm_proto::customers::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

pub mod rules;
mod store;

pub use rules::{AssignInput, AssignmentRule};

use crate::service::{Customers, announce_changed, lock_visible, scope};

/// The role customers are assigned to.
pub(crate) const SALES_REP: crm_kit::Role = crm_kit::Role::SalesRep;

impl Customers {
    /// The owner for `c` and how it was chosen; `loads` holds each region's reps and their
    /// open customers, loaded (and locked) on first need and kept current as the batch goes.
    async fn choose_owner(
        &self,
        tx: &mut PgConnection,
        input: &AssignInput,
        c: &pb::Customer,
        loads: &mut BTreeMap<String, BTreeMap<String, i64>>,
    ) -> Result<(String, String)> {
        if !loads.contains_key(&c.region) {
            let reps = store::sales_rep_loads(tx, &c.region).await?;
            loads.insert(c.region.clone(), reps.into_iter().collect());
        }
        let reps = &loads[&c.region];
        if input.mode == pb::AssignmentMode::ToOwner {
            return match directory::region_of(tx, &input.owner_id, SALES_REP).await? {
                Some(region) if region == c.region => {
                    Ok((input.owner_id.clone(), "by hand".to_string()))
                }
                Some(region) => Err(Error::precondition(
                    "OWNER_IN_OTHER_REGION",
                    format!(
                        "{} works in region {region}; customer {} is in {}",
                        input.owner_id, c.id, c.region
                    ),
                )),
                None => Err(Error::precondition(
                    "NOT_A_SALES_REP",
                    format!("{} is not a sales rep", input.owner_id),
                )),
            };
        }
        if let Some(rule) = self
            .policy
            .assignment_rules
            .iter()
            .find(|r| r.matches(&c.region, &c.industry) && reps.contains_key(&r.owner))
        {
            return Ok((rule.owner.clone(), rule.describe()));
        }
        rules::fairest(reps)
            .map(|(rep, open)| {
                (
                    rep,
                    format!("fair: fewest open customers in {} ({open})", c.region),
                )
            })
            .ok_or_else(|| {
                Error::precondition(
                    "NO_SALES_REP",
                    format!("no sales rep works in region {}", c.region),
                )
            })
    }

    /// Assigns customers (C-3), all or nothing.
    pub async fn assign(
        &self,
        key: RequestKey,
        input: AssignInput,
        call: &Call,
    ) -> Result<pb::AssignCustomersResponse> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let mut loads: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
        let mut assignments = Vec::with_capacity(input.ids.len());
        for id in &input.ids {
            let c = lock_visible(&mut tx, *id, &scope).await?;
            let (owner, rule) = self.choose_owner(&mut tx, &input, &c, &mut loads).await?;
            let mut change = pb::OwnerChange {
                customer_id: c.id.clone(),
                from_owner_id: c.owner_id.clone(),
                to_owner_id: owner.clone(),
                rule,
                reason: input.reason.clone(),
                changed: Some(convert::stamp(now, actor)),
                ..Default::default()
            };
            if owner != c.owner_id {
                if rules::is_open(&c) {
                    let region = loads.entry(c.region.clone()).or_default();
                    *region.entry(owner.clone()).or_default() += 1;
                    if let Some(n) = region.get_mut(&c.owner_id) {
                        *n -= 1;
                    }
                }
                store::set_owner(&mut tx, *id, &owner, now, actor).await?;
                change.id = store::insert_owner_change(&mut tx, &change, *id, now, actor)
                    .await?
                    .to_string();
                let aggregate = format!("customers/{id}");
                audit::record(&mut tx, call, now, &aggregate, &["owner_id"]).await?;
                announce_changed(&mut tx, call, now, *id).await?;
            }
            assignments.push(change);
        }
        let response = pb::AssignCustomersResponse { assignments };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// A customer's owner changes, oldest first.
    pub async fn list_owner_changes(
        &self,
        customer: Uuid,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &crm_kit::auth::Principal,
    ) -> Result<pb::ListOwnerChangesResponse> {
        let fetch = async |conn: &mut PgConnection, after, limit| {
            store::owner_changes(conn, customer, after, limit).await
        };
        let (changes, page) = self
            .customer_page(customer, page, caller, fetch, |c: &pb::OwnerChange| &c.id)
            .await?;
        Ok(pb::ListOwnerChangesResponse {
            changes,
            page: Some(page),
        })
    }
}
