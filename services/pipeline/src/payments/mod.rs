//! Payments (P-5): recorded by finance against a contract, never above its outstanding balance
//! — the amount less the non-voided payments, computed in the same transaction under the
//! contract's row lock, so two payments at once are both recorded (one after the other) and
//! neither can overpay; a payment is voided with a reason and the balance is restored. Every
//! instalment has a kit timer at the end of its due date (the working calendar's clock): if
//! less was paid by then than the schedule asked for, the owner is reminded
//! (`pipeline.instalment_overdue`), once per instalment and contract version.

mod store;

use crm_kit::{
    Error, Result, Violations, audit,
    auth::Principal,
    context::Call,
    convert,
    idempotency::RequestKey,
    money,
    text::{self, Lines},
    timers::{NewTimer, Timer, TimerHandler},
};
use crm_proto::pipeline::v1 as pb;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    contracts,
    service::{
        FINANCE, INSTALMENT_OVERDUE, PAYMENT_RECORDED, PAYMENT_VOIDED, Pipeline, not_found, publish,
    },
};

/// The timer kind of an instalment's due date.
pub(crate) const INSTALMENT_DUE: &str = "pipeline.instalment_due";

impl Pipeline {
    /// The due-date timers of `c`'s instalments: each at the end of its due date on the working
    /// calendar's clock.
    pub(crate) fn instalment_timers(&self, c: &pb::Contract) -> Vec<NewTimer> {
        c.instalments
            .iter()
            .enumerate()
            .filter_map(|(i, inst)| {
                let date = convert::from_date(inst.due_date.as_ref()?).ok()?;
                let end = date
                    .next_day()?
                    .midnight()
                    .assume_offset(self.calendar.offset());
                Some(NewTimer {
                    kind: INSTALMENT_DUE.into(),
                    subject: contracts::subject(&c.id),
                    due: end.to_offset(time::UtcOffset::UTC),
                    payload: serde_json::json!({ "instalment": i, "version": c.version }),
                })
            })
            .collect()
    }
}

/// Fires the instalments' due dates: reminds the owner of what is overdue.
pub struct InstalmentTimers {
    /// The service.
    pub pipeline: Pipeline,
}

#[tonic::async_trait]
impl TimerHandler for InstalmentTimers {
    async fn fire(&self, tx: &mut PgConnection, timer: &Timer) -> std::result::Result<(), Error> {
        if timer.kind != INSTALMENT_DUE {
            tracing::warn!(kind = %timer.kind, "unknown pipeline timer kind; ignored");
            return Ok(());
        }
        let Some(id) = timer
            .subject
            .strip_prefix("contracts/")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        let Some(c) = contracts::store::get(tx, id, true).await? else {
            return Ok(());
        };
        let field = |name: &str| timer.payload.get(name).and_then(serde_json::Value::as_i64);
        // an amendment rescheduled the instalments: an earlier version's timer says nothing
        if field("version") != Some(i64::from(c.version)) {
            return Ok(());
        }
        let Some(i) = field("instalment").and_then(|i| usize::try_from(i).ok()) else {
            return Ok(());
        };
        let Some(instalment) = c.instalments.get(i).cloned() else {
            return Ok(());
        };
        let asked: i128 = c
            .instalments
            .iter()
            .take(i + 1)
            .filter_map(|x| x.amount.as_ref())
            .map(money::to_nanos)
            .sum();
        let paid = c.paid.as_ref().map_or(0, money::to_nanos);
        if paid >= asked {
            return Ok(());
        }
        let currency = c
            .amount
            .as_ref()
            .map_or("CNY", |m| m.currency_code.as_str())
            .to_string();
        let event = pb::InstalmentEvent {
            contract: Some(c.clone()),
            instalment: i32::try_from(i).unwrap_or(i32::MAX),
            due_date: instalment.due_date,
            overdue: Some(money::from_nanos(&currency, asked - paid)),
        };
        let call = Call::system("instalments", INSTALMENT_DUE);
        let now = self.pipeline.clock.now();
        publish(tx, &call, now, INSTALMENT_OVERDUE, &timer.subject, &event).await
    }
}

fn require_finance(caller: &Principal, what: &str) -> Result<()> {
    if caller.has_any(FINANCE) {
        Ok(())
    } else {
        Err(Error::PermissionDenied {
            permission: format!("{what} (finance)"),
        })
    }
}

impl Pipeline {
    /// Records a payment against a contract.
    pub async fn record_payment(
        &self,
        key: RequestKey,
        r: &pb::RecordPaymentRequest,
        call: &Call,
    ) -> Result<pb::RecordPaymentResponse> {
        let p = r.payment.clone().unwrap_or_default();
        let mut v = Violations::new();
        let contract = v.check("payment.contract_id", convert::parse_id(&p.contract_id));
        if let Some(problem) = money::problem(p.amount.as_ref()) {
            v.add("payment.amount", problem);
        }
        let paid_on = match p.paid_on.as_ref().map(convert::from_date) {
            Some(Ok(d)) => Some(d),
            _ => {
                v.add("payment.paid_on", "is required");
                None
            }
        };
        text::check(&mut v, "payment.reference", &p.reference, 200, Lines::One);
        v.finish()?;
        require_finance(&call.principal, "recording payments")?;
        let (contract, paid_on) = (
            contract.unwrap_or_default(),
            paid_on.unwrap_or(time::Date::MIN),
        );
        let amount = p.amount.clone().unwrap_or_default();
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let c = self
            .contract_in_scope(&mut tx, contract, true, &call.principal)
            .await?;
        let currency = c.amount.as_ref().map_or("", |m| m.currency_code.as_str());
        if amount.currency_code != currency {
            return Err(Error::invalid(
                "payment.amount",
                format!("is paid in the contract's currency, {currency}"),
            ));
        }
        let balance = c.balance.as_ref().map_or(0, money::to_nanos);
        if money::to_nanos(&amount) > balance {
            return Err(Error::precondition(
                "OVERPAYMENT",
                format!(
                    "the payment of {} is more than the balance of {}",
                    money::display(&amount),
                    money::display(c.balance.as_ref().unwrap_or(&amount))
                ),
            ));
        }
        let now = self.clock.now();
        let actor = &call.principal.subject;
        let payment = store::insert(
            &mut tx,
            (Uuid::now_v7(), contract),
            (&amount, paid_on, p.reference.trim()),
            now,
            actor,
        )
        .await?;
        let c = self
            .contract_in_scope(&mut tx, contract, false, &call.principal)
            .await?;
        let event = pb::PaymentEvent {
            payment: Some(payment.clone()),
            contract: Some(c.clone()),
        };
        let subject = contracts::subject(&c.id);
        publish(&mut tx, call, now, PAYMENT_RECORDED, &subject, &event).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("payments/{}", payment.id),
            &["created"],
        )
        .await?;
        let response = pb::RecordPaymentResponse {
            payment: Some(payment),
            contract: Some(c),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Voids a payment with a reason.
    pub async fn void_payment(
        &self,
        key: RequestKey,
        r: &pb::VoidPaymentRequest,
        call: &Call,
    ) -> Result<pb::VoidPaymentResponse> {
        let mut v = Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        text::require(&mut v, "reason", &r.reason, 1000, Lines::Many);
        v.finish()?;
        require_finance(&call.principal, "voiding payments")?;
        let id = id.unwrap_or_default();
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let contract = store::contract_of(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("payment", id))?;
        let c = self
            .contract_in_scope(&mut tx, contract, true, &call.principal)
            .await
            .map_err(|_| not_found("payment", id))?;
        let currency = c.amount.as_ref().map_or("", |m| m.currency_code.as_str());
        let now = self.clock.now();
        let payment = store::void(
            &mut tx,
            id,
            r.reason.trim(),
            currency,
            now,
            &call.principal.subject,
        )
        .await?
        .ok_or_else(|| Error::precondition("PAYMENT_VOIDED", "the payment was voided already"))?;
        let c = self
            .contract_in_scope(&mut tx, contract, false, &call.principal)
            .await?;
        let event = pb::PaymentEvent {
            payment: Some(payment.clone()),
            contract: Some(c.clone()),
        };
        publish(
            &mut tx,
            call,
            now,
            PAYMENT_VOIDED,
            &contracts::subject(&c.id),
            &event,
        )
        .await?;
        audit::record(&mut tx, call, now, &format!("payments/{id}"), &["voided"]).await?;
        let response = pb::VoidPaymentResponse {
            payment: Some(payment),
            contract: Some(c),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// A contract's payments, oldest first.
    pub async fn list_payments(
        &self,
        contract: Uuid,
        caller: &Principal,
    ) -> Result<pb::ListPaymentsResponse> {
        let mut conn = self.pool.acquire().await?;
        let c = self
            .contract_in_scope(&mut conn, contract, false, caller)
            .await?;
        let currency = c.amount.as_ref().map_or("", |m| m.currency_code.as_str());
        Ok(pb::ListPaymentsResponse {
            payments: store::list(&mut conn, contract, currency).await?,
        })
    }
}
