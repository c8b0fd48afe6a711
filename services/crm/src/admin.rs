//! `crm admin …`: users and API keys managed from the command line, through the same use cases
//! as the gateway's admin API (the same validation, idempotency and records).

use crm_gateway::{Identity, api_keys, users};
use crm_kit::{Clock, Settings, context::Call, idempotency::RequestKey, paging::Pager};
use crm_proto::gateway::v1 as pb;

/// The identity service for a command-line tool. The tool issues no tokens, so without a
/// configured signing key it signs with a throwaway one.
pub async fn identity(settings: &Settings) -> anyhow::Result<Identity> {
    let mut settings = settings.clone();
    if settings.auth.signing_key.is_empty() {
        settings.auth.signing_key = crm_kit::auth::generate_signing_key();
    }
    let pool = crm_kit::db::connect(&settings.database, crm_gateway::NAME).await?;
    let redis = crm_kit::redis::connect(&settings.redis).await?;
    let security = crm_kit::auth::Security::new(&settings.auth)?;
    Identity::new(
        pool,
        Clock::system(),
        Pager::new(&settings.paging),
        &settings,
        security,
        redis,
    )
}

/// Creates a user (or returns the one an earlier run with the same `request_id` created).
pub async fn create_user(
    identity: &Identity,
    request_id: &str,
    user: pb::User,
    password: &str,
    actor: &str,
) -> anyhow::Result<pb::User> {
    let request = pb::CreateUserRequest {
        request_id: request_id.into(),
        user: Some(user),
        password: password.into(),
    };
    let digest = pb::CreateUserRequest {
        password: String::new(),
        ..request.clone()
    };
    let call = Call::system(actor, "crm.gateway.v1.AdminService/CreateUser");
    let key = RequestKey::of(&call, request_id, &digest)?;
    let new = users::rules::NewUser::parse(&request)?;
    let created = identity.create_user(key, new, &call).await?;
    Ok(created.user.unwrap_or_default())
}

/// Creates an API key and returns it with its secret (shown once).
pub async fn create_api_key(
    identity: &Identity,
    api_key: pb::ApiKey,
    ttl_days: i32,
    actor: &str,
) -> anyhow::Result<pb::CreateApiKeyResponse> {
    let request = pb::CreateApiKeyRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        api_key: Some(api_key),
        ttl_days,
    };
    let call = Call::system(actor, "crm.gateway.v1.AdminService/CreateApiKey");
    let key = RequestKey::of(&call, &request.request_id, &request)?;
    let new = api_keys::rules::NewApiKey::parse(&request, identity.api_key_ttl_days())?;
    Ok(identity.create_api_key(key, new, &call).await?)
}
