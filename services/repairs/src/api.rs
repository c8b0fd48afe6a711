//! The gRPC adapter: translate the request, call [`Repairs`], wrap the result.

use crm_kit::{
    context::{call, caller},
    convert::id,
    error::both,
    idempotency::RequestKey,
};
use crm_proto::repairs::v1::{self as pb, repair_service_server::RepairService};
use tonic::{Request, Response, Status};

use crate::{
    centres::rules::NewCentre,
    orders::{rules::NewOrder, steps::Step as OrderStep},
    part_requests::{
        StepInput,
        rules::{NewPartRequest, Step},
    },
    service::Repairs,
    stock::Delivery,
    swaps::rules::NewSwap,
    transfers::rules::NewTransfer,
};

/// The gRPC adapter: one call of the use cases per RPC, nothing else.
#[derive(Clone)]
pub struct Api(pub Repairs);

impl Api {
    /// A part request's step: the key, the checked input, the use case.
    async fn step<R: prost::Message + Default>(
        &self,
        request: Request<impl prost::Message>,
        parts: (&str, &str, Step, i32, i32, &str),
        respond: fn(pb::PartRequest, pb::Stock) -> R,
    ) -> Result<Response<R>, Status> {
        let call = call(&request)?;
        let (request_id, id, step, used, returned, reason) = parts;
        let key = RequestKey::of(&call, request_id, request.get_ref());
        let (key, input) = both(key, StepInput::parse(id, step, used, returned, reason))?;
        Ok(Response::new(
            self.0.step_part_request(key, input, &call, respond).await?,
        ))
    }
}

#[tonic::async_trait]
impl RepairService for Api {
    async fn create_centre(
        &self,
        request: Request<pb::CreateCentreRequest>,
    ) -> Result<Response<pb::CreateCentreResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, new) = both(key, NewCentre::parse(&r))?;
        Ok(Response::new(self.0.create_centre(key, new, &call).await?))
    }

    async fn get_centre(
        &self,
        request: Request<pb::GetCentreRequest>,
    ) -> Result<Response<pb::GetCentreResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetCentreResponse {
            centre: Some(self.0.get_centre(id, &caller).await?),
        }))
    }

    async fn list_centres(
        &self,
        request: Request<pb::ListCentresRequest>,
    ) -> Result<Response<pb::ListCentresResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.list_centres(request.get_ref(), &caller).await?,
        ))
    }

    async fn create_part(
        &self,
        request: Request<pb::CreatePartRequest>,
    ) -> Result<Response<pb::CreatePartResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, part) = both(key, crate::catalogue::rules::parse_part(&r))?;
        Ok(Response::new(self.0.create_part(key, part, &call).await?))
    }

    async fn list_parts(
        &self,
        request: Request<pb::ListPartsRequest>,
    ) -> Result<Response<pb::ListPartsResponse>, Status> {
        caller(&request)?;
        Ok(Response::new(self.0.list_parts(request.get_ref()).await?))
    }

    async fn receive_stock(
        &self,
        request: Request<pb::ReceiveStockRequest>,
    ) -> Result<Response<pb::ReceiveStockResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, delivery) = both(key, Delivery::parse(&r))?;
        Ok(Response::new(
            self.0.receive_stock(key, delivery, &call).await?,
        ))
    }

    async fn get_stock(
        &self,
        request: Request<pb::GetStockRequest>,
    ) -> Result<Response<pb::GetStockResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let (centre, part) = both(id("centre_id", &r.centre_id), id("part_id", &r.part_id))?;
        Ok(Response::new(pb::GetStockResponse {
            stock: Some(self.0.get_stock(centre, part, &caller).await?),
        }))
    }

    async fn list_stock(
        &self,
        request: Request<pb::ListStockRequest>,
    ) -> Result<Response<pb::ListStockResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let centre = match r.centre_id.as_str() {
            "" => None,
            centre => Some(id("centre_id", centre)?),
        };
        Ok(Response::new(
            self.0
                .list_stock(centre, r.low_only, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn summarise_stock(
        &self,
        request: Request<pb::SummariseStockRequest>,
    ) -> Result<Response<pb::SummariseStockResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(self.0.summarise_stock(&caller).await?))
    }

    async fn request_parts(
        &self,
        request: Request<pb::RequestPartsRequest>,
    ) -> Result<Response<pb::RequestPartsResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, new) = both(key, NewPartRequest::parse(&r))?;
        Ok(Response::new(self.0.request_parts(key, new, &call).await?))
    }

    async fn get_part_request(
        &self,
        request: Request<pb::GetPartRequestRequest>,
    ) -> Result<Response<pb::GetPartRequestResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetPartRequestResponse {
            part_request: Some(self.0.get_part_request(id, &caller).await?),
        }))
    }

    async fn list_part_requests(
        &self,
        request: Request<pb::ListPartRequestsRequest>,
    ) -> Result<Response<pb::ListPartRequestsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0
                .list_part_requests(request.get_ref(), &caller)
                .await?,
        ))
    }

    async fn issue_part_request(
        &self,
        request: Request<pb::IssuePartRequestRequest>,
    ) -> Result<Response<pb::IssuePartRequestResponse>, Status> {
        let r = request.get_ref().clone();
        self.step(
            request,
            (&r.request_id, &r.id, Step::Issue, 0, 0, ""),
            |part_request, stock| pb::IssuePartRequestResponse {
                part_request: Some(part_request),
                stock: Some(stock),
            },
        )
        .await
    }

    async fn settle_part_request(
        &self,
        request: Request<pb::SettlePartRequestRequest>,
    ) -> Result<Response<pb::SettlePartRequestResponse>, Status> {
        let r = request.get_ref().clone();
        self.step(
            request,
            (&r.request_id, &r.id, Step::Settle, r.used, r.returned, ""),
            |part_request, stock| pb::SettlePartRequestResponse {
                part_request: Some(part_request),
                stock: Some(stock),
            },
        )
        .await
    }

    async fn cancel_part_request(
        &self,
        request: Request<pb::CancelPartRequestRequest>,
    ) -> Result<Response<pb::CancelPartRequestResponse>, Status> {
        let r = request.get_ref().clone();
        self.step(
            request,
            (&r.request_id, &r.id, Step::Cancel, 0, 0, &r.reason),
            |part_request, stock| pb::CancelPartRequestResponse {
                part_request: Some(part_request),
                stock: Some(stock),
            },
        )
        .await
    }

    async fn create_repair_order(
        &self,
        request: Request<pb::CreateRepairOrderRequest>,
    ) -> Result<Response<pb::CreateRepairOrderResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, new) = both(key, NewOrder::parse(&r))?;
        Ok(Response::new(
            self.0.create_repair_order(key, new, &call).await?,
        ))
    }

    async fn get_repair_order(
        &self,
        request: Request<pb::GetRepairOrderRequest>,
    ) -> Result<Response<pb::GetRepairOrderResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetRepairOrderResponse {
            repair_order: Some(self.0.get_repair_order(id, &caller).await?),
        }))
    }

    async fn list_repair_orders(
        &self,
        request: Request<pb::ListRepairOrdersRequest>,
    ) -> Result<Response<pb::ListRepairOrdersResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0
                .list_repair_orders(request.get_ref(), &caller)
                .await?,
        ))
    }

    async fn transition_repair_order(
        &self,
        request: Request<pb::TransitionRepairOrderRequest>,
    ) -> Result<Response<pb::TransitionRepairOrderResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, step) = both(key, OrderStep::parse(&r))?;
        Ok(Response::new(
            self.0.transition_repair_order(key, step, &call).await?,
        ))
    }

    async fn list_repair_order_history(
        &self,
        request: Request<pb::ListRepairOrderHistoryRequest>,
    ) -> Result<Response<pb::ListRepairOrderHistoryResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let id = id("id", &r.id)?;
        Ok(Response::new(
            self.0
                .repair_order_history(id, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn record_swap(
        &self,
        request: Request<pb::RecordSwapRequest>,
    ) -> Result<Response<pb::RecordSwapResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, swap) = both(key, NewSwap::parse(&r))?;
        Ok(Response::new(self.0.record_swap(key, swap, &call).await?))
    }

    async fn receive_returned_part(
        &self,
        request: Request<pb::ReceiveReturnedPartRequest>,
    ) -> Result<Response<pb::ReceiveReturnedPartResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, id) = both(key, id("swap_id", &r.swap_id))?;
        Ok(Response::new(
            self.0.receive_returned_part(key, id, &call).await?,
        ))
    }

    async fn list_swaps(
        &self,
        request: Request<pb::ListSwapsRequest>,
    ) -> Result<Response<pb::ListSwapsResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.list_swaps(request.get_ref(), &caller).await?,
        ))
    }

    async fn get_serial_history(
        &self,
        request: Request<pb::GetSerialHistoryRequest>,
    ) -> Result<Response<pb::GetSerialHistoryResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let serial = if r.serial.trim().is_empty() {
            Err(crm_kit::Error::invalid("serial", "is required"))
        } else {
            Ok(r.serial.trim())
        };
        let (part, serial) = both(id("part_id", &r.part_id), serial)?;
        Ok(Response::new(
            self.0.serial_history(part, serial, &caller).await?,
        ))
    }

    async fn transfer_stock(
        &self,
        request: Request<pb::TransferStockRequest>,
    ) -> Result<Response<pb::TransferStockResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, transfer) = both(key, NewTransfer::parse(&r))?;
        Ok(Response::new(
            self.0.transfer_stock(key, transfer, &call).await?,
        ))
    }

    async fn receive_transfer(
        &self,
        request: Request<pb::ReceiveTransferRequest>,
    ) -> Result<Response<pb::ReceiveTransferResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, id) = both(key, id("transfer_id", &r.transfer_id))?;
        Ok(Response::new(
            self.0.receive_transfer(key, id, &call).await?,
        ))
    }

    async fn list_transfers(
        &self,
        request: Request<pb::ListTransfersRequest>,
    ) -> Result<Response<pb::ListTransfersResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.get_ref();
        let centre = id("centre_id", &r.centre_id)?;
        Ok(Response::new(
            self.0
                .list_transfers(centre, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn report_turnaround(
        &self,
        request: Request<pb::ReportTurnaroundRequest>,
    ) -> Result<Response<pb::ReportTurnaroundResponse>, Status> {
        let caller = caller(&request)?;
        let period = crate::turnaround::rules::period(request.get_ref())?;
        Ok(Response::new(
            self.0.report_turnaround(period, &caller).await?,
        ))
    }

    async fn register_delivery(
        &self,
        request: Request<pb::RegisterDeliveryRequest>,
    ) -> Result<Response<pb::RegisterDeliveryResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, delivery) = both(key, crate::rmas::rules::parse_delivery(&r))?;
        Ok(Response::new(
            self.0.register_delivery(key, delivery, &call).await?,
        ))
    }

    async fn request_rma(
        &self,
        request: Request<pb::RequestRmaRequest>,
    ) -> Result<Response<pb::RequestRmaResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, new) = both(key, crate::rmas::rules::NewRma::parse(&r))?;
        Ok(Response::new(self.0.request_rma(key, new, &call).await?))
    }

    async fn get_rma(
        &self,
        request: Request<pb::GetRmaRequest>,
    ) -> Result<Response<pb::GetRmaResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetRmaResponse {
            rma: Some(self.0.get_rma(id, &caller).await?),
        }))
    }

    async fn list_rmas(
        &self,
        request: Request<pb::ListRmasRequest>,
    ) -> Result<Response<pb::ListRmasResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(
            self.0.list_rmas(request.get_ref(), &caller).await?,
        ))
    }

    async fn transition_rma(
        &self,
        request: Request<pb::TransitionRmaRequest>,
    ) -> Result<Response<pb::TransitionRmaResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, input) = both(key, crate::rmas::rules::RmaStepInput::parse(&r))?;
        Ok(Response::new(
            self.0.transition_rma(key, input, &call).await?,
        ))
    }
}
