//! The communication log (C-6): calls, visits and messages with the customer, the next contact
//! date they set, and the customers whose next contact is overdue.

pub mod rules;
mod store;

pub use rules::CommunicationInput;

use crm_kit::{Error, Result, audit, auth::Principal, context::Call, idempotency::RequestKey};
use crm_proto::customers::v1 as pb;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::service::{Customers, lock_visible, scope};

impl Customers {
    /// Records a communication.
    pub async fn create_communication(
        &self,
        key: RequestKey,
        input: CommunicationInput,
        call: &Call,
    ) -> Result<pb::CreateCommunicationResponse> {
        let caller = &call.principal;
        let actor = caller.subject.as_str();
        let scope = scope(caller);
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let id = input.customer_id;
        lock_visible(&mut tx, id, &scope).await?;
        let now = self.clock.now();
        let occur_time = input.occur_time.unwrap_or(now);
        let communication =
            store::insert_communication(&mut tx, Uuid::now_v7(), &input, occur_time, actor, now)
                .await?;
        let response = pb::CreateCommunicationResponse {
            communication: Some(communication),
        };
        audit::record(
            &mut tx,
            call,
            now,
            &format!(
                "customers/{id}/communications/{}",
                response
                    .communication
                    .as_ref()
                    .map_or("", |c| c.id.as_str())
            ),
            &["next_contact_date"],
        )
        .await?;
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// A customer's communications, newest first.
    pub async fn list_communications(
        &self,
        customer: Uuid,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListCommunicationsResponse> {
        let filter = customer.to_string();
        let page = self.pager.read::<(i64, Uuid)>(page, &filter)?;
        let mut conn = self.pool.acquire().await?;
        self.check_visible(&mut conn, customer, caller).await?;
        let after = page
            .after
            .map(|(micros, id)| {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
                    .map(|t| (t, id))
                    .map_err(|_| Error::invalid("page.page_token", "is not a valid token"))
            })
            .transpose()?;
        let mut items =
            store::list_communications(&mut conn, customer, after, page.limit()).await?;
        let page = self.pager.finish(&page, &mut items, &filter, |c| {
            let t = c
                .occur_time
                .as_ref()
                .map_or(0, |t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1000);
            (t, c.id.parse::<Uuid>().unwrap_or_default())
        });
        Ok(pb::ListCommunicationsResponse {
            communications: items,
            page: Some(page),
        })
    }

    /// Customers of `owner` whose next contact date has passed (C-6).
    pub async fn list_overdue(
        &self,
        owner: &str,
        page: Option<&crm_proto::common::v1::PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListOverdueContactsResponse> {
        let scope = scope(caller);
        let today = self.clock.today();
        let filter = format!("{owner}/{today}");
        let page = self.pager.read::<(String, Uuid)>(page, &filter)?;
        let after = page
            .after
            .as_ref()
            .map(|(d, id)| {
                Date::parse(d, &time::format_description::well_known::Iso8601::DATE)
                    .map(|d| (d, *id))
                    .map_err(|_| Error::invalid("page.page_token", "is not a valid token"))
            })
            .transpose()?;
        let mut conn = self.pool.acquire().await?;
        let mut customers =
            store::list_overdue(&mut conn, owner, &scope, today, after, page.limit()).await?;
        let page = self.pager.finish(&page, &mut customers, &filter, |c| {
            let d = c
                .next_contact_date
                .as_ref()
                .and_then(|d| crm_kit::convert::from_date(d).ok())
                .unwrap_or(today);
            (d.to_string(), c.id.parse::<Uuid>().unwrap_or_default())
        });
        Ok(pb::ListOverdueContactsResponse {
            customers,
            page: Some(page),
        })
    }
}
