//! The members of the roles a service acts on, kept from the gateway's `gateway.user_changed`
//! events in the service's own schema (`directory_members`): the tickets service's engineers,
//! the customers service's sales reps. Written once here so every service keeps its copy the
//! same way.

use sqlx::PgConnection;
use time::OffsetDateTime;

use crate::Error;

/// Records `user` for each of `roles`: active while they hold the role; a user who never held
/// it is not recorded, one who lost it is kept, inactive.
pub async fn record_user(
    tx: &mut PgConnection,
    user: &crm_proto::gateway::v1::User,
    roles: &[crate::Role],
    now: OffsetDateTime,
) -> Result<(), Error> {
    for role in roles {
        let holds = user.roles.iter().any(|r| r == role.as_str());
        sqlx::query(
            "INSERT INTO directory_members (user_id, role, region, active, update_time) \
             SELECT $1, $2, $3, $4, $5 \
             WHERE $4 OR EXISTS (SELECT 1 FROM directory_members WHERE user_id = $1 AND role = $2) \
             ON CONFLICT (user_id, role) DO UPDATE SET region = $3, active = $4, update_time = $5",
        )
        .bind(&user.id)
        .bind(role.as_str())
        .bind(&user.region)
        .bind(holds)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// Decodes a `gateway.user_changed` payload; `None` for any other event.
pub fn user_of(
    event: &crm_proto::events::v1::Event,
) -> Result<Option<crm_proto::gateway::v1::User>, Error> {
    crate::events::payload_as(event)
}

/// The region of `user_id` if they hold `role` now.
pub async fn region_of(
    conn: &mut PgConnection,
    user_id: &str,
    role: crate::Role,
) -> Result<Option<String>, Error> {
    Ok(sqlx::query_scalar(
        "SELECT region FROM directory_members WHERE user_id = $1 AND role = $2 AND active",
    )
    .bind(user_id)
    .bind(role.as_str())
    .fetch_optional(&mut *conn)
    .await?)
}
