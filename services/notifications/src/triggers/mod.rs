//! Triggers (N-3): the consumer of the other services' events. Gateway user events keep the
//! directory of who can be reached how; every other event is matched against the configured
//! rules and each matching rule makes one message, in the transaction that records the event
//! processed — so an event delivered twice makes its messages once.

use std::sync::Arc;

use crm_kit::{
    Clock, Error, Role, convert,
    events::{Handler, decode},
};
use crm_proto::{
    complaints::v1 as complaints, customers::v1 as customers, events::v1::Event,
    gateway::v1 as gateway, repairs::v1 as repairs, tickets::v1 as tickets,
};
use sqlx::PgConnection;
use tokio::sync::Notify;

mod sales_and_complaints;
mod variables;

use sales_and_complaints::{complaint_variables, pipeline_variables};
use variables::*;

use crate::{
    rules::{Contact, Language, Recipient, Selector},
    sending::compose::{self, Draft},
    settings::{NotificationSettings, Rule},
    store,
};

/// The topics the service consumes: the gateway's first, so the users a batch of events
/// refers to are in the directory before those events are turned into messages.
pub const TOPICS: &[&str] = &[
    "gateway",
    "customers",
    "tickets",
    "repairs",
    "complaints",
    "pipeline",
];

/// The event the gateway publishes when a user is created or changed.
pub const USER_CHANGED: &str = "gateway.user_changed";

/// The event consumer.
pub struct Triggers {
    clock: Clock,
    rules: Vec<Rule>,
    settings: Arc<NotificationSettings>,
    wake: Arc<Notify>,
}

impl Triggers {
    /// A consumer applying `rules`.
    pub fn new(
        clock: Clock,
        rules: Vec<Rule>,
        settings: Arc<NotificationSettings>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            clock,
            rules,
            settings,
            wake,
        }
    }
}

/// Whom an event is about: the customer (with the contacts to write to), the contacts' own
/// language if known, and the engineer a ticket is assigned to.
struct Subject {
    customer: customers::Customer,
    contact_language: Option<Language>,
    assignee: String,
    /// A repairs event's centre: its partner organisation (empty for HQ and branches).
    centre: Option<repairs::Centre>,
    /// Who requested what the event is about (a return/exchange request), if anyone.
    requester: String,
    /// The staff member a complaint is about, if any.
    staff: String,
    /// The roles a complaint was routed to, if any.
    routed_roles: Vec<String>,
}

impl Subject {
    fn of(customer: customers::Customer) -> Self {
        Self {
            customer,
            contact_language: None,
            assignee: String::new(),
            centre: None,
            requester: String::new(),
            staff: String::new(),
            routed_roles: Vec::new(),
        }
    }
}

impl Triggers {
    /// A young event whose owner or partner is not in the directory yet (the gateway's event
    /// announcing them has not been handled) fails, so it is delivered again later instead of
    /// reaching fewer people; after `directory_wait_s` it goes ahead with whom it knows.
    async fn wait_for_directory(
        &self,
        tx: &mut PgConnection,
        customer: &customers::Customer,
        time: time::OffsetDateTime,
    ) -> Result<(), Error> {
        let young =
            self.clock.now() - time < time::Duration::seconds(self.settings.directory_wait_s);
        if !young {
            return Ok(());
        }
        for id in [&customer.owner_id, &customer.tech_partner_id] {
            if !id.is_empty() && store::get_user(tx, id).await?.is_none() {
                return Err(Error::Internal(anyhow::anyhow!(
                    "user {id} is not in the directory yet; the event will be handled again"
                )));
            }
        }
        Ok(())
    }

    async fn recipients(
        &self,
        tx: &mut PgConnection,
        rule: &Rule,
        event: &Event,
        subject: &Subject,
    ) -> Result<Vec<Recipient>, Error> {
        let customer = &subject.customer;
        let mut out = Vec::new();
        let user = |id: &str, out: &mut Vec<Recipient>| {
            if !id.is_empty() {
                out.push(Recipient::User(id.to_string()));
            }
        };
        for selector in &rule.to {
            match selector {
                Selector::Owner => user(&customer.owner_id, &mut out),
                Selector::Partner => user(&customer.tech_partner_id, &mut out),
                Selector::Actor => user(&event.actor, &mut out),
                Selector::Assignee => user(&subject.assignee, &mut out),
                Selector::Requester => user(&subject.requester, &mut out),
                Selector::User(id) => user(id, &mut out),
                Selector::PartnerOrg(id) => out.push(Recipient::PartnerOrg(id.clone())),
                Selector::Centre => match &subject.centre {
                    Some(c) if !c.partner_id.is_empty() => {
                        out.push(Recipient::PartnerOrg(c.partner_id.clone()));
                    }
                    Some(c) => {
                        for id in store::users_with_role(tx, Role::Coordinator.as_str(), &c.region)
                            .await?
                        {
                            out.push(Recipient::User(id));
                        }
                    }
                    None => {}
                },
                Selector::Staff => user(&subject.staff, &mut out),
                Selector::StaffSupervisors => {
                    if let Some(staff) = store::get_user_region(tx, &subject.staff).await? {
                        for id in
                            store::users_with_role(tx, Role::Supervisor.as_str(), &staff).await?
                        {
                            out.push(Recipient::User(id));
                        }
                    }
                }
                Selector::RoutedRoles => {
                    for role in &subject.routed_roles {
                        for id in store::users_with_role_anywhere(tx, role).await? {
                            out.push(Recipient::User(id));
                        }
                    }
                }
                Selector::CentreSupervisor => match &subject.centre {
                    Some(c) if !c.supervisor_id.is_empty() => user(&c.supervisor_id, &mut out),
                    Some(c) => {
                        for id in
                            store::users_with_role(tx, Role::Supervisor.as_str(), &c.region).await?
                        {
                            out.push(Recipient::User(id));
                        }
                    }
                    None => {}
                },
                Selector::Role(role) => {
                    for id in store::users_with_role(tx, role, &customer.region).await? {
                        out.push(Recipient::User(id));
                    }
                }
                Selector::Contacts => {
                    let language = subject
                        .contact_language
                        .unwrap_or_else(|| self.settings.language_of_region(&customer.region));
                    for c in &customer.contacts {
                        if c.phone.is_empty() && c.email.is_empty() {
                            continue;
                        }
                        out.push(Recipient::Contact(Contact {
                            name: c.name.clone(),
                            phone: c.phone.clone(),
                            email: c.email.clone(),
                            language: Some(language),
                        }));
                    }
                }
            }
        }
        Ok(out)
    }

    async fn on_event(&self, tx: &mut PgConnection, event: &Event) -> Result<bool, Error> {
        let rules: Vec<&Rule> = self
            .rules
            .iter()
            .filter(|r| r.event == event.r#type)
            .collect();
        if rules.is_empty() {
            return Ok(false);
        }
        // the customer the recipients are chosen for, and the template's variables
        let (subject, variables) = if event.r#type.starts_with("repairs.") {
            let (centre, requester, variables) =
                repair_variables(event, self.settings.utc_offset()?)?;
            let subject = Subject {
                centre: Some(centre),
                requester,
                ..Subject::of(customers::Customer::default())
            };
            (subject, variables)
        } else if event.r#type.starts_with("tickets.") {
            let ticket: tickets::Ticket = decode(event)?;
            // the ticket's contact is the customer's person for this case
            let customer = customers::Customer {
                id: ticket.customer_id.clone(),
                region: ticket.region.clone(),
                contacts: vec![customers::Contact {
                    name: ticket.contact_name.clone(),
                    phone: ticket.contact_phone.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let mut variables = ticket_variables(&ticket, self.settings.utc_offset()?);
            variables.insert(
                "engineer_name".into(),
                name_of(tx, &ticket.assignee_id).await?,
            );
            let subject = Subject {
                customer,
                // the contact's own language, else their region's
                contact_language: Language::parse(&ticket.contact_language).ok(),
                assignee: ticket.assignee_id,
                ..Subject::of(customers::Customer::default())
            };
            (subject, variables)
        } else if event.r#type.starts_with("complaints.") {
            let data: complaints::ComplaintEvent = decode(event)?;
            let c = data.complaint.clone().unwrap_or_default();
            // the person who complained is the customer's person for this case
            let customer = customers::Customer {
                id: c.customer_id.clone(),
                contacts: vec![customers::Contact {
                    name: c.contact_name.clone(),
                    phone: c.contact_phone.clone(),
                    email: c.contact_email.clone(),
                    ..Default::default()
                }],
                ..Default::default()
            };
            let subject = Subject {
                contact_language: Language::parse(&c.contact_language).ok(),
                staff: c.staff_id.clone(),
                routed_roles: data.routed_roles.clone(),
                ..Subject::of(customer)
            };
            (
                subject,
                complaint_variables(&data, self.settings.utc_offset()?),
            )
        } else if event.r#type.starts_with("pipeline.") {
            // the sale's owner and region stand for the customer's; the requester of a discount
            let (owner, region, requester, variables) = pipeline_variables(tx, event).await?;
            let customer = customers::Customer {
                owner_id: owner,
                region,
                ..Default::default()
            };
            let subject = Subject {
                requester,
                ..Subject::of(customer)
            };
            (subject, variables)
        } else if event.r#type == IMPORT_DONE {
            let data: customers::ImportEvent = decode(event)?;
            let customer = customers::Customer {
                region: data.region.clone(),
                ..Default::default()
            };
            (Subject::of(customer), import_variables(&data))
        } else {
            let payload: customers::CustomerEvent = decode(event)?;
            let customer = payload.customer.clone().unwrap_or_default();
            self.wait_for_directory(tx, &customer, event_time(event, &self.clock))
                .await?;
            let variables = customer_variables(tx, event, &payload).await?;
            (Subject::of(customer), variables)
        };
        let customer = &subject.customer;
        let time = event
            .time
            .as_ref()
            .and_then(|t| convert::from_timestamp(t).ok())
            .unwrap_or_else(|| self.clock.now());
        let mut pending = false;
        for rule in rules {
            let urgent = rule.urgent || event.urgent;
            let draft = Draft {
                kind: event.r#type.clone(),
                template: rule.template.clone(),
                event_id: event.id.clone(),
                customer_id: customer.id.clone(),
                urgent,
                deadline: urgent
                    .then(|| time + time::Duration::seconds(self.settings.urgent_deadline_s)),
                variables: variables.clone(),
                recipients: self.recipients(tx, rule, event, &subject).await?,
                channels: rule.channels.clone(),
            };
            let made = compose::make(
                tx,
                &draft,
                self.settings.default_language(),
                self.clock.now(),
            )
            .await?;
            pending |= made.pending;
        }
        Ok(pending)
    }
}

#[tonic::async_trait]
impl Handler for Triggers {
    async fn handle(&self, tx: &mut PgConnection, event: &Event) -> Result<(), Error> {
        if event.r#type == USER_CHANGED {
            let user: gateway::User = decode(event)?;
            return store::upsert_user(tx, &user, self.clock.now()).await;
        }
        let pending = self.on_event(tx, event).await?;
        if pending {
            // the sender looks again now; what this transaction wrote is visible to it once
            // committed, at the latest on its next poll
            self.wake.notify_one();
        }
        Ok(())
    }
}
