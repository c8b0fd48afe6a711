//! Contracts signed in the pipeline (P-4, C-7, C-9): the pipeline's `pipeline.contract_signed`
//! moves the customer to SIGNED, adds the contract's amount (in yuan) to its investment total
//! and sets its annual service fee, so its tier is recomputed, and schedules the visits after
//! signing; `pipeline.contract_amended` adds the difference and sets the new fee. Each contract
//! version is applied once (a table of the applied ones, beside the kit's once per event id).

use crm_kit::{Error, context::Call, events, scope::Scope};
use crm_proto::{events::v1::Event, pipeline::v1::ContractEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    Customers,
    records::rules::CustomerFields,
    service::{announce_changed, lock_visible},
};

/// The pipeline's events this capability acts on.
pub const SIGNED: &str = "pipeline.contract_signed";
/// An amendment of a signed contract.
pub const AMENDED: &str = "pipeline.contract_amended";

/// Records that version `version` of `contract` was applied; false when it was already.
async fn mark_applied(tx: &mut PgConnection, contract: &str, version: i32) -> Result<bool, Error> {
    Ok(sqlx::query(
        "INSERT INTO applied_contracts (contract_id, version) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(contract)
    .bind(version)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1)
}

impl Customers {
    /// Applies a signed or amended contract to its customer.
    pub(crate) async fn apply_contract(
        &self,
        tx: &mut PgConnection,
        event: &Event,
    ) -> Result<(), Error> {
        let data: ContractEvent = events::decode(event)?;
        let Some(contract) = data.contract else {
            return Ok(());
        };
        if !mark_applied(tx, &contract.id, contract.version).await? {
            return Ok(());
        }
        let Ok(id) = Uuid::parse_str(&contract.customer_id) else {
            return Ok(());
        };
        let everyone = Scope {
            all: true,
            ..Scope::default()
        };
        let mut current = match lock_visible(tx, id, &everyone).await {
            Ok(c) => c,
            Err(Error::NotFound { .. }) => {
                tracing::warn!(customer = %id, contract = %contract.number, "a contract for a customer not known here");
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let actor = if event.actor.is_empty() {
            "pipeline"
        } else {
            event.actor.as_str()
        };
        let now = self.clock.now();
        let tier_before = current.tier();
        let override_tier = current.tier_override.as_ref().map(|o| o.tier());
        current.investment_cny = current.investment_cny.saturating_add(data.investment_cny);
        current.annual_service_fee_cny = data.annual_service_fee_cny;
        let mut fields = CustomerFields::parse("customer", &current)?;
        let why = self.settle_tier(&mut fields, override_tier);
        crate::records::store::update_customer(tx, id, &fields, now, actor).await?;
        let change = crate::tiers::rules::tier_change(
            tier_before,
            fields.tier,
            format!("contract {}: {why}", contract.number),
            false,
        );
        crate::tiers::record(tx, id, change, now, actor).await?;
        if event.r#type == SIGNED {
            self.sign(
                tx,
                &current,
                &format!("contract {} signed", contract.number),
                actor,
            )
            .await?;
        }
        let call = Call::system(actor, &event.r#type);
        announce_changed(tx, &call, now, id).await?;
        Ok(())
    }
}
