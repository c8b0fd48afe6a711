//! The SQL of the routing: one conditional update of the ticket's row.

use crm_kit::Result;
use crm_proto::tickets::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

/// Routes `ticket` to `centre` (of partner organisation `partner`, empty for HQ and branch
/// centres), a new version; its state (the protobuf value) when it changed, `None` when the
/// ticket is unknown or already routed there.
pub async fn route(
    tx: &mut PgConnection,
    ticket: Uuid,
    centre: &str,
    partner: &str,
    now: OffsetDateTime,
    actor: &str,
) -> Result<Option<i32>> {
    let state: Option<String> = sqlx::query_scalar(
        "UPDATE tickets SET routed_centre_id = $2, partner_id = $3, version = version + 1, \
         update_time = $4, updated_by = $5 \
         WHERE id = $1 AND (routed_centre_id, partner_id) IS DISTINCT FROM ($2, $3) \
         RETURNING state",
    )
    .bind(ticket)
    .bind(centre)
    .bind(partner)
    .bind(now)
    .bind(actor)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(state.map(|s| crate::store::value(pb::TicketState::from_str_name(&s))))
}
