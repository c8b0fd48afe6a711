//! The gRPC adapter: translate the request, call [`Tickets`], wrap the result.

use crm_kit::{
    context::{call, caller},
    convert::id,
    error::both,
    idempotency::RequestKey,
};
use crm_proto::tickets::v1::{self as pb, ticket_service_server::TicketService};
use tonic::{Request, Response, Status};

use crate::{
    escalations::{EscalationRequest, parse_note},
    lifecycle::rules::TransitionInput,
    service::Tickets,
};

/// The gRPC adapter: one call of the use cases per RPC, nothing else.
#[derive(Clone)]
pub struct Api(pub Tickets);

#[tonic::async_trait]
impl TicketService for Api {
    async fn create_ticket(
        &self,
        request: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::CreateTicketResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, ticket) = both(key, crate::intake::rules::parse_new(&r))?;
        Ok(Response::new(self.0.create(key, ticket, &call).await?))
    }

    async fn get_ticket(
        &self,
        request: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetTicketResponse {
            ticket: Some(self.0.get(id, &caller).await?),
        }))
    }

    async fn list_tickets(
        &self,
        request: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        Ok(Response::new(
            self.0
                .queue(r.filter.as_ref(), r.page.as_ref(), &call)
                .await?,
        ))
    }

    async fn update_ticket(
        &self,
        request: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::UpdateTicketResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let patch = r.ticket.unwrap_or_default();
        let id = id("ticket.id", &patch.id)?;
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        Ok(Response::new(pb::UpdateTicketResponse {
            ticket: Some(self.0.update(id, &patch, &mask, &call).await?),
        }))
    }

    async fn transition_ticket(
        &self,
        request: Request<pb::TransitionTicketRequest>,
    ) -> Result<Response<pb::TransitionTicketResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, input) = both(key, TransitionInput::parse(&r))?;
        Ok(Response::new(self.0.transition(key, input, &call).await?))
    }

    async fn list_ticket_history(
        &self,
        request: Request<pb::ListTicketHistoryRequest>,
    ) -> Result<Response<pb::ListTicketHistoryResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let id = id("id", &r.id)?;
        Ok(Response::new(
            self.0.history(id, r.page.as_ref(), &caller).await?,
        ))
    }

    async fn request_escalation(
        &self,
        request: Request<pb::RequestEscalationRequest>,
    ) -> Result<Response<pb::RequestEscalationResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, input) = both(key, EscalationRequest::parse(&r))?;
        Ok(Response::new(
            self.0.request_escalation(key, input, &call).await?,
        ))
    }

    async fn review_escalation(
        &self,
        request: Request<pb::ReviewEscalationRequest>,
    ) -> Result<Response<pb::ReviewEscalationResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, (id, note)) = both(key, parse_note(&r.id, &r.note, !r.approve))?;
        Ok(Response::new(
            self.0
                .review_escalation(key, id, r.approve, note, &call)
                .await?,
        ))
    }

    async fn record_escalation_progress(
        &self,
        request: Request<pb::RecordEscalationProgressRequest>,
    ) -> Result<Response<pb::RecordEscalationProgressResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, (id, note)) = both(key, parse_note(&r.id, &r.note, true))?;
        Ok(Response::new(
            self.0
                .record_escalation_progress(key, id, note, r.resolve, &call)
                .await?,
        ))
    }

    async fn list_escalations(
        &self,
        request: Request<pb::ListEscalationsRequest>,
    ) -> Result<Response<pb::ListEscalationsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.list_escalations(request.get_ref(), &caller).await?,
        ))
    }

    async fn get_usual_engineer(
        &self,
        request: Request<pb::GetUsualEngineerRequest>,
    ) -> Result<Response<pb::GetUsualEngineerResponse>, Status> {
        let customer = id("customer_id", &request.get_ref().customer_id)?;
        Ok(Response::new(pb::GetUsualEngineerResponse {
            usual_engineer: Some(self.0.usual_engineer(customer).await?),
        }))
    }

    async fn set_usual_engineer(
        &self,
        request: Request<pb::SetUsualEngineerRequest>,
    ) -> Result<Response<pb::SetUsualEngineerResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, customer) = both(key, crate::usual::rules::parse_usual_engineer(&r))?;
        Ok(Response::new(
            self.0
                .set_usual_engineer(key, customer, r.engineer_id, &call)
                .await?,
        ))
    }
}
