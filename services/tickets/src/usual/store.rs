//! The SQL of usual engineers: one row per customer.

use crm_kit::{Result, convert};
use crm_proto::tickets::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{name, time_of, value};

/// A customer's usual engineer, if one is known (an empty engineer is none).
pub async fn usual_engineer(
    conn: &mut PgConnection,
    customer: Uuid,
) -> Result<Option<pb::UsualEngineer>> {
    let row: Option<(String, String, OffsetDateTime, String)> = sqlx::query_as(
        "SELECT engineer_id, source, update_time, updated_by FROM usual_engineers WHERE customer_id = $1",
    )
    .bind(customer)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|(engineer_id, source, at, by)| pb::UsualEngineer {
        customer_id: customer.to_string(),
        engineer_id,
        source: value(pb::UsualEngineerSource::from_str_name(&source)),
        updated: Some(convert::stamp(at, &by)),
    }))
}

/// Records a customer's usual engineer. From service history it does not replace a manager's
/// choice; returns whether anything changed.
pub async fn set_usual_engineer(tx: &mut PgConnection, u: &pb::UsualEngineer) -> Result<bool> {
    let customer =
        Uuid::parse_str(&u.customer_id).map_err(|e| crm_kit::Error::Internal(e.into()))?;
    let updated = u.updated.clone().unwrap_or_default();
    let history = pb::UsualEngineerSource::ServiceHistory.as_str_name();
    let changed = sqlx::query(
        "INSERT INTO usual_engineers (customer_id, engineer_id, source, update_time, updated_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (customer_id) DO UPDATE \
         SET engineer_id = $2, source = $3, update_time = $4, updated_by = $5 \
         WHERE $3 <> $6 OR (usual_engineers.source = $6 AND usual_engineers.engineer_id <> $2) \
            OR usual_engineers.engineer_id = ''",
    )
    .bind(customer)
    .bind(&u.engineer_id)
    .bind(name(u.source, pb::UsualEngineerSource::as_str_name))
    .bind(time_of(updated.time.as_ref()))
    .bind(&updated.actor)
    .bind(history)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed > 0)
}
