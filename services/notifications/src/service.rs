//! The notifications service's use cases: each a transaction over [`crate::store`], with the
//! rules of [`crate::domain`]; changes are audited in the same transaction.

use std::sync::Arc;

use crm_kit::{
    Clock, Error, Result, Role, audit, auth::Principal, context::Call, idempotency::RequestKey,
    paging::Pager,
};
use crm_proto::{common::v1::PageRequest, notifications::v1 as pb};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{
    compose::{self, Draft},
    domain::{self, Channel, EndpointInput, MANUAL, OptOutInput, SendInput, TemplateInput},
    settings::NotificationSettings,
    store::{self, NotificationQuery},
};

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
    pool: PgPool,
    clock: Clock,
    pager: Pager,
    settings: Arc<NotificationSettings>,
    wake: Arc<Notify>,
}

/// The inbox keys of `caller`: their own and their partner organisation's.
pub fn inbox_keys(caller: &Principal) -> Vec<String> {
    let mut keys = vec![format!("user:{}", caller.subject)];
    if !caller.partner_id.is_empty() {
        keys.push(format!("partner:{}", caller.partner_id));
    }
    keys
}

fn visible_recipients(caller: &Principal) -> Option<Vec<String>> {
    if caller.has_any(UNSCOPED_ROLES) {
        None
    } else {
        Some(inbox_keys(caller))
    }
}

fn not_found(kind: &'static str, id: impl ToString) -> Error {
    Error::NotFound {
        kind,
        id: id.to_string(),
    }
}

#[derive(Serialize, Deserialize)]
struct NameKey(String, String);

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

    /// Sends a manual message.
    pub async fn send(
        &self,
        key: RequestKey,
        input: SendInput,
        call: &Call,
    ) -> Result<pb::SendNotificationResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let language = self.settings.default_language();
        let template = store::find_template(&mut tx, &input.template, language)
            .await?
            .ok_or_else(|| not_found("template", &input.template))?;
        if template.kind != MANUAL {
            return Err(Error::precondition(
                "TEMPLATE_NOT_MANUAL",
                format!(
                    "template {:?} is of kind {:?}; only \"manual\" templates are sent by hand",
                    input.template, template.kind
                ),
            ));
        }
        input.check_variables(&template.variables)?;
        let now = self.clock.now();
        let draft = Draft {
            kind: MANUAL.into(),
            template: input.template.clone(),
            event_id: String::new(),
            customer_id: input.customer_id.clone(),
            urgent: input.urgent,
            deadline: input
                .urgent
                .then(|| now + time::Duration::seconds(self.settings.urgent_deadline_s)),
            variables: input.variables.clone(),
            recipients: input.recipients.clone(),
            channels: input.channels.clone(),
        };
        let made = compose::make(&mut tx, &draft, language, now).await?;
        let id = made.id.expect("a manual message has no event to repeat");
        let notification = store::get_notification(&mut tx, id)
            .await?
            .ok_or_else(|| not_found("notification", id))?;
        let response = pb::SendNotificationResponse {
            notification: Some(notification),
        };
        audit::record(
            &mut tx,
            call,
            now,
            &format!("notifications/{id}"),
            &["template", "recipients", "channels"],
        )
        .await?;
        key.finish(tx, &response, now).await?;
        if made.pending {
            self.wake.notify_one();
        }
        Ok(response)
    }

    /// One notification, if the caller may see it.
    pub async fn get(&self, id: Uuid, caller: &Principal) -> Result<pb::Notification> {
        let mut conn = self.pool.acquire().await?;
        let n = store::get_notification(&mut conn, id)
            .await?
            .ok_or_else(|| not_found("notification", id))?;
        match visible_recipients(caller) {
            Some(keys) if !n.deliveries.iter().any(|d| keys.contains(&d.recipient)) => {
                Err(not_found("notification", id))
            }
            _ => Ok(n),
        }
    }

    /// Notifications, newest first.
    pub async fn list(
        &self,
        filter: Option<&pb::NotificationFilter>,
        page: Option<&PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListNotificationsResponse> {
        let f = filter.cloned().unwrap_or_default();
        let mut query = NotificationQuery {
            recipients: (!f.recipient.is_empty()).then(|| vec![f.recipient.clone()]),
            kind: (!f.kind.is_empty()).then(|| f.kind.clone()),
            customer_id: (!f.customer_id.is_empty()).then(|| f.customer_id.clone()),
        };
        if let Some(keys) = visible_recipients(caller) {
            query.recipients = Some(match query.recipients {
                Some(asked) => asked.into_iter().filter(|r| keys.contains(r)).collect(),
                None => keys,
            });
        }
        let filter_key = format!("{}|{}|{}", f.recipient, f.kind, f.customer_id);
        let page = self.pager.read::<Uuid>(page, &filter_key)?;
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            store::list_notifications(&mut conn, &query, page.after, page.limit()).await?;
        let next = self.pager.finish(&page, &mut rows, &filter_key, |n| {
            Uuid::parse_str(&n.id).unwrap_or_default()
        });
        Ok(pb::ListNotificationsResponse {
            notifications: rows,
            page: Some(next),
        })
    }

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
        let mut tx = self.pool.begin().await?;
        let own = store::own_inbox_items(&mut tx, &keys, ids).await?;
        if let Some(other) = ids.iter().find(|id| !own.contains(id)) {
            return Err(not_found("inbox item", other));
        }
        let marked = store::mark_read(&mut tx, ids, self.clock.now()).await?;
        tx.commit().await?;
        Ok(marked)
    }

    /// Saves a template, checking the version when one is given.
    pub async fn save_template(&self, t: TemplateInput, call: &Call) -> Result<pb::Template> {
        let mut tx = self.pool.begin().await?;
        let current = store::lock_template_version(&mut tx, &t.name, t.language).await?;
        if t.version != 0 && t.version != current {
            return Err(Error::StaleVersion {
                kind: "template",
                id: format!("{}/{}", t.name, t.language.as_str()),
                given: t.version,
                current,
            });
        }
        let now = self.clock.now();
        let saved =
            store::save_template(&mut tx, &t, current + 1, now, &call.principal.subject).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &format!("templates/{}/{}", t.name, t.language.as_str()),
            &["kind", "subject", "body", "variables"],
        )
        .await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// One template.
    pub async fn template(&self, name: &str, language: &str) -> Result<pb::Template> {
        let mut conn = self.pool.acquire().await?;
        store::get_template(&mut conn, name, language)
            .await?
            .ok_or_else(|| not_found("template", format!("{name}/{language}")))
    }

    /// Templates by name and language.
    pub async fn templates(&self, page: Option<&PageRequest>) -> Result<pb::ListTemplatesResponse> {
        let page = self.pager.read::<NameKey>(page, "templates")?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::list_templates(
            &mut conn,
            page.after.as_ref().map(|k| (k.0.clone(), k.1.clone())),
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut rows, "templates", |t| {
            NameKey(t.name.clone(), t.language.clone())
        });
        Ok(pb::ListTemplatesResponse {
            templates: rows,
            page: Some(next),
        })
    }

    /// Opts an address out of a channel, or back in; audited.
    pub async fn set_opt_out(&self, o: OptOutInput, call: &Call) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let now = self.clock.now();
        let changed = store::set_opt_out(&mut tx, &o, now, &call.principal.subject).await?;
        if changed {
            audit::record(
                &mut tx,
                call,
                now,
                &format!(
                    "opt_outs/{}/{}",
                    o.channel.as_str(),
                    domain::mask(&o.address)
                ),
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

    /// Sets a partner's webhook; audited (without the secret).
    pub async fn set_endpoint(&self, e: EndpointInput, call: &Call) -> Result<()> {
        let mut tx = self.pool.begin().await?;
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
