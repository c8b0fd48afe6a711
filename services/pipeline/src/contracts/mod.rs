//! Contracts (P-4): signed for a won opportunity, one per opportunity, numbered at signing from
//! the configured series of the year — the counter row is taken under its lock in the signing
//! transaction, so concurrent signings get consecutive numbers and a failed one gives its
//! number back. The payment schedule adds up to the amount exactly. Signing publishes
//! `pipeline.contract_signed` with the amount and the annual fee in yuan; the customers service
//! applies it to the customer once (stage SIGNED, investment, fee, tier, return visit). An
//! amendment is a new version, every version kept.

pub mod rules;
pub(crate) mod store;

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, convert, idempotency::RequestKey, money,
    timers,
};
use crm_proto::pipeline::v1::{self as pb, Stage};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::{
    CONTRACT_AMENDED, CONTRACT_SIGNED, Pipeline, holder, not_found, publish, scope,
};
use rules::Terms;

pub(crate) fn subject(id: &str) -> String {
    format!("contracts/{id}")
}

impl Pipeline {
    /// `amount` in whole yuan, or `INVALID_ARGUMENT` on `field` for a currency without a rate.
    fn yuan(&self, field: &str, amount: &crm_proto::common::v1::Money) -> Result<i64> {
        self.settings.yuan(amount).ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "no rate is configured for {} ([pipeline.rates])",
                    amount.currency_code
                ),
            )
        })
    }

    /// Signs the contract of a won opportunity.
    pub async fn sign_contract(
        &self,
        key: RequestKey,
        r: &pb::SignContractRequest,
        call: &Call,
    ) -> Result<pb::SignContractResponse> {
        let c = r.contract.clone().unwrap_or_default();
        let opportunity = convert::id("contract.opportunity_id", &c.opportunity_id);
        let terms = Terms::parse("contract", &c);
        let (opportunity, terms) = crm_kit::error::both(opportunity, terms)?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let o = self
            .lock_opportunity(&mut tx, opportunity, 0, &call.principal)
            .await?;
        rules::may_sign(Stage::try_from(o.stage).unwrap_or_default())?;
        let amount = terms
            .amount
            .clone()
            .or_else(|| o.amount.clone())
            .unwrap_or_default();
        if let Some(p) = money::problem(Some(&amount)) {
            return Err(Error::invalid("contract.amount", p));
        }
        terms.check_schedule("contract", &amount)?;
        let fee = terms
            .fee
            .clone()
            .unwrap_or_else(|| money::from_nanos(&amount.currency_code, 0));
        let investment = self.yuan("contract.amount", &amount)?;
        let fee_yuan = self.yuan("contract.annual_service_fee", &fee)?;
        let now = self.clock.now();
        let actor = &call.principal.subject;
        let year = self.today().year();
        let series = &self.settings.contract_series;
        let n = store::next_number(&mut tx, series, year).await?;
        let contract = pb::Contract {
            id: Uuid::now_v7().to_string(),
            number: rules::number(series, year, n),
            opportunity_id: o.id.clone(),
            customer_id: o.customer_id.clone(),
            owner_id: o.owner_id.clone(),
            region: o.region.clone(),
            amount: Some(amount.clone()),
            annual_service_fee: Some(fee),
            term_months: terms.term_months,
            start_date: Some(convert::date(terms.start)),
            instalments: terms
                .instalments
                .iter()
                .map(|(d, m)| pb::Instalment {
                    due_date: Some(convert::date(*d)),
                    amount: Some(m.clone()),
                })
                .collect(),
            version: 1,
            paid: Some(money::from_nanos(&amount.currency_code, 0)),
            balance: Some(amount),
            signed: Some(convert::stamp(now, actor)),
            updated: Some(convert::stamp(now, actor)),
        };
        store::save(&mut tx, &contract, "signed", now, actor).await?;
        let armed = timers::schedule(&mut tx, &self.instalment_timers(&contract), now).await?;
        let event = pb::ContractEvent {
            contract: Some(contract.clone()),
            investment_cny: investment,
            annual_service_fee_cny: fee_yuan,
        };
        publish(
            &mut tx,
            call,
            now,
            CONTRACT_SIGNED,
            &subject(&contract.id),
            &event,
        )
        .await?;
        audit::record(&mut tx, call, now, &subject(&contract.id), &["signed"]).await?;
        let response = pb::SignContractResponse {
            contract: Some(contract),
        };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// Contract `id` in the caller's scope (locked when `lock`).
    pub(crate) async fn contract_in_scope(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        lock: bool,
        caller: &Principal,
    ) -> Result<pb::Contract> {
        let scope = scope(caller);
        store::get(conn, id, lock)
            .await?
            .filter(|c| scope.permits(holder(&c.owner_id, &c.region)))
            .ok_or_else(|| not_found("contract", id))
    }

    /// One contract in the caller's scope.
    pub async fn get_contract(&self, id: Uuid, caller: &Principal) -> Result<pb::Contract> {
        let mut conn = self.pool.acquire().await?;
        self.contract_in_scope(&mut conn, id, false, caller).await
    }

    /// Amends a signed contract as a new version.
    pub async fn amend_contract(
        &self,
        key: RequestKey,
        r: &pb::AmendContractRequest,
        call: &Call,
    ) -> Result<pb::AmendContractResponse> {
        let id = convert::id("id", &r.id);
        let terms = Terms::parse("contract", &r.contract.clone().unwrap_or_default());
        let (id, terms) = crm_kit::error::both(id, terms)?;
        if r.reason.trim().is_empty() {
            return Err(Error::invalid(
                "reason",
                "is required: why the contract changes",
            ));
        }
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut c = self
            .contract_in_scope(&mut tx, id, true, &call.principal)
            .await?;
        if r.version != 0 && r.version != c.version {
            return Err(Error::StaleVersion {
                kind: "contract",
                id: id.to_string(),
                given: i64::from(r.version),
                current: i64::from(c.version),
            });
        }
        let before = c.amount.clone().unwrap_or_default();
        let amount = terms.amount.clone().unwrap_or_else(|| before.clone());
        if amount.currency_code != before.currency_code {
            return Err(Error::invalid(
                "contract.amount",
                "an amendment keeps the contract's currency",
            ));
        }
        terms.check_schedule("contract", &amount)?;
        let paid = c.paid.as_ref().map_or(0, money::to_nanos);
        if money::to_nanos(&amount) < paid {
            return Err(Error::precondition(
                "BELOW_PAID",
                "the amended amount is less than what was paid already",
            ));
        }
        let fee = terms
            .fee
            .clone()
            .or_else(|| c.annual_service_fee.clone())
            .unwrap_or_default();
        let added =
            self.yuan("contract.amount", &amount)? - self.yuan("contract.amount", &before)?;
        let fee_yuan = self.yuan("contract.annual_service_fee", &fee)?;
        let now = self.clock.now();
        let actor = &call.principal.subject;
        c.amount = Some(amount.clone());
        c.annual_service_fee = Some(fee);
        c.term_months = terms.term_months;
        c.start_date = Some(convert::date(terms.start));
        c.instalments = terms
            .instalments
            .iter()
            .map(|(d, m)| pb::Instalment {
                due_date: Some(convert::date(*d)),
                amount: Some(m.clone()),
            })
            .collect();
        c.version += 1;
        c.balance = Some(money::from_nanos(
            &amount.currency_code,
            money::to_nanos(&amount) - paid,
        ));
        c.updated = Some(convert::stamp(now, actor));
        store::save(&mut tx, &c, r.reason.trim(), now, actor).await?;
        // the schedule may have changed: the earlier version's reminders go
        timers::cancel(
            &mut tx,
            &subject(&c.id),
            Some(crate::payments::INSTALMENT_DUE),
        )
        .await?;
        let armed = timers::schedule(&mut tx, &self.instalment_timers(&c), now).await?;
        let event = pb::ContractEvent {
            contract: Some(c.clone()),
            investment_cny: added,
            annual_service_fee_cny: fee_yuan,
        };
        publish(
            &mut tx,
            call,
            now,
            CONTRACT_AMENDED,
            &subject(&c.id),
            &event,
        )
        .await?;
        audit::record(&mut tx, call, now, &subject(&c.id), &["version"]).await?;
        let response = pb::AmendContractResponse { contract: Some(c) };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// A contract's versions, oldest first.
    pub async fn contract_versions(
        &self,
        id: Uuid,
        caller: &Principal,
    ) -> Result<pb::ListContractVersionsResponse> {
        let mut conn = self.pool.acquire().await?;
        self.contract_in_scope(&mut conn, id, false, caller).await?;
        let versions = store::versions(&mut conn, id).await?;
        Ok(pb::ListContractVersionsResponse {
            versions: versions
                .into_iter()
                .map(|(contract, reason, at, actor)| pb::ContractVersion {
                    contract: Some(contract),
                    reason,
                    changed: Some(convert::stamp(at, &actor)),
                })
                .collect(),
        })
    }
}
