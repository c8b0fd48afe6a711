//! The gRPC adapter: translate the request, call [`Customers`], wrap the result. Errors become a
//! `Status` in one place (`crm_kit::error`).

use crm_kit::{
    Error,
    context::{call, caller},
    convert::id,
    error::both,
    idempotency::RequestKey,
};
use crm_proto::customers::v1::{self as pb, customer_service_server::CustomerService};
use tonic::{Request, Response, Status};

use crate::{
    communications::CommunicationInput,
    partners::{PartnerDecisionInput, PartnerRequestInput},
    records::rules::{CustomerFields, CustomerQuery},
    service::Customers,
    stages::rules::StageChangeInput,
};

/// The gRPC adapter: one call of the use cases per RPC, nothing else.
#[derive(Clone)]
pub struct Api(pub Customers);

#[tonic::async_trait]
impl CustomerService for Api {
    async fn create_customer(
        &self,
        request: Request<pb::CreateCustomerRequest>,
    ) -> Result<Response<pb::CreateCustomerResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let customer = r.customer.unwrap_or_default();
        let fields = CustomerFields::parse("customer", &customer);
        let (key, fields) = both(key, fields)?;
        Ok(Response::new(self.0.create(key, fields, &call).await?))
    }

    async fn get_customer(
        &self,
        request: Request<pb::GetCustomerRequest>,
    ) -> Result<Response<pb::GetCustomerResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetCustomerResponse {
            customer: Some(self.0.get(id, &caller).await?),
        }))
    }

    async fn list_customers(
        &self,
        request: Request<pb::ListCustomersRequest>,
    ) -> Result<Response<pb::ListCustomersResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let query = CustomerQuery::parse(r.filter.as_ref())?;
        Ok(Response::new(
            self.0.list(query, r.page.as_ref(), &caller).await?,
        ))
    }

    async fn update_customer(
        &self,
        request: Request<pb::UpdateCustomerRequest>,
    ) -> Result<Response<pb::UpdateCustomerResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let Some(patch) = r.customer else {
            return Err(Error::invalid("customer", "is required").into());
        };
        let mask = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let customer = self.0.update(patch, mask, &call).await?;
        Ok(Response::new(pb::UpdateCustomerResponse {
            customer: Some(customer),
        }))
    }

    async fn delete_customer(
        &self,
        request: Request<pb::DeleteCustomerRequest>,
    ) -> Result<Response<pb::DeleteCustomerResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let (key, id) = both(RequestKey::of(&call, &r.request_id, &r), id("id", &r.id))?;
        Ok(Response::new(
            self.0.delete(key, id, r.version, &call).await?,
        ))
    }

    async fn change_customer_stage(
        &self,
        request: Request<pb::ChangeCustomerStageRequest>,
    ) -> Result<Response<pb::ChangeCustomerStageResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let (key, input) = both(
            RequestKey::of(&call, &r.request_id, &r),
            StageChangeInput::parse(&r),
        )?;
        Ok(Response::new(self.0.change_stage(key, input, &call).await?))
    }

    async fn list_stage_changes(
        &self,
        request: Request<pb::ListStageChangesRequest>,
    ) -> Result<Response<pb::ListStageChangesResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let customer = id("customer_id", &r.customer_id)?;
        Ok(Response::new(
            self.0
                .list_stage_changes(customer, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn set_tier_override(
        &self,
        request: Request<pb::SetTierOverrideRequest>,
    ) -> Result<Response<pb::SetTierOverrideResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, ((tier, reason), customer)) = both(
            key,
            both(
                crate::tiers::rules::parse_tier_override(&r),
                id("customer_id", &r.customer_id),
            ),
        )?;
        Ok(Response::new(
            self.0
                .set_tier_override(key, customer, tier, reason, r.version, &call)
                .await?,
        ))
    }

    async fn list_tier_changes(
        &self,
        request: Request<pb::ListTierChangesRequest>,
    ) -> Result<Response<pb::ListTierChangesResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let customer = id("customer_id", &r.customer_id)?;
        Ok(Response::new(
            self.0
                .list_tier_changes(customer, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn assign_customers(
        &self,
        request: Request<pb::AssignCustomersRequest>,
    ) -> Result<Response<pb::AssignCustomersResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, input) = both(key, crate::assignment::AssignInput::parse(&r))?;
        Ok(Response::new(self.0.assign(key, input, &call).await?))
    }

    async fn list_owner_changes(
        &self,
        request: Request<pb::ListOwnerChangesRequest>,
    ) -> Result<Response<pb::ListOwnerChangesResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let customer = id("customer_id", &r.customer_id)?;
        Ok(Response::new(
            self.0
                .list_owner_changes(customer, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn record_return_visit(
        &self,
        request: Request<pb::RecordReturnVisitRequest>,
    ) -> Result<Response<pb::RecordReturnVisitResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, input) = both(key, crate::visits::rules::parse_visit_result(&r))?;
        Ok(Response::new(self.0.record_visit(key, input, &call).await?))
    }

    async fn list_return_visits(
        &self,
        request: Request<pb::ListReturnVisitsRequest>,
    ) -> Result<Response<pb::ListReturnVisitsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let customer = id("customer_id", &r.customer_id)?;
        Ok(Response::new(
            self.0
                .list_visits(customer, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn report_return_visits(
        &self,
        request: Request<pb::ReportReturnVisitsRequest>,
    ) -> Result<Response<pb::ReportReturnVisitsResponse>, Status> {
        Ok(Response::new(
            self.0.report_visits(request.get_ref()).await?,
        ))
    }

    async fn get_service_policy(
        &self,
        request: Request<pb::GetServicePolicyRequest>,
    ) -> Result<Response<pb::GetServicePolicyResponse>, Status> {
        let caller = caller(&request)?;
        let customer = id("customer_id", &request.get_ref().customer_id)?;
        Ok(Response::new(
            self.0.service_policy(customer, &caller).await?,
        ))
    }

    async fn upload_import(
        &self,
        request: Request<tonic::Streaming<pb::UploadImportRequest>>,
    ) -> Result<Response<pb::UploadImportResponse>, Status> {
        let call = call(&request)?;
        let mut stream = request.into_inner();
        let first = stream.message().await?;
        let header = match first.and_then(|m| m.part) {
            Some(pb::upload_import_request::Part::Header(h)) => Some(h),
            _ => None,
        };
        let (request_id, file_name) = crate::import::parse_header(header.as_ref())?;
        Ok(Response::new(
            self.0.import(request_id, file_name, stream, &call).await?,
        ))
    }

    async fn get_import(
        &self,
        request: Request<pb::GetImportRequest>,
    ) -> Result<Response<pb::GetImportResponse>, Status> {
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetImportResponse {
            import: Some(self.0.get_import(id).await?),
        }))
    }

    async fn list_import_rows(
        &self,
        request: Request<pb::ListImportRowsRequest>,
    ) -> Result<Response<pb::ListImportRowsResponse>, Status> {
        Ok(Response::new(
            self.0.list_import_rows(request.get_ref()).await?,
        ))
    }

    type DownloadImportReportStream = std::pin::Pin<
        Box<
            dyn tokio_stream::Stream<Item = Result<pb::DownloadImportReportResponse, Status>>
                + Send,
        >,
    >;

    async fn download_import_report(
        &self,
        request: Request<pb::DownloadImportReportRequest>,
    ) -> Result<Response<Self::DownloadImportReportStream>, Status> {
        let id = id("import_id", &request.get_ref().import_id)?;
        let chunks = self.0.report_csv(id).await?;
        let stream = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::ReceiverStream::new(chunks),
            |chunk| {
                chunk
                    .map(|data| pb::DownloadImportReportResponse { data })
                    .map_err(Status::from)
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn request_partner_change(
        &self,
        request: Request<pb::RequestPartnerChangeRequest>,
    ) -> Result<Response<pb::RequestPartnerChangeResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let (key, input) = both(
            RequestKey::of(&call, &r.request_id, &r),
            PartnerRequestInput::parse(&r),
        )?;
        Ok(Response::new(
            self.0.request_partner(key, input, &call).await?,
        ))
    }

    async fn approve_partner_change(
        &self,
        request: Request<pb::ApprovePartnerChangeRequest>,
    ) -> Result<Response<pb::ApprovePartnerChangeResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let (key, input) = both(
            RequestKey::of(&call, &r.request_id, &r),
            PartnerDecisionInput::parse(&r.id, &r.reason, false),
        )?;
        let change = self.0.decide_partner(key, input, true, &call).await?;
        Ok(Response::new(pb::ApprovePartnerChangeResponse {
            change: Some(change),
        }))
    }

    async fn reject_partner_change(
        &self,
        request: Request<pb::RejectPartnerChangeRequest>,
    ) -> Result<Response<pb::RejectPartnerChangeResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let (key, input) = both(
            RequestKey::of(&call, &r.request_id, &r),
            PartnerDecisionInput::parse(&r.id, &r.reason, true),
        )?;
        let change = self.0.decide_partner(key, input, false, &call).await?;
        Ok(Response::new(pb::RejectPartnerChangeResponse {
            change: Some(change),
        }))
    }

    async fn list_partner_changes(
        &self,
        request: Request<pb::ListPartnerChangesRequest>,
    ) -> Result<Response<pb::ListPartnerChangesResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let customer = (!r.customer_id.is_empty())
            .then(|| id("customer_id", &r.customer_id))
            .transpose()?;
        let state = match pb::PartnerChangeState::try_from(r.state) {
            Ok(pb::PartnerChangeState::Unspecified) => None,
            Ok(s) => Some(s),
            Err(_) => {
                return Err(Error::invalid("state", format!("unknown value {}", r.state)).into());
            }
        };
        Ok(Response::new(
            self.0
                .list_partner_changes(customer, state, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn create_communication(
        &self,
        request: Request<pb::CreateCommunicationRequest>,
    ) -> Result<Response<pb::CreateCommunicationResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let (key, input) = both(
            RequestKey::of(&call, &r.request_id, &r),
            CommunicationInput::parse(&r),
        )?;
        Ok(Response::new(
            self.0.create_communication(key, input, &call).await?,
        ))
    }

    async fn list_communications(
        &self,
        request: Request<pb::ListCommunicationsRequest>,
    ) -> Result<Response<pb::ListCommunicationsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let customer = id("customer_id", &r.customer_id)?;
        Ok(Response::new(
            self.0
                .list_communications(customer, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn list_overdue_contacts(
        &self,
        request: Request<pb::ListOverdueContactsRequest>,
    ) -> Result<Response<pb::ListOverdueContactsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        let owner = r.owner_id.trim();
        if owner.is_empty() {
            return Err(Error::invalid("owner_id", "is required").into());
        }
        Ok(Response::new(
            self.0.list_overdue(owner, r.page.as_ref(), &caller).await?,
        ))
    }
}
