//! Scheduled care (N-5) as recurring jobs of the kit scheduler, each run once per period
//! across replicas: the fortnightly care message (温馨速递) of customers in a care stage, and
//! one reminder to the owner for each overdue next contact (C-6). Both only publish events in
//! the run's transaction; the notifications service turns them into messages by its rules.

use std::{sync::Arc, time::Duration};

use crm_kit::{
    Error,
    context::Call,
    events::{self, NewEvent},
    schedule::{Job, Task},
    service_policy::ServicePolicies,
};
use serde::Deserialize;
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

mod store;

use crate::service;

/// The `[customers]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct CareSettings {
    /// Stages whose customers get care messages (protobuf names, e.g. `STAGE_SIGNED`).
    pub care_stages: Vec<String>,
    /// Days between a customer's care messages.
    pub care_every_days: i64,
    /// How often the jobs look.
    pub scan_every_s: u64,
    /// Customers one run takes.
    pub batch: i64,
    /// Days between two reminders of the same customer's lagging service plan (C-8).
    pub service_remind_every_days: i64,
    /// Seconds without progress after which a PROCESSING import counts as interrupted (C-2).
    pub import_stale_s: i64,
}

impl CareSettings {
    /// The section from the loaded configuration, checked.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        let s: Self = settings.section("customers")?;
        for stage in &s.care_stages {
            if crm_proto::customers::v1::Stage::from_str_name(stage).is_none() {
                anyhow::bail!("customers.care_stages: no stage {stage:?}");
            }
        }
        if s.care_every_days < 1 || s.batch < 1 {
            anyhow::bail!("customers.care_every_days and customers.batch must be at least 1");
        }
        Ok(s)
    }

    /// The jobs; the service-plan check applies `policies` (C-8).
    pub fn jobs(&self, policies: ServicePolicies) -> Vec<Job> {
        let every = Duration::from_secs(self.scan_every_s.max(1));
        vec![
            Job {
                name: "customers.care_due",
                every,
                task: Arc::new(CareDue(self.clone())),
            },
            Job {
                name: "customers.next_contact_overdue",
                every,
                task: Arc::new(ContactOverdue(self.clone())),
            },
            Job {
                name: "customers.imports_interrupted",
                every: Duration::from_secs(60),
                task: Arc::new(ImportsInterrupted(self.clone())),
            },
            Job {
                name: "customers.service_overdue",
                every,
                task: Arc::new(ServiceOverdue {
                    settings: self.clone(),
                    policies,
                }),
            },
        ]
    }
}

/// Publishes `event_type` for each of `ids` with the customer as it is.
async fn publish_each(
    tx: &mut PgConnection,
    ids: &[Uuid],
    event_type: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    let call = Call::system("scheduler", event_type);
    for id in ids {
        let Some(customer) = crate::store::get_customer(tx, *id, false).await? else {
            continue;
        };
        let aggregate = format!("customers/{id}");
        events::publish(
            tx,
            &call,
            now,
            NewEvent {
                topic: service::TOPIC,
                event_type,
                aggregate: &aggregate,
                payload: service::customer_event(&customer, None, None),
                urgent: false,
            },
        )
        .await?;
    }
    Ok(())
}

struct CareDue(CareSettings);

#[tonic::async_trait]
impl Task for CareDue {
    async fn run(&self, tx: &mut PgConnection, now: OffsetDateTime) -> Result<bool, Error> {
        let today = now.date();
        let ids = store::lock_due_for_care(tx, &self.0.care_stages, today, self.0.batch).await?;
        publish_each(tx, &ids, service::CARE_DUE, now).await?;
        store::set_next_care(
            tx,
            &ids,
            today + time::Duration::days(self.0.care_every_days),
        )
        .await?;
        Ok(ids.len() as i64 == self.0.batch)
    }
}

struct ContactOverdue(CareSettings);

#[tonic::async_trait]
impl Task for ContactOverdue {
    async fn run(&self, tx: &mut PgConnection, now: OffsetDateTime) -> Result<bool, Error> {
        let ids = store::lock_unreminded_overdue(tx, now.date(), self.0.batch).await?;
        publish_each(tx, &ids, service::NEXT_CONTACT_OVERDUE, now).await?;
        store::mark_contact_reminded(tx, &ids).await?;
        Ok(ids.len() as i64 == self.0.batch)
    }
}

/// Checks each signed customer's service plan once a day (C-8): when its visits fall behind
/// the quota or its service report is overdue, the owner is reminded
/// (`customers.service_overdue`), at most every `service_remind_every_days`.
struct ServiceOverdue {
    settings: CareSettings,
    policies: ServicePolicies,
}

#[tonic::async_trait]
impl Task for ServiceOverdue {
    async fn run(&self, tx: &mut PgConnection, now: OffsetDateTime) -> Result<bool, Error> {
        let today = now.date();
        let due = store::lock_service_unchecked(tx, today, self.settings.batch).await?;
        let mut checked = Vec::with_capacity(due.len());
        let mut remind = Vec::new();
        for (id, reminded_on) in &due {
            checked.push(*id);
            let Some(c) = crate::store::get_customer(tx, *id, false).await? else {
                continue;
            };
            let since = c
                .created
                .as_ref()
                .and_then(|s| s.time.as_ref())
                .and_then(|t| crm_kit::convert::from_timestamp(t).ok())
                .map_or(today, |t| t.date());
            let (visits, last_report) =
                crate::visits::service_progress(tx, *id, now - time::Duration::days(365)).await?;
            let policy = self.policies.of(crate::tiers::rules::tier_key(c.tier()));
            let status = crate::visits::rules::service_status(
                &c,
                String::new(),
                policy,
                since,
                today,
                visits,
                last_report,
            );
            let quiet = reminded_on.is_some_and(|d| {
                today - d < time::Duration::days(self.settings.service_remind_every_days)
            });
            let lagging = !(status.visits_on_track && status.reports_on_track);
            if lagging && !quiet {
                remind.push(*id);
            }
        }
        publish_each(tx, &remind, service::SERVICE_OVERDUE, now).await?;
        store::mark_service_checked(tx, &checked, &remind, today).await?;
        Ok(due.len() as i64 == self.settings.batch)
    }
}

/// Marks FAILED the imports whose process died mid-way (no progress for `import_stale_s`): their
/// rows so far are imported and in the report, and running the file again completes them.
struct ImportsInterrupted(CareSettings);

#[tonic::async_trait]
impl Task for ImportsInterrupted {
    async fn run(&self, tx: &mut PgConnection, now: OffsetDateTime) -> Result<bool, Error> {
        let failed =
            crate::import::fail_stale(tx, now - time::Duration::seconds(self.0.import_stale_s))
                .await?;
        if failed > 0 {
            tracing::warn!(imports = failed, "interrupted imports marked failed");
        }
        Ok(false)
    }
}
