//! Returns and exchanges (退换货, R-4): requested by a customer or an agent for a unit
//! delivered to that customer (no more than was delivered; one open request per serial, held
//! by a unique index, so of two at once only one is made). The handling centre's engineer
//! files the diagnosis report, with its cause, whether or not the unit qualifies; the tech
//! centre judges; a supervisor who is not the requester decides — return (handed to the
//! commercial process) or exchange (the replacement reserved at the centre, then shipped,
//! possibly before the faulty unit is back: that opens an "awaiting return" obligation with
//! its own timer). Every step is in the history and published (`repairs.rma_changed`), so the
//! requester hears of each decision.

pub mod rules;
mod store;

use crm_kit::{
    Error, Result, audit,
    auth::Principal,
    context::Call,
    convert, history,
    idempotency::RequestKey,
    timers::{self, NewTimer, Timer},
};
use crm_proto::repairs::v1::{self as pb, RmaOutcome, RmaState, RmaStep};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::stored;
use crate::{
    catalogue, centres,
    service::{RMA_CHANGED, RMA_RETURN_OVERDUE, Repairs, holder, not_found, publish, scope},
    stock::{self, Delta},
};
use rules::{NewRma, RmaStepInput};

/// The timer kind of an exchanged unit's return.
pub(crate) const RETURN_DUE: &str = "repairs.rma_return_due";

fn subject(id: &str) -> String {
    format!("rmas/{id}")
}

/// The faulty unit of an exchange shipped first is overdue: recorded once and announced.
pub(crate) async fn return_overdue(
    repairs: &Repairs,
    tx: &mut PgConnection,
    timer: &Timer,
) -> std::result::Result<(), Error> {
    let Some(id) = timer
        .subject
        .strip_prefix("rmas/")
        .and_then(|s| Uuid::parse_str(s).ok())
    else {
        return Ok(());
    };
    if !store::mark_overdue(tx, id).await? {
        return Ok(());
    }
    let Some(row) = store::lock(tx, id).await? else {
        return Ok(());
    };
    let centre = centres::get_centre(tx, row.centre_id())
        .await?
        .unwrap_or_default();
    let event = pb::RmaEvent {
        rma: Some(row.to_proto()),
        centre: Some(centre),
        step: RmaStep::Unspecified as i32,
    };
    let call = Call::system("rma", RETURN_DUE);
    publish(
        tx,
        &call,
        repairs.clock.now(),
        RMA_RETURN_OVERDUE,
        &timer.subject,
        &event,
    )
    .await
}

impl Repairs {
    /// Records a delivery.
    pub async fn register_delivery(
        &self,
        key: RequestKey,
        d: pb::Delivery,
        call: &Call,
    ) -> Result<pb::RegisterDeliveryResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let delivery =
            store::insert_delivery(&mut tx, id, &d, now, &call.principal.subject).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("deliveries/{id}"),
            &["created"],
        )
        .await?;
        let response = pb::RegisterDeliveryResponse {
            delivery: Some(delivery),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Requests a return or exchange.
    pub async fn request_rma(
        &self,
        key: RequestKey,
        new: NewRma,
        call: &Call,
    ) -> Result<pb::RequestRmaResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let centre = centres::visible(&mut tx, new.centre, &scope(&call.principal)).await?;
        let a = &new.rma;
        match store::delivered(&mut tx, &a.serial_number).await? {
            Some((customer, _)) if customer != a.customer_id => {
                return Err(Error::invalid(
                    "rma.serial_number",
                    "is not a unit delivered to this customer",
                ));
            }
            None => {
                return Err(Error::invalid(
                    "rma.serial_number",
                    "is not a unit delivered or registered to any customer",
                ));
            }
            Some((_, delivered)) if a.quantity > delivered => {
                return Err(Error::invalid(
                    "rma.quantity",
                    format!("is more than the {delivered} delivered under this serial"),
                ));
            }
            Some(_) => {}
        }
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let rma = store::insert(&mut tx, id, a, &centre, now, &call.principal.subject)
            .await?
            .to_proto();
        self.record_step(
            &mut tx,
            call,
            now,
            &rma,
            &centre,
            RmaStep::Unspecified,
            "",
            &a.reason,
        )
        .await?;
        let response = pb::RequestRmaResponse { rma: Some(rma) };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// History, event and audit of a step (or the request).
    #[allow(clippy::too_many_arguments)]
    async fn record_step(
        &self,
        tx: &mut PgConnection,
        call: &Call,
        now: time::OffsetDateTime,
        rma: &pb::Rma,
        centre: &pb::Centre,
        step: RmaStep,
        from: &str,
        note: &str,
    ) -> Result<()> {
        let state = RmaState::try_from(rma.state).unwrap_or_default();
        history::record(
            tx,
            &history::Change {
                subject: &subject(&rma.id),
                kind: "state",
                from,
                to: stored(state.as_str_name(), "RMA_STATE_"),
                reason: note,
                via: match step {
                    RmaStep::Unspecified => "REQUEST",
                    s => stored(s.as_str_name(), "RMA_STEP_"),
                },
                actor: &call.principal.subject,
                at: now,
            },
        )
        .await?;
        let event = pb::RmaEvent {
            rma: Some(rma.clone()),
            centre: Some(centre.clone()),
            step: step as i32,
        };
        publish(tx, call, now, RMA_CHANGED, &subject(&rma.id), &event).await?;
        audit::record(tx, call, now, &subject(&rma.id), &["state"]).await?;
        Ok(())
    }

    /// Takes a request one step.
    pub async fn transition_rma(
        &self,
        key: RequestKey,
        input: RmaStepInput,
        call: &Call,
    ) -> Result<pb::TransitionRmaResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let row = store::lock(&mut tx, input.id)
            .await?
            .filter(|r| scope.permits(holder(&r.partner_id)))
            .ok_or_else(|| not_found("return/exchange request", input.id))?;
        let centre = centres::visible(&mut tx, row.centre_id(), &scope).await?;
        let mut a = row.to_proto();
        let from = RmaState::try_from(a.state).unwrap_or_default();
        let outcome = match input.step {
            RmaStep::Decide => RmaOutcome::try_from(input.r.outcome).unwrap_or_default(),
            _ => RmaOutcome::try_from(a.outcome).unwrap_or_default(),
        };
        let to = rules::next(
            from,
            input.step,
            outcome,
            row.faulty_received_time.is_some(),
        )?;
        rules::may(&call.principal, input.step, &centre, &row.requested_by)?;
        let now = self.clock.now();
        let me = Some(convert::stamp(now, &call.principal.subject));
        let centre_id = row.centre_id();
        let mut replacement = row.replacement_part_id;
        let mut armed = Vec::new();
        let r = &input.r;
        match input.step {
            RmaStep::Diagnose => {
                a.fault_cause.clone_from(&r.fault_cause);
                a.customer_situation.clone_from(&r.customer_situation);
                a.return_reason.clone_from(&r.return_reason);
                a.qualifies = r.qualifies;
                a.diagnosed = me;
            }
            RmaStep::Judge => {
                a.judgement.clone_from(&r.note);
                a.recommended = r.outcome;
                a.judged = me;
            }
            RmaStep::Decide => {
                a.outcome = outcome as i32;
                a.decision_reason.clone_from(&r.note);
                a.decided = me;
                if let Some(part) = input.replacement {
                    // the replacement is reserved at the centre now, prepared for shipping
                    let part = catalogue::known(&mut tx, part, "replacement_part_id").await?;
                    let part_id = Uuid::parse_str(&part.id).unwrap_or_default();
                    let reserve = Delta {
                        reserved: a.quantity,
                        ..Delta::default()
                    };
                    let stock = stock::adjust(&mut tx, centre_id, part_id, reserve, now)
                        .await?
                        .ok_or_else(|| {
                            Error::precondition(
                                "INSUFFICIENT_STOCK",
                                format!(
                                    "no {} replacement available at {}",
                                    part.part_number, centre.code
                                ),
                            )
                        })?;
                    stock::changed(&mut tx, call, now, &centre, stock).await?;
                    replacement = Some(part_id);
                }
            }
            RmaStep::ShipReplacement => {
                let part = replacement.ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("exchange {} has no replacement", a.id))
                })?;
                let issue = Delta {
                    on_hand: -a.quantity,
                    reserved: -a.quantity,
                    ..Delta::default()
                };
                let stock = stock::adjust(&mut tx, centre_id, part, issue, now)
                    .await?
                    .ok_or_else(|| {
                        Error::Internal(anyhow::anyhow!("exchange {} lost its reservation", a.id))
                    })?;
                stock::changed(&mut tx, call, now, &centre, stock).await?;
                a.carrier.clone_from(&r.carrier);
                a.tracking_number.clone_from(&r.tracking_number);
                if to == RmaState::AwaitingReturn {
                    let due = now + time::Duration::days(self.settings.return_days);
                    a.return_due_time = Some(convert::timestamp(due));
                    let timer = NewTimer {
                        kind: RETURN_DUE.into(),
                        subject: subject(&a.id),
                        due,
                        payload: serde_json::json!({}),
                    };
                    armed = timers::schedule(&mut tx, &[timer], now).await?;
                }
            }
            RmaStep::ReceiveFaultyUnit => {
                a.faulty_received_time = Some(convert::timestamp(now));
                timers::cancel(&mut tx, &subject(&a.id), Some(RETURN_DUE)).await?;
            }
            RmaStep::HandToCommercial | RmaStep::Unspecified => {}
        }
        a.state = to as i32;
        let a = store::save(&mut tx, &a, replacement, to == RmaState::Closed, now)
            .await?
            .to_proto();
        let note = match input.step {
            RmaStep::Diagnose => r.fault_cause.clone(),
            RmaStep::ShipReplacement => format!("{} {}", r.carrier, r.tracking_number),
            _ => r.note.clone(),
        };
        self.record_step(
            &mut tx,
            call,
            now,
            &a,
            &centre,
            input.step,
            stored(from.as_str_name(), "RMA_STATE_"),
            &note,
        )
        .await?;
        let response = pb::TransitionRmaResponse { rma: Some(a) };
        key.finish(tx, &response, now).await?;
        self.timers.arm(&armed).await;
        Ok(response)
    }

    /// One request in the caller's scope.
    pub async fn get_rma(&self, id: Uuid, caller: &Principal) -> Result<pb::Rma> {
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, &scope(caller), id)
            .await?
            .ok_or_else(|| not_found("return/exchange request", id))
    }

    /// Requests in the caller's scope, oldest first.
    pub async fn list_rmas(
        &self,
        r: &pb::ListRmasRequest,
        caller: &Principal,
    ) -> Result<pb::ListRmasResponse> {
        let filter = format!("rmas/{}", r.include_closed);
        let page = self.pager.read::<Uuid>(r.page.as_ref(), &filter)?;
        let mut conn = self.pool.acquire().await?;
        let mut rmas = store::list(
            &mut conn,
            &scope(caller),
            r.include_closed,
            page.after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut rmas, &filter, |a| {
            Uuid::parse_str(&a.id).unwrap_or_default()
        });
        Ok(pb::ListRmasResponse {
            rmas,
            page: Some(next),
        })
    }
}
