//! The gRPC adapter: translate the request, call [`Complaints`], wrap the result.

use crm_kit::{
    context::{call, caller},
    convert::id,
    error::both,
    idempotency::RequestKey,
};
use crm_proto::complaints::v1::{self as pb, complaint_service_server::ComplaintService};
use tonic::{Request, Response, Status};

use crate::{
    deadlines::Move, handling::rules::Step, intake::rules::NewComplaint, service::Complaints,
};

/// The gRPC adapter: one call of the use cases per RPC, nothing else.
#[derive(Clone)]
pub struct Api(pub Complaints);

#[tonic::async_trait]
impl ComplaintService for Api {
    async fn create_complaint(
        &self,
        request: Request<pb::CreateComplaintRequest>,
    ) -> Result<Response<pb::CreateComplaintResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, new) = both(key, NewComplaint::parse(&r))?;
        Ok(Response::new(
            self.0.create_complaint(key, new, &call).await?,
        ))
    }

    async fn get_complaint(
        &self,
        request: Request<pb::GetComplaintRequest>,
    ) -> Result<Response<pb::GetComplaintResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetComplaintResponse {
            complaint: Some(self.0.get_complaint(id, &caller).await?),
        }))
    }

    async fn list_complaints(
        &self,
        request: Request<pb::ListComplaintsRequest>,
    ) -> Result<Response<pb::ListComplaintsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.list_complaints(request.get_ref(), &caller).await?,
        ))
    }

    async fn transition_complaint(
        &self,
        request: Request<pb::TransitionComplaintRequest>,
    ) -> Result<Response<pb::TransitionComplaintResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, step) = both(key, Step::parse(&r))?;
        Ok(Response::new(
            self.0.transition_complaint(key, step, &call).await?,
        ))
    }

    async fn move_committed_deadline(
        &self,
        request: Request<pb::MoveCommittedDeadlineRequest>,
    ) -> Result<Response<pb::MoveCommittedDeadlineResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, m) = both(key, Move::parse(&r))?;
        Ok(Response::new(
            self.0.move_committed_deadline(key, m, &call).await?,
        ))
    }

    async fn list_complaint_history(
        &self,
        request: Request<pb::ListComplaintHistoryRequest>,
    ) -> Result<Response<pb::ListComplaintHistoryResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let id = id("id", &r.id)?;
        Ok(Response::new(
            self.0
                .complaint_history(id, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn list_departments(
        &self,
        _request: Request<pb::ListDepartmentsRequest>,
    ) -> Result<Response<pb::ListDepartmentsResponse>, Status> {
        Ok(Response::new(self.0.list_departments()))
    }

    async fn get_complaint_statistics(
        &self,
        request: Request<pb::GetComplaintStatisticsRequest>,
    ) -> Result<Response<pb::GetComplaintStatisticsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.statistics(request.get_ref(), &caller).await?,
        ))
    }
}
