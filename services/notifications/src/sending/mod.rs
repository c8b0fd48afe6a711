//! Sending (N-2): a manual message from a "manual" template, made into one delivery per
//! recipient and channel ([`compose`]); reading notifications with their deliveries, each
//! caller only those addressed to them unless they see all.

pub mod compose;
pub mod rules;
mod store;

use crm_kit::{Error, Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::{common::v1::PageRequest, notifications::v1 as pb};
use uuid::Uuid;

pub use store::{NewDelivery, NewNotification};

use crate::{
    rules::MANUAL,
    sending::{compose::Draft, rules::SendInput, store::NotificationQuery},
    service::{Notifications, not_found, visible_recipients},
};

impl Notifications {
    /// Sends a manual message.
    pub async fn send(
        &self,
        key: RequestKey,
        input: SendInput,
        call: &Call,
    ) -> Result<pb::SendNotificationResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let language = self.settings.default_language();
        let template = crate::templates::find_template(&mut tx, &input.template, language)
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
}
