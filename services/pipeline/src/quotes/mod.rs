//! Quotes and their discounts (P-3, P-7): a quote of an open opportunity is priced exactly
//! from its lines; a line's discount above `[pipeline] discount_limit_bp` needs the sales
//! manager's approval, asked for with the reason (the customer's obstacle, e.g. its budget) and
//! decided by someone other than the requester. The approval holds for the digest of the very
//! lines it saw: a saved change voids it, a copy starts without it. Until it holds the quote
//! cannot be sent and its opportunity cannot be won (`awaiting_approval`). The requester never
//! decides and an approved or sent quote matches its approval — both also table constraints.

pub mod rules;
mod store;

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, convert, idempotency::RequestKey,
};
use crm_proto::pipeline::v1::{self as pb, QuoteState as Q};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::{
    opportunities::rules::closed,
    service::{
        DISCOUNT_DECIDED, DISCOUNT_REQUESTED, Pipeline, QUOTE_CHANGED, not_found, publish,
        require_managing,
    },
};
use store::Record;

/// How many quotes of `opportunity` wait for a discount approval of their present lines.
pub(crate) async fn awaiting_approval(conn: &mut PgConnection, opportunity: Uuid) -> Result<i64> {
    store::awaiting_approval(conn, opportunity).await
}

fn subject(id: &str) -> String {
    format!("quotes/{id}")
}

/// The step asked of a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteStep {
    /// Ask for the discount's approval.
    Request,
    /// Approve the discount.
    Approve,
    /// Reject it.
    Reject,
    /// Send the quote.
    Send,
}

impl Pipeline {
    /// The quote `id` with its opportunity, both in the caller's scope (the quote locked when
    /// `lock`, the opportunity then too).
    async fn quote_in_scope(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        lock: bool,
        caller: &Principal,
    ) -> Result<(Record, pb::Opportunity)> {
        let r = store::get(conn, id, lock)
            .await?
            .ok_or_else(|| not_found("quote", id))?;
        let opportunity = Uuid::parse_str(&r.quote.opportunity_id).unwrap_or_default();
        let o = if lock {
            self.lock_opportunity(conn, opportunity, 0, caller).await
        } else {
            self.get_opportunity(opportunity, caller).await
        }
        .map_err(|_| not_found("quote", id))?;
        Ok((r, o))
    }

    async fn finish_quote(
        &self,
        tx: &mut PgConnection,
        call: &Call,
        r: &mut Record,
        o: &pb::Opportunity,
        event_type: &str,
    ) -> Result<()> {
        let now = self.clock.now();
        r.quote.version += 1;
        r.quote.updated = Some(convert::stamp(now, &call.principal.subject));
        store::save(tx, r).await?;
        let event = pb::QuoteEvent {
            quote: Some(r.quote.clone()),
            opportunity: Some(o.clone()),
        };
        publish(tx, call, now, event_type, &subject(&r.quote.id), &event).await?;
        audit::record(tx, call, now, &subject(&r.quote.id), &["quote"]).await?;
        Ok(())
    }

    /// Saves a new quote or a new revision of one not sent.
    pub async fn save_quote(
        &self,
        key: RequestKey,
        r: &pb::SaveQuoteRequest,
        call: &Call,
    ) -> Result<pb::SaveQuoteResponse> {
        let q = r.quote.clone().unwrap_or_default();
        let priced = rules::price("quote.lines", &q.lines)?;
        let existing = match q.id.as_str() {
            "" => None,
            id => Some(convert::id("quote.id", id)?),
        };
        let opportunity = match existing {
            Some(_) => None,
            None => Some(convert::id("quote.opportunity_id", &q.opportunity_id)?),
        };
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let actor = call.principal.subject.clone();
        let needs_approval = priced.max_discount_bp > self.settings.discount_limit_bp;
        let (mut record, o) = match existing {
            Some(id) => {
                let (mut record, o) = self
                    .quote_in_scope(&mut tx, id, true, &call.principal)
                    .await?;
                if r.version != 0 && r.version != record.quote.version {
                    return Err(Error::StaleVersion {
                        kind: "quote",
                        id: id.to_string(),
                        given: r.version,
                        current: record.quote.version,
                    });
                }
                if record.quote.state == Q::Sent as i32 {
                    return Err(Error::precondition(
                        "QUOTE_SENT",
                        "a sent quote is final: copy it to change it",
                    ));
                }
                if record.digest != priced.digest {
                    // a change: the approval of the earlier lines no longer holds
                    record.quote.revision += 1;
                    record.quote.state = Q::Draft as i32;
                    record.quote.requested_by.clear();
                    record.quote.request_reason.clear();
                    record.quote.decided_by.clear();
                    record.quote.decision_reason.clear();
                }
                (record, o)
            }
            None => {
                let id = opportunity.unwrap_or_default();
                let o = self
                    .lock_opportunity(&mut tx, id, 0, &call.principal)
                    .await?;
                let record = Record {
                    quote: pb::Quote {
                        id: Uuid::now_v7().to_string(),
                        opportunity_id: o.id.clone(),
                        state: Q::Draft as i32,
                        revision: 1,
                        created: Some(convert::stamp(now, &actor)),
                        ..Default::default()
                    },
                    digest: Vec::new(),
                    approved_digest: None,
                };
                (record, o)
            }
        };
        let stage = pb::Stage::try_from(o.stage).unwrap_or_default();
        if closed(stage) {
            return Err(Error::precondition(
                "OPPORTUNITY_CLOSED",
                "quotes are made for open opportunities",
            ));
        }
        record.quote.lines = priced.lines;
        record.quote.total = Some(priced.total);
        record.quote.max_discount_bp = priced.max_discount_bp;
        record.quote.needs_approval = needs_approval;
        record.digest = priced.digest;
        self.finish_quote(&mut tx, call, &mut record, &o, QUOTE_CHANGED)
            .await?;
        let response = pb::SaveQuoteResponse {
            quote: Some(record.quote),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Copies a quote into a new draft, without its approval.
    pub async fn copy_quote(
        &self,
        key: RequestKey,
        id: Uuid,
        call: &Call,
    ) -> Result<pb::CopyQuoteResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let (source, o) = self
            .quote_in_scope(&mut tx, id, true, &call.principal)
            .await?;
        let mut record = Record {
            quote: pb::Quote {
                id: Uuid::now_v7().to_string(),
                opportunity_id: source.quote.opportunity_id.clone(),
                lines: source.quote.lines.clone(),
                total: source.quote.total.clone(),
                max_discount_bp: source.quote.max_discount_bp,
                needs_approval: source.quote.needs_approval,
                state: Q::Draft as i32,
                revision: 1,
                copied_from: source.quote.id.clone(),
                created: Some(convert::stamp(now, &call.principal.subject)),
                ..Default::default()
            },
            digest: source.digest.clone(),
            // an approval is of one quote: the copy asks again
            approved_digest: None,
        };
        self.finish_quote(&mut tx, call, &mut record, &o, QUOTE_CHANGED)
            .await?;
        let response = pb::CopyQuoteResponse {
            quote: Some(record.quote),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// One quote in the caller's scope.
    pub async fn get_quote(&self, id: Uuid, caller: &Principal) -> Result<pb::Quote> {
        let mut conn = self.pool.acquire().await?;
        Ok(self
            .quote_in_scope(&mut conn, id, false, caller)
            .await?
            .0
            .quote)
    }

    /// Asks for, decides on, or sends a quote.
    pub async fn step_quote(
        &self,
        key: RequestKey,
        (id, version, reason): (Uuid, i64, String),
        step: QuoteStep,
        call: &Call,
    ) -> Result<pb::Quote> {
        if matches!(
            step,
            QuoteStep::Request | QuoteStep::Approve | QuoteStep::Reject
        ) && reason.trim().is_empty()
        {
            return Err(Error::invalid("reason", "is required"));
        }
        if matches!(step, QuoteStep::Approve | QuoteStep::Reject) {
            require_managing(&call.principal, "deciding discounts")?;
        }
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let (mut r, o) = self
            .quote_in_scope(&mut tx, id, true, &call.principal)
            .await?;
        if version != 0 && version != r.quote.version {
            return Err(Error::StaleVersion {
                kind: "quote",
                id: id.to_string(),
                given: version,
                current: r.quote.version,
            });
        }
        let state = Q::try_from(r.quote.state).unwrap_or_default();
        let actor = call.principal.subject.clone();
        let reason = reason.trim().to_string();
        let event_type = match (step, state) {
            (QuoteStep::Request, Q::Draft | Q::Rejected) => {
                if !r.quote.needs_approval {
                    return Err(Error::precondition(
                        "NO_APPROVAL_NEEDED",
                        "no line's discount is above the limit",
                    ));
                }
                r.quote.state = Q::ApprovalRequested as i32;
                r.quote.requested_by = actor;
                r.quote.request_reason = reason;
                r.quote.decided_by.clear();
                r.quote.decision_reason.clear();
                DISCOUNT_REQUESTED
            }
            (QuoteStep::Approve | QuoteStep::Reject, Q::ApprovalRequested) => {
                if actor == r.quote.requested_by {
                    return Err(Error::precondition(
                        "REQUESTER_DECIDES",
                        "a discount is decided by someone other than its requester",
                    ));
                }
                if step == QuoteStep::Approve {
                    r.quote.state = Q::Approved as i32;
                    r.approved_digest = Some(r.digest.clone());
                } else {
                    r.quote.state = Q::Rejected as i32;
                }
                r.quote.decided_by = actor;
                r.quote.decision_reason = reason;
                DISCOUNT_DECIDED
            }
            (QuoteStep::Send, Q::Draft | Q::Approved) => {
                let approved = r.approved_digest.as_ref() == Some(&r.digest);
                if r.quote.needs_approval && !approved {
                    return Err(Error::precondition(
                        "DISCOUNT_NOT_APPROVED",
                        "a discount above the limit is sent only once approved for these lines",
                    ));
                }
                r.quote.state = Q::Sent as i32;
                QUOTE_CHANGED
            }
            _ => {
                return Err(Error::precondition(
                    "QUOTE_STEP_FORBIDDEN",
                    format!(
                        "{step:?} is not allowed for a quote that is {}",
                        state.as_str_name()
                    ),
                ));
            }
        };
        self.finish_quote(&mut tx, call, &mut r, &o, event_type)
            .await?;
        key.finish(tx, &r.quote, now).await?;
        Ok(r.quote)
    }
}
