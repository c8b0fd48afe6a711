//! Opt-outs (N-6): an address opted out of a channel, or back in, audited with the address
//! masked; every later message to the same address (however it is written) is suppressed.

pub mod rules;
mod store;

pub(crate) use store::is_opted_out;

use crm_kit::{Result, audit, context::Call};
use crm_proto::{common::v1::PageRequest, notifications::v1 as pb};

use crate::{
    opt_outs::rules::OptOutInput,
    rules::mask,
    service::{NameKey, Notifications},
};

impl Notifications {
    /// Opts an address out of a channel, or back in; audited.
    pub async fn set_opt_out(&self, o: OptOutInput, call: &Call) -> Result<bool> {
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let now = self.clock.now();
        let changed = store::set_opt_out(&mut tx, &o, now, &call.principal.subject).await?;
        if changed {
            audit::record(
                &mut tx,
                call,
                now,
                &format!("opt_outs/{}/{}", o.channel.as_str(), mask(&o.address)),
                &[if o.opted_out { "opted_out" } else { "opted_in" }, "reason"],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(o.opted_out)
    }

    /// Opt-outs by channel and address.
    pub async fn opt_outs(&self, page: Option<&PageRequest>) -> Result<pb::ListOptOutsResponse> {
        let page = self.pager.read::<NameKey>(page, "opt_outs")?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_opt_outs(
            &mut conn,
            page.after.as_ref().map(|k| (k.0.clone(), k.1.clone())),
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut rows, "opt_outs", |(_, k)| {
            NameKey(k.0.clone(), k.1.clone())
        });
        Ok(pb::ListOptOutsResponse {
            opt_outs: rows.into_iter().map(|(o, _)| o).collect(),
            page: Some(next),
        })
    }
}
