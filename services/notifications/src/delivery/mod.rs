//! The senders (N-6): claim due deliveries with a lease (any number of replicas, each delivery
//! one sender at a time), send them through the channel's provider, and record the outcome:
//! sent, pending again after an exponential back-off with jitter, or failed after the last
//! allowed attempt. A sender that dies mid-send loses nothing: its lease runs out and another
//! sender tries again (at least once; providers get the delivery id to de-duplicate).

use std::{sync::Arc, time::Duration};

use crm_kit::{CancellationToken, Clock};
use sqlx::PgPool;
use tokio::{sync::Notify, task::JoinSet};

pub mod providers;
pub mod rules;
mod store;

pub(crate) use store::record_sink_message;
pub use store::{Claimed, claim_due};

use crm_kit::Result;
use crm_proto::{common::v1::PageRequest, notifications::v1 as pb};
use uuid::Uuid;

use crate::{rules::Channel, service::Notifications, settings::NotificationSettings};
use providers::{Outgoing, Providers, SendError};

/// A sender.
#[derive(Clone)]
pub struct Sender {
    pool: PgPool,
    clock: Clock,
    settings: Arc<NotificationSettings>,
    providers: Providers,
    wake: Arc<Notify>,
}

impl Sender {
    /// A sender over `pool`; `wake` makes an idle sender look at once.
    pub fn new(
        pool: PgPool,
        clock: Clock,
        settings: Arc<NotificationSettings>,
        providers: Providers,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            clock,
            settings,
            providers,
            wake,
        }
    }

    /// Runs until `shutdown`; deliveries in flight then finish or are left to their lease.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let busy = match self.round().await {
                    Ok(claimed) => claimed as i64 >= self.settings.send_batch,
                    Err(e) => {
                        tracing::warn!(error = %e, "notification sender round failed; retrying");
                        false
                    }
                };
                if busy {
                    continue;
                }
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.wake.notified() => {}
                    () = tokio::time::sleep(Duration::from_millis(self.settings.send_poll_ms)) => {}
                }
            }
        })
    }

    /// One round: suppress opted-out, record deadline misses, claim and send a batch; returns
    /// how many deliveries it claimed.
    pub async fn round(&self) -> anyhow::Result<usize> {
        let mut conn = self.pool.acquire().await?;
        store::suppress_opted_out(&mut conn).await?;
        let now = self.clock.now();
        for (id, recipient, channel) in store::mark_deadline_misses(&mut conn, now).await? {
            tracing::warn!(delivery = %id, %recipient, %channel, "urgent delivery missed its deadline");
        }
        let lease =
            time::Duration::milliseconds(i64::try_from(self.settings.lease_ms).unwrap_or(i64::MAX));
        let claimed =
            store::claim_due(&mut conn, now, now + lease, self.settings.send_batch).await?;
        drop(conn);
        let count = claimed.len();
        let mut running = JoinSet::new();
        for c in claimed {
            while running.len() >= self.settings.send_concurrency.max(1) {
                running.join_next().await;
            }
            let me = self.clone();
            running.spawn(async move {
                if let Err(e) = me.deliver(&c).await {
                    tracing::warn!(delivery = %c.id, error = %e, "recording a delivery outcome failed");
                }
            });
        }
        while running.join_next().await.is_some() {}
        Ok(count)
    }

    async fn deliver(&self, c: &Claimed) -> anyhow::Result<()> {
        let channel = Channel::from_stored(&c.channel)
            .ok_or_else(|| anyhow::anyhow!("stored channel {:?}", c.channel))?;
        let outcome = match self.providers.of(channel) {
            None => Err(SendError::Permanent(format!(
                "no provider sends {}",
                c.channel
            ))),
            Some(provider) => {
                provider
                    .send(&Outgoing {
                        delivery_id: c.id,
                        notification_id: c.notification_id,
                        channel,
                        address: c.address.clone(),
                        subject: c.subject.clone(),
                        body: c.body.clone(),
                        urgent: c.urgent,
                        secret: c.secret.clone(),
                    })
                    .await
            }
        };
        let mut conn = self.pool.acquire().await?;
        let now = self.clock.now();
        let recorded = match outcome {
            Ok(()) => {
                crm_kit::metrics::delivery(&c.channel, "sent");
                store::mark_sent(&mut conn, c, now).await?
            }
            Err(SendError::Transient(e)) if c.attempts < self.settings.max_attempts => {
                let delay = rules::retry_delay(
                    c.attempts,
                    Duration::from_millis(self.settings.retry_base_ms),
                    Duration::from_millis(self.settings.retry_max_ms),
                    jitter(),
                );
                tracing::info!(delivery = %c.id, attempt = c.attempts, error = %e, ?delay, "delivery failed; will retry");
                let at = now + time::Duration::try_from(delay).unwrap_or(time::Duration::MAX);
                crm_kit::metrics::delivery(&c.channel, "retry");
                store::mark_failed(&mut conn, c, &e, Some(at)).await?
            }
            Err(SendError::Transient(e) | SendError::Permanent(e)) => {
                tracing::warn!(delivery = %c.id, attempt = c.attempts, error = %e, "delivery failed for good");
                crm_kit::metrics::delivery(&c.channel, "failed");
                store::mark_failed(&mut conn, c, &e, None).await?
            }
        };
        if !recorded {
            // our lease ran out and another sender took the delivery over; its outcome stands
            tracing::info!(delivery = %c.id, "delivery was taken over before its outcome was recorded");
        }
        Ok(())
    }
}

/// A random fraction in `0.0..1.0`.
fn jitter() -> f64 {
    let r = getrandom::u32().unwrap_or(0);
    f64::from(r) / (f64::from(u32::MAX) + 1.0)
}

impl Notifications {
    /// What the development sink recorded.
    pub async fn sent_messages(
        &self,
        channel: Option<Channel>,
        page: Option<&PageRequest>,
    ) -> Result<pb::ListSentMessagesResponse> {
        let filter_key = channel.map_or("", Channel::as_str);
        let page = self.pager.read::<Uuid>(page, filter_key)?;
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            store::list_sink_messages(&mut conn, channel, page.after, page.limit()).await?;
        let next = self.pager.finish(&page, &mut rows, filter_key, |m| {
            Uuid::parse_str(&m.id).unwrap_or_default()
        });
        Ok(pb::ListSentMessagesResponse {
            messages: rows,
            page: Some(next),
        })
    }
}
