//! Users (G-2): created by an admin with their roles, region and partner organisation, listed,
//! their roles replaced (their sessions revoked); every change announced as
//! `gateway.user_changed` so the services that reach users keep their directory.

pub mod rules;
mod store;

pub(crate) use store::{UserRow, user_by_id, user_by_name};

use crm_kit::{Error, Result, audit, context::Call, idempotency::RequestKey};
use crm_proto::gateway::v1 as pb;
use uuid::Uuid;

use crate::{
    service::{Identity, TOPIC, USER_CHANGED},
    users::rules::NewUser,
};

async fn publish_user(
    tx: &mut sqlx::PgConnection,
    call: &Call,
    now: time::OffsetDateTime,
    user: &pb::User,
) -> Result<()> {
    let aggregate = format!("users/{}", user.id);
    crm_kit::events::publish(
        tx,
        call,
        now,
        crm_kit::events::NewEvent {
            topic: TOPIC,
            event_type: USER_CHANGED,
            aggregate: &aggregate,
            payload: crm_kit::events::Payload::of(user),
            urgent: false,
        },
    )
    .await?;
    Ok(())
}

impl Identity {
    /// Creates a user.
    pub async fn create_user(
        &self,
        key: RequestKey,
        user: NewUser,
        call: &Call,
    ) -> Result<pb::CreateUserResponse> {
        let actor = &call.principal;
        let hash = self.hash_password(user.password.clone()).await?;
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let row = store::insert_user(&mut tx, Uuid::now_v7(), &user, &hash, now, &actor.subject)
            .await
            .map_err(|e| {
                e.or_when("users_username_key", || Error::AlreadyExists {
                    reason: "USERNAME_TAKEN",
                    message: format!("user name {} is taken", user.username),
                })
            })?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("users/{}", row.id),
            &[
                "username",
                "display_name",
                "roles",
                "region",
                "partner_id",
                "email",
                "phone",
                "language",
                "password",
            ],
        )
        .await?;
        let response = pb::CreateUserResponse {
            user: Some(row.to_proto()),
        };
        publish_user(&mut tx, call, now, &row.to_proto()).await?;
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Users by user name.
    pub async fn list_users(
        &self,
        page: Option<&crm_proto::common::v1::PageRequest>,
    ) -> Result<pb::ListUsersResponse> {
        let page = self.pager.read::<String>(page, "")?;
        let mut conn = self.pool.acquire().await?;
        let rows = store::list_users(&mut conn, page.after.clone(), page.limit()).await?;
        let mut users: Vec<pb::User> = rows.iter().map(UserRow::to_proto).collect();
        let page = self
            .pager
            .finish(&page, &mut users, "", |u| u.username.clone());
        Ok(pb::ListUsersResponse {
            users,
            page: Some(page),
        })
    }

    /// Replaces a user's roles; their sessions end.
    pub async fn set_user_roles(
        &self,
        key: RequestKey,
        user_id: Uuid,
        roles: Vec<String>,
        region: String,
        call: &Call,
    ) -> Result<pb::SetUserRolesResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        store::user_by_id(&mut tx, user_id, true)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "user",
                id: user_id.to_string(),
            })?;
        store::set_roles(&mut tx, user_id, &roles, &region, now).await?;
        let revoked = crate::sessions::revoke_sessions(&mut tx, None, Some(user_id), now).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("users/{user_id}"),
            &["roles", "region"],
        )
        .await?;
        let user = store::user_by_id(&mut tx, user_id, false)
            .await?
            .ok_or_else(|| Error::NotFound {
                kind: "user",
                id: user_id.to_string(),
            })?;
        let response = pb::SetUserRolesResponse {
            user: Some(user.to_proto()),
        };
        publish_user(&mut tx, call, now, &user.to_proto()).await?;
        key.finish(tx, &response, now).await?;
        let revoked: Vec<String> = revoked.iter().map(Uuid::to_string).collect();
        self.publish_revoked(&revoked, now).await?;
        Ok(response)
    }
}
