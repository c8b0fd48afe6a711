//! API keys (G-1): created for a partner organisation or an internal app with roles and a
//! lifetime (the secret shown once), listed, revoked (its tokens with it).

pub mod rules;
mod store;

pub(crate) use store::api_key;

use crm_kit::{Error, Result, audit, context::Call, idempotency::RequestKey};
use crm_proto::gateway::v1 as pb;
use uuid::Uuid;

use time::Duration;

use crate::{api_keys::rules::NewApiKey, service::Identity};

impl Identity {
    /// Creates an API key; the secret is in this response only (a retry gets the key without it).
    pub async fn create_api_key(
        &self,
        key: RequestKey,
        new: NewApiKey,
        call: &Call,
    ) -> Result<pb::CreateApiKeyResponse> {
        let actor = &call.principal;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let id = Uuid::now_v7();
        let secret = crate::sessions::rules::secret();
        let expire = now + Duration::days(i64::from(new.ttl_days));
        let row = store::insert_api_key(
            &mut tx,
            id,
            &new,
            &crate::sessions::rules::hash_secret(&secret),
            expire,
            now,
            &actor.subject,
        )
        .await?;
        let stored = pb::CreateApiKeyResponse {
            api_key: Some(row.to_proto()),
            secret: String::new(),
        };
        audit::record(
            &mut tx,
            call,
            now,
            &format!("api_keys/{id}"),
            &["name", "roles", "partner_id", "expire_time"],
        )
        .await?;
        key.finish(tx, &stored, now).await?;
        Ok(pb::CreateApiKeyResponse {
            secret: crate::api_keys::rules::api_key_string(id, &secret),
            ..stored
        })
    }

    /// API keys, oldest first.
    pub async fn list_api_keys(
        &self,
        page: Option<&crm_proto::common::v1::PageRequest>,
    ) -> Result<pb::ListApiKeysResponse> {
        let page = self.pager.read::<Uuid>(page, "")?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_api_keys(&mut conn, page.after, page.limit()).await?;
        let mut api_keys: Vec<pb::ApiKey> = rows.iter().map(store::ApiKeyRow::to_proto).collect();
        let page = self.pager.finish(&page, &mut api_keys, "", |k| {
            k.id.parse::<Uuid>().unwrap_or_default()
        });
        Ok(pb::ListApiKeysResponse {
            api_keys,
            page: Some(page),
        })
    }

    /// Revokes an API key and every token made from it.
    pub async fn revoke_api_key(
        &self,
        key: RequestKey,
        id: Uuid,
        call: &Call,
    ) -> Result<pb::RevokeApiKeyResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let row = store::api_key(&mut tx, id, true)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "api key",
                id: id.to_string(),
            })?;
        if row.revoke_time.is_some() {
            return Err(Error::precondition(
                "API_KEY_REVOKED",
                "the API key is already revoked",
            ));
        }
        let row = store::revoke_api_key(&mut tx, id, now).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("api_keys/{id}"),
            &["revoke_time"],
        )
        .await?;
        let response = pb::RevokeApiKeyResponse {
            api_key: Some(row.to_proto()),
        };
        key.finish(tx, &response, now).await?;
        self.publish_revoked(&[crate::api_keys::rules::api_key_session(id)], now)
            .await?;
        Ok(response)
    }
}
