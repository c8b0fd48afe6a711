//! The gRPC adapters of the auth and admin APIs.

use crm_kit::{
    Error,
    context::{Origin, call, caller},
    convert::id,
    error::both,
    idempotency::RequestKey,
};
use crm_proto::gateway::v1::{
    self as pb, admin_service_server::AdminService, auth_service_server::AuthService,
};
use tonic::{Request, Response, Status};

use crate::{
    api_keys::rules::NewApiKey,
    service::{self, Identity},
    users::rules::NewUser,
};

/// The gRPC adapter: one call of the use cases per RPC, nothing else.
#[derive(Clone)]
pub struct Api(pub Identity);

#[tonic::async_trait]
impl AuthService for Api {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let origin = Origin::of(&request);
        let r = request.into_inner();
        // a user name no user can have (blank, too long, a NUL or control character) is a
        // wrong user name, not a fault: refused before anything is looked up
        if r.username.trim().is_empty()
            || r.password.is_empty()
            || crm_kit::text::problem(&r.username, 200, crm_kit::text::Lines::One).is_some()
            || r.password.len() > 1024
        {
            return Err(Error::Unauthenticated("wrong user name or password".into()).into());
        }
        Ok(Response::new(
            self.0.login(&r.username, &r.password, &origin).await?,
        ))
    }

    async fn exchange_api_key(
        &self,
        request: Request<pb::ExchangeApiKeyRequest>,
    ) -> Result<Response<pb::ExchangeApiKeyResponse>, Status> {
        let origin = Origin::of(&request);
        let key = request.into_inner().api_key;
        Ok(Response::new(self.0.exchange_api_key(&key, &origin).await?))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        Ok(Response::new(
            self.0.refresh(&request.into_inner().refresh_token).await?,
        ))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let call = call(&request)?;
        self.0.logout(&call).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::WhoAmIResponse>, Status> {
        let caller = caller(&request)?;
        Ok(Response::new(pb::WhoAmIResponse {
            caller: Some(service::caller(&caller)),
        }))
    }
}

#[tonic::async_trait]
impl AdminService for Api {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        // the request's digest is stored: leave the password out of it
        let digest = pb::CreateUserRequest {
            password: String::new(),
            ..r.clone()
        };
        let key = RequestKey::of(&call, &r.request_id, &digest);
        let (key, user) = both(key, NewUser::parse(&r))?;
        Ok(Response::new(self.0.create_user(key, user, &call).await?))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        Ok(Response::new(
            self.0.list_users(request.get_ref().page.as_ref()).await?,
        ))
    }

    async fn set_user_roles(
        &self,
        request: Request<pb::SetUserRolesRequest>,
    ) -> Result<Response<pb::SetUserRolesResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        let user = id("user_id", &r.user_id)?;
        let roles = crate::users::rules::parse_roles(&r.roles, "")?;
        Ok(Response::new(
            self.0
                .set_user_roles(key, user, roles, r.region.trim().to_string(), &call)
                .await?,
        ))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, new) = both(key, NewApiKey::parse(&r, self.0.api_key_ttl_days()))?;
        Ok(Response::new(self.0.create_api_key(key, new, &call).await?))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        Ok(Response::new(
            self.0
                .list_api_keys(request.get_ref().page.as_ref())
                .await?,
        ))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r)?;
        Ok(Response::new(
            self.0.revoke_api_key(key, id("id", &r.id)?, &call).await?,
        ))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        let authorization = request.metadata().get("authorization").cloned();
        let r = request.into_inner();
        Ok(Response::new(
            self.0.list_audit_events(r, authorization).await?,
        ))
    }

    async fn get_policy(
        &self,
        _request: Request<pb::GetPolicyRequest>,
    ) -> Result<Response<pb::GetPolicyResponse>, Status> {
        Ok(Response::new(self.0.get_policy().await?))
    }

    async fn set_role_policy(
        &self,
        request: Request<pb::SetRolePolicyRequest>,
    ) -> Result<Response<pb::SetRolePolicyResponse>, Status> {
        let call = call(&request)?;
        let r = request.into_inner();
        let key = RequestKey::of(&call, &r.request_id, &r);
        let (key, (role, methods)) = both(key, crate::policy::rules::parse_role_policy(&r))?;
        Ok(Response::new(
            self.0.set_role_policy(key, role, methods, &call).await?,
        ))
    }
}
