//! The in-app inbox: a caller's own items and their partner organisation's, newest first, with
//! the unread count; marking read only one's own.

mod store;

use crm_kit::Result;
use crm_proto::{common::v1::PageRequest, notifications::v1 as pb};
use uuid::Uuid;

use crm_kit::auth::Principal;

use crate::service::{Notifications, inbox_keys, not_found};

impl Notifications {
    /// The caller's inbox, newest first.
    pub async fn inbox(
        &self,
        unread_only: bool,
        page: Option<&PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListInboxResponse> {
        let keys = inbox_keys(caller);
        let filter_key = format!("{}|{unread_only}", keys.join(","));
        let page = self.pager.read::<Uuid>(page, &filter_key)?;
        let mut conn = self.pool.acquire().await?;
        let mut items =
            store::list_inbox(&mut conn, &keys, unread_only, page.after, page.limit()).await?;
        let unread_count = store::unread_count(&mut conn, &keys).await?;
        let next = self.pager.finish(&page, &mut items, &filter_key, |i| {
            Uuid::parse_str(&i.id).unwrap_or_default()
        });
        Ok(pb::ListInboxResponse {
            items,
            unread_count,
            page: Some(next),
        })
    }

    /// Marks the caller's inbox items read; another's item is NOT_FOUND and nothing is marked.
    pub async fn mark_read(&self, ids: &[Uuid], caller: &Principal) -> Result<i64> {
        let keys = inbox_keys(caller);
        let mut tx = crm_kit::db::begin(&self.pool).await?;
        let own = store::own_inbox_items(&mut tx, &keys, ids).await?;
        if let Some(other) = ids.iter().find(|id| !own.contains(id)) {
            return Err(not_found("inbox item", other));
        }
        let marked = store::mark_read(&mut tx, ids, self.clock.now()).await?;
        tx.commit().await?;
        Ok(marked)
    }
}
