//! Turnaround: every repair order gets a warning and a breach timer at registration (the
//! kit's timers: armed after the commit, fired once across replicas, cancelled when the order
//! closes). A warning is recorded and announced; a breach is recorded once, raises the order's
//! priority, goes into its history and is announced urgently (the notifications service tells
//! the centre's supervisor). The report gives each centre's on-time share from the orders.

pub mod rules;
mod store;

use crm_kit::{
    Error, Result,
    auth::Principal,
    context::Call,
    convert, history,
    timers::{NewTimer, Timer, TimerHandler},
};
use crm_proto::repairs::v1 as pb;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    centres, orders,
    service::{Repairs, TURNAROUND_BREACHED, TURNAROUND_WARNING, publish_with, scope},
};

impl Repairs {
    /// The warning and breach timers of order `id`, registered at `from` and due at `due`.
    pub(crate) fn turnaround_timers(
        &self,
        id: Uuid,
        from: OffsetDateTime,
        due: OffsetDateTime,
    ) -> Vec<NewTimer> {
        let warning = self
            .calendar
            .fraction(from, due, self.settings.warning_at, true);
        [(rules::WARNING, warning), (rules::BREACH, due)]
            .into_iter()
            .map(|(kind, at)| NewTimer {
                kind: kind.into(),
                subject: format!("repair_orders/{id}"),
                due: at,
                payload: serde_json::json!({ "due": convert::timestamp(due).seconds }),
            })
            .collect()
    }

    /// Turnaround per centre over the orders due in `[from, to)`, in the caller's scope.
    pub async fn report_turnaround(
        &self,
        (from, to): (OffsetDateTime, OffsetDateTime),
        caller: &Principal,
    ) -> Result<pb::ReportTurnaroundResponse> {
        let mut conn = self.pool.acquire().await?;
        let lines = store::report(&mut conn, &scope(caller), from, to).await?;
        Ok(pb::ReportTurnaroundResponse {
            centres: lines
                .into_iter()
                .map(|l| pb::CentreTurnaround {
                    centre_id: l.centre_id.to_string(),
                    orders: l.orders as i32,
                    on_time: l.on_time as i32,
                    breached: l.breached as i32,
                    open: l.open as i32,
                    on_time_share: rules::on_time_share(l.on_time, l.breached),
                })
                .collect(),
        })
    }
}

/// Fires the repairs service's timers: the turnaround's, and the return of an exchanged
/// unit's faulty original (`rmas`).
pub struct TurnaroundTimers {
    /// The service.
    pub repairs: Repairs,
}

#[tonic::async_trait]
impl TimerHandler for TurnaroundTimers {
    async fn fire(&self, tx: &mut PgConnection, timer: &Timer) -> std::result::Result<(), Error> {
        if timer.kind == crate::rmas::RETURN_DUE {
            return crate::rmas::return_overdue(&self.repairs, tx, timer).await;
        }
        let breach = match timer.kind.as_str() {
            rules::BREACH => true,
            rules::WARNING => false,
            other => {
                tracing::warn!(kind = other, "unknown repairs timer kind; ignored");
                return Ok(());
            }
        };
        let Some(id) = timer
            .subject
            .strip_prefix("repair_orders/")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            return Ok(());
        };
        // an order closed meanwhile (its timers are cancelled then) fires nothing
        let Some(row) = orders::lock_order(tx, id).await?.filter(|r| !r.closed()) else {
            return Ok(());
        };
        let now = self.repairs.clock.now();
        let recorded = if breach {
            store::record_breach(tx, id, now).await?
        } else {
            store::record_warning(tx, id, now).await?
        };
        if !recorded {
            return Ok(());
        }
        // what was recorded, on the row already held (no second read)
        let mut order = row.to_proto();
        let at = Some(convert::timestamp(now));
        if breach {
            order.breach_time = at;
            order.priority = pb::OrderPriority::High as i32;
            order.updated = Some(convert::stamp(now, "turnaround"));
        } else {
            order.warning_time = at;
        }
        let centre = centres::get_centre(tx, row.centre_id())
            .await?
            .unwrap_or_default();
        let state = pb::OrderState::try_from(order.state)
            .unwrap_or_default()
            .as_str_name()
            .trim_start_matches("ORDER_STATE_");
        let due = order.due_time.as_ref().map_or(0, |t| t.seconds);
        history::record(
            tx,
            &history::Change {
                subject: &format!("repair_orders/{id}"),
                kind: "state",
                from: state,
                to: state,
                reason: &if breach {
                    format!("turnaround missed: due {due}; priority raised")
                } else {
                    format!("turnaround warning: due {due}")
                },
                via: if breach {
                    "TURNAROUND_BREACH"
                } else {
                    "TURNAROUND_WARNING"
                },
                actor: "turnaround",
                at: now,
            },
        )
        .await?;
        let event = pb::TurnaroundEvent {
            repair_order: Some(order),
            centre: Some(centre),
        };
        let (kind, urgent) = if breach {
            (TURNAROUND_BREACHED, true)
        } else {
            (TURNAROUND_WARNING, false)
        };
        let call = Call::system("turnaround", &timer.kind);
        publish_with(tx, &call, now, kind, &timer.subject, &event, urgent).await
    }
}
