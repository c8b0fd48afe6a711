//! The customers' tiers as the tickets service keeps them (T-2) from the customers service's
//! events, and the engineers from the gateway's: a tier change recomputes the running deadlines
//! of the customer's open tickets.

mod store;

pub(crate) use store::tier;

use crm_kit::{Error, Result, convert, directory, events, timers};
use crm_proto::tickets::v1::Deadline;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::service::{ENGINEER, Tickets, at, scaled, subject, ts};

/// Keeps what the tickets service learns from others' events: the engineers from the
/// gateway's user directory (for dispatch, T-6), and the customers' tiers and usual engineers
/// from the customers service (T-2); when a customer's tier changes, the running deadlines of
/// its open tickets are recomputed for the new level.
pub struct Inbound {
    /// The service.
    pub tickets: Tickets,
}

impl Tickets {
    /// Recomputes the running response and resolution deadlines of `customer`'s open tickets
    /// for `tier`: the business time already used counts against the new level. Their timers
    /// move in `tx`; an earlier deadline's entry moves at once ([`Timers::arm_earlier`]), a
    /// later one's is put back at its time when the old entry comes due.
    async fn retier(&self, tx: &mut PgConnection, customer: Uuid, tier: &str) -> Result<usize> {
        let now = self.clock.now();
        let new = self.settings.sla(tier);
        let open: Vec<String> = crate::rules::OPEN
            .iter()
            .map(|s| s.as_str_name().to_string())
            .collect();
        let ids = crate::store::open_tickets_of(tx, customer, &open).await?;
        for id in &ids {
            let Some(mut record) = crate::store::get(tx, *id, true).await? else {
                continue;
            };
            let t = &mut record.ticket;
            let old = self.settings.sla(&t.tier);
            for (deadline, old_total, new_total) in [
                (
                    Deadline::Response,
                    time::Duration::minutes(old.response_minutes),
                    time::Duration::minutes(new.response_minutes),
                ),
                (
                    Deadline::Resolution,
                    time::Duration::hours(old.resolution_hours),
                    time::Duration::hours(new.resolution_hours),
                ),
            ] {
                let due_field = match deadline {
                    Deadline::Response => &mut t.response_due,
                    _ => &mut t.resolution_due,
                };
                let Some(old_due) = at(due_field.as_ref()) else {
                    continue; // not running (answered, paused, resolved)
                };
                let used = old_total - self.calendar.between(now, old_due);
                let left = (new_total - used).max(time::Duration::ZERO);
                let due = self.calendar.add(now, left);
                *due_field = ts(due);
                let warning_left =
                    (scaled(new_total, self.settings.warning_at) - used).max(time::Duration::ZERO);
                let warning = self.calendar.add(now, warning_left);
                let subject = subject(&t.id);
                let mut moved = timers::reschedule(
                    tx,
                    &subject,
                    crate::sla::rules::timer_kind(deadline, false),
                    due,
                )
                .await?;
                moved.extend(
                    timers::reschedule(
                        tx,
                        &subject,
                        crate::sla::rules::timer_kind(deadline, true),
                        warning,
                    )
                    .await?,
                );
                self.timers.arm_earlier(&moved).await;
            }
            t.tier = tier.to_string();
            t.version += 1;
            t.updated = Some(convert::stamp(now, "tier"));
            crate::store::save(tx, &record).await?;
        }
        Ok(ids.len())
    }
}

/// A customers-service tier as the tickets service names it (`vip`, `core`, …).
fn tier_name(tier: i32) -> Option<String> {
    crm_proto::customers::v1::Tier::try_from(tier)
        .ok()
        .map(|t| t.as_str_name().trim_start_matches("TIER_").to_lowercase())
}

#[tonic::async_trait]
impl events::Handler for Inbound {
    async fn handle(
        &self,
        tx: &mut PgConnection,
        event: &crm_proto::events::v1::Event,
    ) -> std::result::Result<(), Error> {
        use crm_proto::customers::v1::{CustomerEvent, CustomersImportedEvent};
        if let Some(user) = directory::user_of(event)? {
            let now = self.tickets.clock.now();
            return directory::record_user(tx, &user, &[ENGINEER], now).await;
        }
        if let Some(data) = events::payload_as::<CustomersImportedEvent>(event)? {
            let known: Vec<(Uuid, String)> = data
                .customers
                .iter()
                .filter_map(|c| {
                    let id = Uuid::parse_str(&c.id).ok()?;
                    let tier =
                        tier_name(c.tier).filter(|t| crate::rules::TIERS.contains(&t.as_str()))?;
                    Some((id, tier))
                })
                .collect();
            // new customers: a later customers.customer_changed, if one came first, is newer
            return store::add_tiers(tx, &known, self.tickets.clock.now()).await;
        }
        let Some(data) = events::payload_as::<CustomerEvent>(event)? else {
            return Ok(());
        };
        let Some(customer) = data.customer else {
            return Ok(());
        };
        let Ok(id) = Uuid::parse_str(&customer.id) else {
            return Ok(());
        };
        let Some(tier) =
            tier_name(customer.tier).filter(|t| crate::rules::TIERS.contains(&t.as_str()))
        else {
            return Ok(());
        };
        let before = store::tier(tx, id).await?;
        store::set_tier(tx, id, &tier, self.tickets.clock.now()).await?;
        if before.is_some_and(|b| b != tier) {
            let moved = self.tickets.retier(tx, id, &tier).await?;
            tracing::info!(customer = %id, %tier, tickets = moved, "tier changed: deadlines recomputed");
        }
        Ok(())
    }
}
