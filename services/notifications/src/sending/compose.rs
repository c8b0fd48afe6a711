//! Making a message: one notification, then per recipient the language, the rendered
//! template and a delivery per channel — pending, written to the inbox at once, suppressed
//! (opted out, no address) or failed (no template) — all in the caller's transaction.

use std::collections::BTreeMap;

use crm_kit::Result;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    opt_outs::is_opted_out,
    partners::get_endpoint,
    rules::{Channel, Language, Recipient, normalise_address},
    sending::store::{
        NewDelivery, NewNotification, insert_delivery, insert_inbox_item, insert_notification,
    },
    store::{self, state},
    templates::{find_template, rules::render},
};

/// A message to make.
#[derive(Debug, Clone)]
pub struct Draft {
    /// Kind (event type or `manual`).
    pub kind: String,
    /// Template name.
    pub template: String,
    /// Triggering event, or empty.
    pub event_id: String,
    /// Customer, or empty.
    pub customer_id: String,
    /// Urgent.
    pub urgent: bool,
    /// The urgent deadline.
    pub deadline: Option<OffsetDateTime>,
    /// Variables shared by every recipient (`recipient_name` is added per recipient).
    pub variables: BTreeMap<String, String>,
    /// Who gets it.
    pub recipients: Vec<Recipient>,
    /// Over which channels.
    pub channels: Vec<Channel>,
}

/// What making a message produced.
#[derive(Debug, Clone, Copy)]
pub struct Made {
    /// The notification, or `None` when it had been made before (same event and template).
    pub id: Option<Uuid>,
    /// Whether a delivery waits for a sender.
    pub pending: bool,
}

/// How one recipient is reached.
struct Profile {
    name: String,
    language: Language,
    phone: String,
    email: String,
    webhook: String,
    inbox: bool,
    why_not: &'static str,
}

async fn profile(
    conn: &mut PgConnection,
    recipient: &Recipient,
    default: Language,
) -> Result<Profile> {
    let none = |why_not| Profile {
        name: String::new(),
        language: default,
        phone: String::new(),
        email: String::new(),
        webhook: String::new(),
        inbox: false,
        why_not,
    };
    Ok(match recipient {
        Recipient::User(id) => match store::get_user(conn, id).await? {
            Some(u) => Profile {
                name: u.display_name,
                language: Language::parse(&u.language).unwrap_or(default),
                phone: u.phone,
                email: u.email,
                webhook: String::new(),
                inbox: true,
                why_not: "the user has no address for this channel",
            },
            // not announced by the gateway (yet): the inbox works by id alone
            None => Profile {
                name: id.clone(),
                inbox: true,
                ..none("the user is not in the directory")
            },
        },
        Recipient::PartnerOrg(id) => {
            let endpoint = get_endpoint(conn, id).await?;
            Profile {
                name: id.clone(),
                language: endpoint
                    .as_ref()
                    .and_then(|e| Language::parse(&e.language).ok())
                    .unwrap_or(default),
                webhook: endpoint.map(|e| e.url).unwrap_or_default(),
                inbox: true,
                ..none("a partner organisation is reached by inbox and webhook")
            }
        }
        Recipient::Contact(c) => Profile {
            name: c.name.clone(),
            language: c.language.unwrap_or(default),
            phone: c.phone.clone(),
            email: c.email.clone(),
            ..none("an outside contact is reached by SMS and e-mail")
        },
    })
}

/// Makes the message of `draft` in `tx`.
pub async fn make(
    tx: &mut PgConnection,
    draft: &Draft,
    default_language: Language,
    now: OffsetDateTime,
) -> Result<Made> {
    let id = insert_notification(
        tx,
        &NewNotification {
            kind: &draft.kind,
            template: &draft.template,
            event_id: &draft.event_id,
            customer_id: &draft.customer_id,
            urgent: draft.urgent,
            deadline: draft.deadline,
        },
        now,
    )
    .await?;
    let Some(id) = id else {
        return Ok(Made {
            id: None,
            pending: false,
        });
    };
    let mut pending = false;
    for recipient in &draft.recipients {
        let key = recipient.key();
        let p = profile(tx, recipient, default_language).await?;
        let mut variables = draft.variables.clone();
        variables.insert("recipient_name".into(), p.name.clone());
        let rendered = match find_template(tx, &draft.template, p.language).await? {
            None => Err(format!(
                "no template {:?} in zh or en; save one with SaveTemplate",
                draft.template
            )),
            Some(t) => render(&t.subject, &t.body, &variables)
                .map(|(s, b)| (s, b, Language::parse(&t.language).unwrap_or(p.language))),
        };
        for &channel in &draft.channels {
            let address = match channel {
                Channel::Sms => p.phone.clone(),
                Channel::Email => p.email.clone(),
                Channel::Webhook => p.webhook.clone(),
                Channel::Inbox if p.inbox => key.clone(),
                Channel::Inbox => String::new(),
            };
            let (subject, body, language, start, note) = match &rendered {
                Err(e) => (
                    String::new(),
                    String::new(),
                    p.language,
                    state::FAILED,
                    e.clone(),
                ),
                Ok((s, b, l)) => {
                    let (state, note) = if address.is_empty() {
                        (state::SUPPRESSED, p.why_not.to_string())
                    } else if matches!(channel, Channel::Sms | Channel::Email)
                        && is_opted_out(tx, channel, &normalise_address(channel, &address)).await?
                    {
                        (state::SUPPRESSED, "opted out".to_string())
                    } else if channel == Channel::Inbox {
                        (state::SENT, String::new())
                    } else {
                        (state::PENDING, String::new())
                    };
                    (s.clone(), b.clone(), *l, state, note)
                }
            };
            let delivery = NewDelivery {
                recipient: key.clone(),
                channel,
                address,
                language,
                subject,
                body,
                state: start,
                note,
            };
            let inserted =
                insert_delivery(tx, id, &delivery, draft.urgent, draft.deadline, now).await?;
            if inserted.is_none() {
                continue; // the same recipient twice (e.g. owner and actor): one delivery
            }
            if start == state::SENT {
                insert_inbox_item(
                    tx,
                    &key,
                    id,
                    &delivery.subject,
                    &delivery.body,
                    draft.urgent,
                    now,
                )
                .await?;
            }
            pending |= start == state::PENDING;
        }
    }
    Ok(Made {
        id: Some(id),
        pending,
    })
}
