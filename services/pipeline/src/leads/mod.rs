//! Leads (P-1): recorded with their source (a campaign, an import, the hotline, a partner, a
//! service follow-up), qualified or disqualified with a reason, and converted to an
//! opportunity on a customer — one opportunity per lead (a unique index), and a retried
//! conversion returns the first.

pub mod rules;
mod store;

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, convert, idempotency::RequestKey,
};
use crm_proto::pipeline::v1::{self as pb, LeadState, LeadTransition};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    opportunities::rules::NewOpportunity,
    rules::stored,
    service::{LEAD_CHANGED, Pipeline, holder, not_found, publish, scope},
};

fn subject(id: &str) -> String {
    format!("leads/{id}")
}

impl Pipeline {
    async fn announce_lead(
        tx: &mut PgConnection,
        call: &Call,
        now: OffsetDateTime,
        lead: &pb::Lead,
    ) -> Result<()> {
        let event = pb::LeadEvent {
            lead: Some(lead.clone()),
        };
        publish(tx, call, now, LEAD_CHANGED, &subject(&lead.id), &event).await?;
        audit::record(tx, call, now, &subject(&lead.id), &["state"]).await
    }

    /// Records a lead.
    pub async fn create_lead(
        &self,
        key: RequestKey,
        mut lead: pb::Lead,
        call: &Call,
    ) -> Result<pb::CreateLeadResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let actor = &call.principal.subject;
        if lead.owner_id.is_empty() {
            lead.owner_id.clone_from(actor);
        }
        if !scope(&call.principal).permits(holder(&lead.owner_id, &lead.region)) {
            return Err(Error::PermissionDenied {
                permission: "recording a lead for another owner or region".into(),
            });
        }
        lead.id = Uuid::now_v7().to_string();
        lead.state = LeadState::New as i32;
        lead.version = 1;
        lead.created = Some(convert::stamp(now, actor));
        lead.updated = Some(convert::stamp(now, actor));
        store::save(&mut tx, &lead).await?;
        Self::announce_lead(&mut tx, call, now, &lead).await?;
        let response = pb::CreateLeadResponse { lead: Some(lead) };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    async fn lock_lead(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        version: i64,
        caller: &Principal,
    ) -> Result<pb::Lead> {
        let scope = scope(caller);
        let lead = store::get(tx, id, true)
            .await?
            .filter(|l| scope.permits(holder(&l.owner_id, &l.region)))
            .ok_or_else(|| not_found("lead", id))?;
        if version != 0 && version != lead.version {
            return Err(Error::StaleVersion {
                kind: "lead",
                id: id.to_string(),
                given: version,
                current: lead.version,
            });
        }
        Ok(lead)
    }

    /// One lead in the caller's scope.
    pub async fn get_lead(&self, id: Uuid, caller: &Principal) -> Result<pb::Lead> {
        let mut conn = self.pool.acquire().await?;
        let scope = scope(caller);
        store::get(&mut conn, id, false)
            .await?
            .filter(|l| scope.permits(holder(&l.owner_id, &l.region)))
            .ok_or_else(|| not_found("lead", id))
    }

    /// Leads in the caller's scope, newest first.
    pub async fn list_leads(
        &self,
        r: &pb::ListLeadsRequest,
        caller: &Principal,
    ) -> Result<pb::ListLeadsResponse> {
        let mut states = Vec::new();
        for (i, s) in r.states.iter().enumerate() {
            match LeadState::try_from(*s) {
                Ok(LeadState::Unspecified) | Err(_) => {
                    return Err(Error::invalid(
                        format!("states[{i}]"),
                        "is not a lead state",
                    ));
                }
                Ok(s) => states.push(stored(s.as_str_name(), "LEAD_STATE_").to_string()),
            }
        }
        let filter = format!("{}|{}", states.join(","), r.owner_id);
        let page = self.pager.read::<(i64, Uuid)>(r.page.as_ref(), &filter)?;
        let after = page.after.map(|(nanos, id)| {
            (
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
                id,
            )
        });
        let mut conn = self.pool.acquire().await?;
        let owner = (!r.owner_id.is_empty()).then_some(r.owner_id.as_str());
        let mut leads = store::list(
            &mut conn,
            &scope(caller),
            &states,
            owner,
            after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut leads, &filter, |l| {
            let t = l
                .created
                .as_ref()
                .and_then(|c| c.time.as_ref())
                .and_then(|t| convert::from_timestamp(t).ok())
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            (
                i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX),
                Uuid::parse_str(&l.id).unwrap_or_default(),
            )
        });
        Ok(pb::ListLeadsResponse {
            leads,
            page: Some(next),
        })
    }

    /// Qualifies or disqualifies a lead.
    pub async fn transition_lead(
        &self,
        key: RequestKey,
        r: &pb::TransitionLeadRequest,
        call: &Call,
    ) -> Result<pb::TransitionLeadResponse> {
        let mut v = crm_kit::Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        let transition = LeadTransition::try_from(r.transition).unwrap_or_default();
        if transition == LeadTransition::Unspecified {
            v.add("transition", "must be QUALIFY or DISQUALIFY");
        }
        if transition == LeadTransition::Disqualify && r.reason.trim().is_empty() {
            v.add("reason", "is required: why the lead is not pursued");
        }
        crm_kit::text::check(
            &mut v,
            "reason",
            &r.reason,
            1000,
            crm_kit::text::Lines::Many,
        );
        v.finish()?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut lead = self
            .lock_lead(&mut tx, id.unwrap_or_default(), r.version, &call.principal)
            .await?;
        let from = LeadState::try_from(lead.state).unwrap_or_default();
        let to = rules::next(from, transition)?;
        let now = self.clock.now();
        lead.state = to as i32;
        lead.reason = r.reason.trim().to_string();
        lead.version += 1;
        lead.updated = Some(convert::stamp(now, &call.principal.subject));
        store::save(&mut tx, &lead).await?;
        Self::announce_lead(&mut tx, call, now, &lead).await?;
        let response = pb::TransitionLeadResponse { lead: Some(lead) };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// The customer a lead is converted on, made from it in the customers service as the
    /// caller (`bearer`: their authorization header) with a request id of the lead, so the
    /// lead makes one customer however often its conversion is tried.
    async fn customer_from(&self, lead: &pb::Lead, bearer: Option<&str>) -> Result<Uuid> {
        use crm_proto::customers::v1 as cpb;
        let (Some(channel), Some(bearer)) = (self.customers.clone(), bearer) else {
            return Err(Error::invalid(
                "customer_id",
                "is required: the customers service is not reachable from here",
            ));
        };
        let mut request = tonic::Request::new(cpb::CreateCustomerRequest {
            request_id: format!("lead-{}", lead.id),
            customer: Some(cpb::Customer {
                display_name: lead.name.clone(),
                region: lead.region.clone(),
                owner_id: lead.owner_id.clone(),
                contacts: vec![cpb::Contact {
                    name: lead.contact_name.clone(),
                    phone: lead.contact_phone.clone(),
                    email: lead.contact_email.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        });
        let value = bearer
            .parse()
            .map_err(|_| Error::Unauthenticated("a malformed authorization header".into()))?;
        request.metadata_mut().insert("authorization", value);
        request.set_timeout(std::time::Duration::from_secs(5));
        let made = cpb::customer_service_client::CustomerServiceClient::new(channel)
            .create_customer(request)
            .await
            .map_err(|status| match status.code() {
                tonic::Code::InvalidArgument
                | tonic::Code::AlreadyExists
                | tonic::Code::FailedPrecondition
                | tonic::Code::PermissionDenied => Error::precondition(
                    "CUSTOMER_NOT_MADE",
                    format!(
                        "the customers service did not make a customer from the lead ({:?}): {}; \
                         convert it on an existing customer",
                        status.code(),
                        status.message()
                    ),
                ),
                _ => Error::Internal(anyhow::anyhow!("customers service: {status}")),
            })?
            .into_inner()
            .customer
            .unwrap_or_default();
        Uuid::parse_str(&made.id).map_err(|e| Error::Internal(e.into()))
    }

    /// Converts a qualified lead to an opportunity on a customer, an existing one or one made
    /// from the lead (`bearer`: the caller's authorization, to make it as them).
    pub async fn convert_lead(
        &self,
        key: RequestKey,
        r: &pb::ConvertLeadRequest,
        bearer: Option<&str>,
        call: &Call,
    ) -> Result<pb::ConvertLeadResponse> {
        let mut v = crm_kit::Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        let customer = if r.customer_id.is_empty() {
            None
        } else {
            v.check("customer_id", convert::parse_id(&r.customer_id))
        };
        v.finish()?;
        let given = r.opportunity.clone().unwrap_or_default();
        let mut new = NewOpportunity::parse("opportunity", &given, true)?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut lead = self
            .lock_lead(&mut tx, id.unwrap_or_default(), 0, &call.principal)
            .await?;
        let state = LeadState::try_from(lead.state).unwrap_or_default();
        if state != LeadState::Qualified {
            return Err(Error::precondition(
                "LEAD_NOT_QUALIFIED",
                format!(
                    "only a qualified lead converts; this one is {}",
                    state.as_str_name()
                ),
            ));
        }
        let customer = match customer {
            Some(c) => c,
            None => self.customer_from(&lead, bearer).await?,
        };
        let o = &mut new.opportunity;
        o.customer_id = customer.to_string();
        if o.region.is_empty() {
            o.region.clone_from(&lead.region);
        }
        if o.owner_id.is_empty() {
            o.owner_id.clone_from(&lead.owner_id);
        }
        if o.name.is_empty() {
            o.name.clone_from(&lead.name);
        }
        let opportunity = self.open_opportunity(&mut tx, new, &lead.id, call).await?;
        let now = self.clock.now();
        lead.state = LeadState::Converted as i32;
        lead.customer_id = opportunity.customer_id.clone();
        lead.opportunity_id = opportunity.id.clone();
        lead.version += 1;
        lead.updated = Some(convert::stamp(now, &call.principal.subject));
        store::save(&mut tx, &lead).await?;
        Self::announce_lead(&mut tx, call, now, &lead).await?;
        let response = pb::ConvertLeadResponse {
            lead: Some(lead),
            opportunity: Some(opportunity),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }
}
