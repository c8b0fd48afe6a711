//! The gRPC adapter: translate the request, call [`Notifications`], wrap the result. Errors
//! become a `Status` in one place (`crm_kit::error`).

use crm_kit::{
    Error,
    context::{call, caller},
    convert::id,
    error::both,
    idempotency::RequestKey,
};
use crm_proto::notifications::v1::{self as pb, notification_service_server::NotificationService};
use tonic::{Request, Response, Status};

use crate::{
    kinds::KINDS,
    opt_outs::rules::OptOutInput,
    partners::rules::EndpointInput,
    rules::{Channel, Language},
    sending::rules::SendInput,
    service::Notifications,
    templates::rules::{TemplateInput, check_template_name},
};

/// The gRPC adapter: one call of the use cases per RPC, nothing else.
#[derive(Clone)]
pub struct Api(pub Notifications);

#[tonic::async_trait]
impl NotificationService for Api {
    async fn send_notification(
        &self,
        request: Request<pb::SendNotificationRequest>,
    ) -> Result<Response<pb::SendNotificationResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, input) = both(key, SendInput::parse(&r))?;
        Ok(Response::new(self.0.send(key, input, &call).await?))
    }

    async fn get_notification(
        &self,
        request: Request<pb::GetNotificationRequest>,
    ) -> Result<Response<pb::GetNotificationResponse>, Status> {
        let caller = caller(&request)?;
        let id = id("id", &request.get_ref().id)?;
        Ok(Response::new(pb::GetNotificationResponse {
            notification: Some(self.0.get(id, &caller).await?),
        }))
    }

    async fn list_notifications(
        &self,
        request: Request<pb::ListNotificationsRequest>,
    ) -> Result<Response<pb::ListNotificationsResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        Ok(Response::new(
            self.0
                .list(r.filter.as_ref(), r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn list_inbox(
        &self,
        request: Request<pb::ListInboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        Ok(Response::new(
            self.0
                .inbox(r.unread_only, r.page.as_ref(), &caller)
                .await?,
        ))
    }

    async fn mark_inbox_read(
        &self,
        request: Request<pb::MarkInboxReadRequest>,
    ) -> Result<Response<pb::MarkInboxReadResponse>, Status> {
        let caller = caller(&request)?;
        let r = request.into_inner();
        if r.ids.is_empty() || r.ids.len() > 500 {
            return Err(Error::invalid("ids", "must hold 1 to 500 ids").into());
        }
        let ids = r
            .ids
            .iter()
            .enumerate()
            .map(|(i, v)| id(&format!("ids[{i}]"), v))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::MarkInboxReadResponse {
            marked: self.0.mark_read(&ids, &caller).await?,
        }))
    }

    async fn save_template(
        &self,
        request: Request<pb::SaveTemplateRequest>,
    ) -> Result<Response<pb::SaveTemplateResponse>, Status> {
        let call = call(&request)?;
        let input = TemplateInput::parse(request.get_ref())?;
        Ok(Response::new(pb::SaveTemplateResponse {
            template: Some(self.0.save_template(input, &call).await?),
        }))
    }

    async fn get_template(
        &self,
        request: Request<pb::GetTemplateRequest>,
    ) -> Result<Response<pb::GetTemplateResponse>, Status> {
        let r = request.into_inner();
        check_template_name(&r.name).map_err(|e| Error::invalid("name", e))?;
        Language::parse(&r.language).map_err(|e| Error::invalid("language", e))?;
        Ok(Response::new(pb::GetTemplateResponse {
            template: Some(self.0.template(&r.name, &r.language).await?),
        }))
    }

    async fn list_templates(
        &self,
        request: Request<pb::ListTemplatesRequest>,
    ) -> Result<Response<pb::ListTemplatesResponse>, Status> {
        Ok(Response::new(
            self.0.templates(request.get_ref().page.as_ref()).await?,
        ))
    }

    async fn list_kinds(
        &self,
        _request: Request<pb::ListKindsRequest>,
    ) -> Result<Response<pb::ListKindsResponse>, Status> {
        Ok(Response::new(pb::ListKindsResponse {
            kinds: KINDS
                .iter()
                .map(|k| pb::Kind {
                    name: k.name.into(),
                    description: k.description.into(),
                    variables: k.variables.iter().map(|v| v.to_string()).collect(),
                })
                .collect(),
        }))
    }

    async fn set_opt_out(
        &self,
        request: Request<pb::SetOptOutRequest>,
    ) -> Result<Response<pb::SetOptOutResponse>, Status> {
        let call = call(&request)?;
        let input = OptOutInput::parse(request.get_ref())?;
        Ok(Response::new(pb::SetOptOutResponse {
            opted_out: self.0.set_opt_out(input, &call).await?,
        }))
    }

    async fn list_opt_outs(
        &self,
        request: Request<pb::ListOptOutsRequest>,
    ) -> Result<Response<pb::ListOptOutsResponse>, Status> {
        Ok(Response::new(
            self.0.opt_outs(request.get_ref().page.as_ref()).await?,
        ))
    }

    async fn set_partner_endpoint(
        &self,
        request: Request<pb::SetPartnerEndpointRequest>,
    ) -> Result<Response<pb::SetPartnerEndpointResponse>, Status> {
        let call = call(&request)?;
        let input = EndpointInput::parse(request.get_ref())?;
        let response = pb::SetPartnerEndpointResponse {
            partner_id: input.partner_id.clone(),
            url: input.url.clone(),
        };
        self.0.set_endpoint(input, &call).await?;
        Ok(Response::new(response))
    }

    async fn list_sent_messages(
        &self,
        request: Request<pb::ListSentMessagesRequest>,
    ) -> Result<Response<pb::ListSentMessagesResponse>, Status> {
        let r = request.into_inner();
        let channel = match r.channel {
            0 => None,
            c => Some(Channel::from_pb(c).map_err(|e| Error::invalid("channel", e))?),
        };
        Ok(Response::new(
            self.0.sent_messages(channel, r.page.as_ref()).await?,
        ))
    }
}
