//! The notifications service's state and what its capabilities share: who sees which
//! notifications (their own inbox keys, by the kit's scope rules) and the not-found error.
//! The use cases are in the capability folders (`sending/`, `inbox/`, `templates/`,
//! `opt_outs/`, `partners/`, `delivery/`, `triggers/`), each a transaction over its own SQL,
//! audited in the same transaction.

use std::sync::Arc;

use crm_kit::{Clock, Error, Role, auth::Principal, paging::Pager};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::settings::NotificationSettings;

/// Roles that see every notification; others see those addressed to them.
const UNSCOPED_ROLES: &[Role] = &[
    Role::Admin,
    Role::CrmLead,
    Role::Supervisor,
    Role::SalesManager,
];

/// The notifications service's state.
#[derive(Clone)]
pub struct Notifications {
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    pub(crate) pager: Pager,
    pub(crate) settings: Arc<NotificationSettings>,
    pub(crate) wake: Arc<Notify>,
}

/// The inbox keys of `caller`: their own and their partner organisation's.
pub fn inbox_keys(caller: &Principal) -> Vec<String> {
    let mut keys = vec![format!("user:{}", caller.subject)];
    if let Some(organisation) = crm_kit::scope::organisation(caller, &crm_kit::Role::ALL) {
        keys.push(format!("partner:{organisation}"));
    }
    keys
}

pub(crate) fn visible_recipients(caller: &Principal) -> Option<Vec<String>> {
    if caller.has_any(UNSCOPED_ROLES) {
        None
    } else {
        Some(inbox_keys(caller))
    }
}

pub(crate) fn not_found(kind: &'static str, id: impl ToString) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}

#[derive(Serialize, Deserialize)]
pub(crate) struct NameKey(pub(crate) String, pub(crate) String);

impl Notifications {
    /// The service over `pool` (already migrated); `wake` tells the senders new work waits.
    pub fn new(
        pool: PgPool,
        clock: Clock,
        pager: Pager,
        settings: Arc<NotificationSettings>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            pool,
            clock,
            pager,
            settings,
            wake,
        }
    }

    /// The pool, for tests and tools.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}
