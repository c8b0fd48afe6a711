//! Part requests: an engineer's or partner's request for parts for one job. Requesting
//! reserves the quantity at once — never more than is on hand, however many requests arrive
//! together — or is refused; issuing hands the parts out; settling accounts for every part
//! taken out, used (consumed) or returned to the shelf, so nothing stays out after a job;
//! cancelling releases the reservation. Each step is in the kit's history with who, when and
//! why, and published as `repairs.part_request_changed`.

pub mod rules;
mod store;

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, history, idempotency::RequestKey,
};
use crm_proto::repairs::v1::{self as pb, PartRequestState as State};
use uuid::Uuid;

use crate::{
    catalogue, centres,
    service::{PART_REQUEST_CHANGED, Repairs, holder, not_found, publish, scope},
    stock::{self, Delta},
};
use rules::{NewPartRequest, Step};

fn subject(id: Uuid) -> String {
    format!("part_requests/{id}")
}

/// A checked step of a part request.
#[derive(Debug, Clone)]
pub struct StepInput {
    /// The request.
    pub id: Uuid,
    /// Which step.
    pub step: Step,
    /// Units used (settle).
    pub used: i32,
    /// Units returned (settle).
    pub returned: i32,
    /// Why (cancel; required there).
    pub reason: String,
}

impl StepInput {
    /// Checks a step's request at the edge: the id, and a cancellation's reason (the
    /// settlement's counts are checked against the request's quantity).
    pub fn parse(id: &str, step: Step, used: i32, returned: i32, reason: &str) -> Result<Self> {
        let mut v = crm_kit::Violations::new();
        let id = v.check("id", crm_kit::convert::parse_id(id));
        if step == Step::Cancel {
            crm_kit::text::require(&mut v, "reason", reason, 500, crm_kit::text::Lines::Many);
        }
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            step,
            used,
            returned,
            reason: reason.trim().to_string(),
        })
    }
}

/// The stock change of `step` on a request of `quantity` units.
fn delta(step: Step, quantity: i32, input: &StepInput) -> Delta {
    match step {
        // off the shelf, and no longer merely promised
        Step::Issue => Delta {
            on_hand: -quantity,
            reserved: -quantity,
            in_transit: 0,
        },
        // what was not used goes back on the shelf; what was used is consumed
        Step::Settle => Delta {
            on_hand: input.returned,
            ..Delta::default()
        },
        Step::Cancel => Delta {
            reserved: -quantity,
            ..Delta::default()
        },
    }
}

impl Repairs {
    /// Requests parts: reserves the quantity or refuses with `INSUFFICIENT_STOCK`.
    pub async fn request_parts(
        &self,
        key: RequestKey,
        r: NewPartRequest,
        call: &Call,
    ) -> Result<pb::RequestPartsResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let centre = centres::visible(&mut tx, r.centre, &scope).await?;
        let part = catalogue::known(&mut tx, r.part, "part_id").await?;
        let now = self.clock.now();
        let reserve = Delta {
            reserved: r.quantity,
            ..Delta::default()
        };
        let Some(stock) = stock::adjust(&mut tx, r.centre, r.part, reserve, now).await? else {
            let available = stock::get_stock(&mut tx, &scope, r.centre, r.part)
                .await?
                .map_or(0, |s| s.available);
            return Err(Error::precondition(
                "INSUFFICIENT_STOCK",
                format!(
                    "{} units of {} requested, {available} available at centre {}",
                    r.quantity, part.part_number, centre.code
                ),
            ));
        };
        let id = Uuid::now_v7();
        let insert = store::Insert {
            id,
            centre: &centre,
            part: r.part,
            quantity: r.quantity,
            ticket_id: &r.ticket_id,
            note: &r.note,
        };
        let row = store::insert(&mut tx, &insert, now, &call.principal.subject).await?;
        let stock = stock::changed(&mut tx, call, now, &centre, stock).await?;
        let request = row.to_proto();
        history::record(
            &mut tx,
            &history::Change {
                subject: &subject(id),
                kind: "state",
                from: "",
                to: rules::state_name(State::Reserved),
                reason: &r.note,
                via: "request",
                actor: &call.principal.subject,
                at: now,
            },
        )
        .await?;
        publish(
            &mut tx,
            call,
            now,
            PART_REQUEST_CHANGED,
            &subject(id),
            &request,
        )
        .await?;
        audit::record(&mut tx, call, now, &subject(id), &["created"]).await?;
        let response = pb::RequestPartsResponse {
            part_request: Some(request),
            stock: Some(stock),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Takes request `id` one step (issue, settle or cancel); `respond` makes the step's
    /// response from the request and the stock after it.
    pub async fn step_part_request<R: prost::Message + Default>(
        &self,
        key: RequestKey,
        input: StepInput,
        call: &Call,
        respond: fn(pb::PartRequest, pb::Stock) -> R,
    ) -> Result<R> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let scope = scope(&call.principal);
        let row = store::lock(&mut tx, input.id)
            .await?
            .filter(|r| scope.permits(holder(&r.partner_id)))
            .ok_or_else(|| not_found("part request", input.id))?;
        let before = row.to_proto();
        let from = State::try_from(before.state).unwrap_or_default();
        let to = rules::next(from, input.step)?;
        if input.step == Step::Settle {
            rules::settlement(before.quantity, input.used, input.returned)?;
        }
        let (_, centre_id, part_id) = row.ids();
        let centre = centres::visible(&mut tx, centre_id, &scope).await?;
        let now = self.clock.now();
        let change = delta(input.step, before.quantity, &input);
        let stock = stock::adjust(&mut tx, centre_id, part_id, change, now)
            .await?
            .ok_or_else(|| {
                Error::Internal(anyhow::anyhow!(
                    "part request {} ({from:?}) does not fit its stock row",
                    input.id
                ))
            })?;
        let outcome = store::Outcome {
            state: to,
            used: input.used,
            returned: input.returned,
            cancel_reason: &input.reason,
        };
        let row =
            store::record_step(&mut tx, input.id, &outcome, now, &call.principal.subject).await?;
        let stock = stock::changed(&mut tx, call, now, &centre, stock).await?;
        let request = row.to_proto();
        let reason = match input.step {
            Step::Settle => format!("{} used, {} returned", input.used, input.returned),
            _ => input.reason.clone(),
        };
        history::record(
            &mut tx,
            &history::Change {
                subject: &subject(input.id),
                kind: "state",
                from: rules::state_name(from),
                to: rules::state_name(to),
                reason: &reason,
                via: input.step.name(),
                actor: &call.principal.subject,
                at: now,
            },
        )
        .await?;
        publish(
            &mut tx,
            call,
            now,
            PART_REQUEST_CHANGED,
            &subject(input.id),
            &request,
        )
        .await?;
        audit::record(&mut tx, call, now, &subject(input.id), &["state"]).await?;
        let response = respond(request, stock);
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// One part request in the caller's scope.
    pub async fn get_part_request(&self, id: Uuid, caller: &Principal) -> Result<pb::PartRequest> {
        let mut conn = self.pool.acquire().await?;
        store::get(&mut conn, &scope(caller), id)
            .await?
            .ok_or_else(|| not_found("part request", id))
    }

    /// Part requests in the caller's scope, oldest first; a centre out of scope is `NOT_FOUND`.
    pub async fn list_part_requests(
        &self,
        r: &pb::ListPartRequestsRequest,
        caller: &Principal,
    ) -> Result<pb::ListPartRequestsResponse> {
        let centre = match r.centre_id.as_str() {
            "" => None,
            id => Some(crm_kit::convert::id("centre_id", id)?),
        };
        let filter = format!("part_requests/{centre:?}/{}", r.outstanding);
        let page = self.pager.read::<Uuid>(r.page.as_ref(), &filter)?;
        let scope = scope(caller);
        let mut conn = self.pool.acquire().await?;
        if let Some(centre) = centre {
            centres::visible(&mut conn, centre, &scope).await?;
        }
        let mut part_requests = store::list(
            &mut conn,
            &scope,
            centre,
            r.outstanding,
            page.after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut part_requests, &filter, |p| {
            Uuid::parse_str(&p.id).unwrap_or_default()
        });
        Ok(pb::ListPartRequestsResponse {
            part_requests,
            page: Some(next),
        })
    }
}
