//! Partners' webhooks (N-4): a partner organisation's URL, signing secret and language.

pub mod rules;
mod store;

pub(crate) use store::get_endpoint;

use crm_kit::{Result, audit, context::Call};

use crate::{partners::rules::EndpointInput, service::Notifications};

impl Notifications {
    /// Sets a partner's webhook; audited (without the secret).
    pub async fn set_endpoint(&self, e: EndpointInput, call: &Call) -> Result<()> {
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let now = self.clock.now();
        store::set_endpoint(&mut tx, &e, now, &call.principal.subject).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("partner_endpoints/{}", e.partner_id),
            &["url", "secret", "language"],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
