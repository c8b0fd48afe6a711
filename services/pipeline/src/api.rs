//! The gRPC adapter: translate the request, call [`Pipeline`], wrap the result.

use crm_kit::{
    context::{call, caller},
    convert::id,
    error::both,
    idempotency::RequestKey,
};
use crm_proto::pipeline::v1::{self as pb, pipeline_service_server::PipelineService};
use tonic::{Request, Response, Status};

use crate::{
    leads::rules::parse_new,
    opportunities::rules::{NewOpportunity, Patch, StageMove},
    quotes::QuoteStep,
    service::Pipeline,
};

/// The gRPC adapter: one call of the use cases per RPC, nothing else.
#[derive(Clone)]
pub struct Api(pub Pipeline);

impl Api {
    /// A quote's step: the key, the checked id, the use case.
    async fn quote_step(
        &self,
        request: Request<impl prost::Message>,
        (request_id, quote_id, version, reason): (&str, &str, i64, &str),
        step: QuoteStep,
    ) -> Result<pb::Quote, Status> {
        let call = call(&request)?;
        let key = RequestKey::of(&call, request_id, request.get_ref());
        let (key, quote) = both(key, id("id", quote_id))?;
        Ok(self
            .0
            .step_quote(key, (quote, version, reason.to_string()), step, &call)
            .await?)
    }
}

#[tonic::async_trait]
impl PipelineService for Api {
    async fn create_lead(
        &self,
        request: Request<pb::CreateLeadRequest>,
    ) -> Result<Response<pb::CreateLeadResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, lead) = both(key, parse_new(&r))?;
        Ok(Response::new(self.0.create_lead(key, lead, &call).await?))
    }

    async fn get_lead(
        &self,
        request: Request<pb::GetLeadRequest>,
    ) -> Result<Response<pb::GetLeadResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetLeadResponse {
            lead: Some(self.0.get_lead(id, &caller).await?),
        }))
    }

    async fn list_leads(
        &self,
        request: Request<pb::ListLeadsRequest>,
    ) -> Result<Response<pb::ListLeadsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.list_leads(request.get_ref(), &caller).await?,
        ))
    }

    async fn transition_lead(
        &self,
        request: Request<pb::TransitionLeadRequest>,
    ) -> Result<Response<pb::TransitionLeadResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.transition_lead(key, &r, &call).await?))
    }

    async fn convert_lead(
        &self,
        request: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        let call = call(&request)?;
        let bearer = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(
            self.0
                .convert_lead(key, &r, bearer.as_deref(), &call)
                .await?,
        ))
    }

    async fn create_opportunity(
        &self,
        request: Request<pb::CreateOpportunityRequest>,
    ) -> Result<Response<pb::CreateOpportunityResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let o = r.opportunity.clone().unwrap_or_default();
        let (key, new) = both(key, NewOpportunity::parse("opportunity", &o, false))?;
        Ok(Response::new(
            self.0.create_opportunity(key, new, &call).await?,
        ))
    }

    async fn get_opportunity(
        &self,
        request: Request<pb::GetOpportunityRequest>,
    ) -> Result<Response<pb::GetOpportunityResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetOpportunityResponse {
            opportunity: Some(self.0.get_opportunity(id, &caller).await?),
        }))
    }

    async fn list_opportunities(
        &self,
        request: Request<pb::ListOpportunitiesRequest>,
    ) -> Result<Response<pb::ListOpportunitiesResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0
                .list_opportunities(request.get_ref(), &caller)
                .await?,
        ))
    }

    async fn update_opportunity(
        &self,
        request: Request<pb::UpdateOpportunityRequest>,
    ) -> Result<Response<pb::UpdateOpportunityResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, patch) = both(key, Patch::parse(&r))?;
        Ok(Response::new(
            self.0.update_opportunity(key, patch, &call).await?,
        ))
    }

    async fn move_opportunity_stage(
        &self,
        request: Request<pb::MoveOpportunityStageRequest>,
    ) -> Result<Response<pb::MoveOpportunityStageResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, m) = both(key, StageMove::parse(&r))?;
        Ok(Response::new(self.0.move_stage(key, m, &call).await?))
    }

    async fn list_opportunity_history(
        &self,
        request: Request<pb::ListOpportunityHistoryRequest>,
    ) -> Result<Response<pb::ListOpportunityHistoryResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let id = id("id", &r.id)?;
        Ok(Response::new(
            self.0
                .opportunity_history(id, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn add_follow_up(
        &self,
        request: Request<pb::AddFollowUpRequest>,
    ) -> Result<Response<pb::AddFollowUpResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.add_follow_up(key, &r, &call).await?))
    }

    async fn list_follow_ups(
        &self,
        request: Request<pb::ListFollowUpsRequest>,
    ) -> Result<Response<pb::ListFollowUpsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.list_follow_ups(request.get_ref(), &caller).await?,
        ))
    }

    async fn save_quote(
        &self,
        request: Request<pb::SaveQuoteRequest>,
    ) -> Result<Response<pb::SaveQuoteResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.save_quote(key, &r, &call).await?))
    }

    async fn copy_quote(
        &self,
        request: Request<pb::CopyQuoteRequest>,
    ) -> Result<Response<pb::CopyQuoteResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, quote) = both(key, id("id", &r.id))?;
        Ok(Response::new(self.0.copy_quote(key, quote, &call).await?))
    }

    async fn get_quote(
        &self,
        request: Request<pb::GetQuoteRequest>,
    ) -> Result<Response<pb::GetQuoteResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetQuoteResponse {
            quote: Some(self.0.get_quote(id, &caller).await?),
        }))
    }

    async fn request_discount_approval(
        &self,
        request: Request<pb::RequestDiscountApprovalRequest>,
    ) -> Result<Response<pb::RequestDiscountApprovalResponse>, Status> {
        let r = request.get_ref().clone();
        let quote = self
            .quote_step(
                request,
                (&r.request_id, &r.id, r.version, &r.reason),
                QuoteStep::Request,
            )
            .await?;
        Ok(Response::new(pb::RequestDiscountApprovalResponse {
            quote: Some(quote),
        }))
    }

    async fn decide_discount(
        &self,
        request: Request<pb::DecideDiscountRequest>,
    ) -> Result<Response<pb::DecideDiscountResponse>, Status> {
        let r = request.get_ref().clone();
        let step = if r.approve {
            QuoteStep::Approve
        } else {
            QuoteStep::Reject
        };
        let quote = self
            .quote_step(request, (&r.request_id, &r.id, r.version, &r.reason), step)
            .await?;
        Ok(Response::new(pb::DecideDiscountResponse {
            quote: Some(quote),
        }))
    }

    async fn send_quote(
        &self,
        request: Request<pb::SendQuoteRequest>,
    ) -> Result<Response<pb::SendQuoteResponse>, Status> {
        let r = request.get_ref().clone();
        let quote = self
            .quote_step(
                request,
                (&r.request_id, &r.id, r.version, ""),
                QuoteStep::Send,
            )
            .await?;
        Ok(Response::new(pb::SendQuoteResponse { quote: Some(quote) }))
    }

    async fn reassign_work(
        &self,
        request: Request<pb::ReassignWorkRequest>,
    ) -> Result<Response<pb::ReassignWorkResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.reassign_work(key, &r, &call).await?))
    }

    async fn sign_contract(
        &self,
        request: Request<pb::SignContractRequest>,
    ) -> Result<Response<pb::SignContractResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.sign_contract(key, &r, &call).await?))
    }

    async fn get_contract(
        &self,
        request: Request<pb::GetContractRequest>,
    ) -> Result<Response<pb::GetContractResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetContractResponse {
            contract: Some(self.0.get_contract(id, &caller).await?),
        }))
    }

    async fn amend_contract(
        &self,
        request: Request<pb::AmendContractRequest>,
    ) -> Result<Response<pb::AmendContractResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.amend_contract(key, &r, &call).await?))
    }

    async fn list_contract_versions(
        &self,
        request: Request<pb::ListContractVersionsRequest>,
    ) -> Result<Response<pb::ListContractVersionsResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(self.0.contract_versions(id, &caller).await?))
    }

    async fn record_payment(
        &self,
        request: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordPaymentResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.record_payment(key, &r, &call).await?))
    }

    async fn void_payment(
        &self,
        request: Request<pb::VoidPaymentRequest>,
    ) -> Result<Response<pb::VoidPaymentResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.void_payment(key, &r, &call).await?))
    }

    async fn list_payments(
        &self,
        request: Request<pb::ListPaymentsRequest>,
    ) -> Result<Response<pb::ListPaymentsResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("contract_id", &request.get_ref().contract_id)?;
        Ok(Response::new(self.0.list_payments(id, &caller).await?))
    }

    async fn get_pipeline_report(
        &self,
        request: Request<pb::GetPipelineReportRequest>,
    ) -> Result<Response<pb::GetPipelineReportResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.report(request.get_ref(), &caller).await?,
        ))
    }

    async fn set_target(
        &self,
        request: Request<pb::SetTargetRequest>,
    ) -> Result<Response<pb::SetTargetResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.set_target(key, &r, &call).await?))
    }

    async fn take_forecast_snapshot(
        &self,
        request: Request<pb::TakeForecastSnapshotRequest>,
    ) -> Result<Response<pb::TakeForecastSnapshotResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(self.0.take_snapshot(key, &call).await?))
    }

    async fn report_attainment(
        &self,
        request: Request<pb::ReportAttainmentRequest>,
    ) -> Result<Response<pb::ReportAttainmentResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.attainment(request.get_ref(), &caller).await?,
        ))
    }

    type StreamPipelineReportStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<Item = Result<pb::StreamPipelineReportResponse, Status>>
                + Send,
        >,
    >;

    async fn stream_pipeline_report(
        &self,
        request: Request<pb::StreamPipelineReportRequest>,
    ) -> Result<Response<Self::StreamPipelineReportStream>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let same = pb::GetPipelineReportRequest {
            from: r.from,
            to: r.to,
            grouping: r.grouping,
        };
        let report = self.0.report(&same, &caller).await?;
        let chunks = crate::reports::chunks(report).into_iter().map(Ok);
        Ok(Response::new(Box::pin(tokio_stream::iter(chunks))))
    }
}
