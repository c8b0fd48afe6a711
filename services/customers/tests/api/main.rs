//! The customers service through a real gRPC channel against the real Postgres, each test with
//! a database of its own (crm_kit::testing), one module per capability.

use crm_kit::{
    CancellationToken, Clock, Settings,
    auth::Security,
    testing::{self, Bearer, TestCaller},
};
use crm_proto::{
    common::v1::{Date, PageRequest},
    customers::v1::{self as pb, customer_service_client::CustomerServiceClient},
};
use prost_types::FieldMask;
use sqlx::PgPool;
use time::macros::datetime;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

mod access;
mod assignment;
mod care;
mod communications;
mod events;
mod import;
mod partners;
mod records;
mod search;
mod stages;
mod tiers;
mod visits;

type Client = CustomerServiceClient<InterceptedService<Channel, Bearer>>;

struct App {
    client: Client,
    channel: Channel,
    settings: Settings,
    pool: PgPool,
    /// The gateway's outbox, to announce users as the gateway does.
    gateway: PgPool,
    clock: Clock,
    _stop: testing::StopOnDrop,
}

async fn spawn_app() -> App {
    spawn_app_with(&[]).await
}

/// The service with some settings of the test's own.
async fn spawn_app_with(settings: &[(&'static str, String)]) -> App {
    let env = testing::test_env_with(settings).await;
    crm_customers::migrate(&env.settings)
        .await
        .expect("migrate");
    let clock = Clock::manual(datetime!(2026-03-02 09:00 UTC));
    let stop = CancellationToken::new();
    let gateway = testing::upstream(&env.settings, "gateway", &stop).await;
    let security =
        Security::start(&env.settings.auth, &env.settings.redis, stop.clone()).expect("security");
    let app = crm_customers::Application::build(&env.settings, clock.clone(), security)
        .await
        .expect("build");
    let pool = app.customers().pool().clone();
    let channel = testing::serve(app, &stop).await;
    let admin = testing::admin_token(&env.settings);
    App {
        client: CustomerServiceClient::with_interceptor(channel.clone(), Bearer::new(&admin)),
        channel,
        settings: env.settings,
        pool,
        gateway,
        clock,
        _stop: testing::StopOnDrop(stop),
    }
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn sample(name: &str) -> pb::Customer {
    pb::Customer {
        display_name: name.into(),
        industry: "electronics".into(),
        region: "华东".into(),
        address: "上海市浦东新区张江路 88 号".into(),
        source_channel: pb::SourceChannel::Exhibition.into(),
        contacts: vec![pb::Contact {
            name: "王晓明".into(),
            phone: "+86 138-0013-8000".into(),
            email: "wangxm@example.cn".into(),
            role: "IT manager".into(),
        }],
        tags: vec!["制造".into()],
        owner_id: "rep.zhang".into(),
        // an annual service fee above 5,000 CNY: core (C-7)
        annual_service_fee_cny: 6000,
        credit_rating: pb::CreditRating::B.into(),
        ..Default::default()
    }
}

impl App {
    /// A client acting as `subject` with `roles` (and `region` for sales reps).
    fn as_caller(&self, subject: &str, roles: &[&str], region: &str) -> Client {
        CustomerServiceClient::with_interceptor(
            self.channel.clone(),
            testing::bearer_as(
                &self.settings,
                &TestCaller {
                    subject,
                    roles,
                    region,
                    partner: "",
                },
            ),
        )
    }

    async fn create(&mut self, c: pb::Customer) -> pb::Customer {
        self.client
            .create_customer(pb::CreateCustomerRequest {
                request_id: rid(),
                customer: Some(c),
            })
            .await
            .expect("create")
            .into_inner()
            .customer
            .unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn list(&mut self, filter: pb::CustomerFilter) -> Vec<String> {
        let r = self
            .client
            .list_customers(pb::ListCustomersRequest {
                filter: Some(filter),
                page: None,
            })
            .await
            .expect("list")
            .into_inner();
        r.customers.into_iter().map(|c| c.display_name).collect()
    }
}

fn violations(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .expect("bad request details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .expect("error info")
        .reason
        .clone()
}

async fn change_stage(
    app: &mut App,
    id: &str,
    stage: pb::Stage,
) -> Result<pb::ChangeCustomerStageResponse, Status> {
    app.client
        .change_customer_stage(pb::ChangeCustomerStageRequest {
            request_id: rid(),
            customer_id: id.into(),
            stage: stage.into(),
            reason: format!("moved to {}", stage.as_str_name()),
            version: 0,
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn request_partner(
    app: &mut App,
    id: &str,
    partner: &str,
) -> Result<pb::PartnerChange, Status> {
    app.client
        .request_partner_change(pb::RequestPartnerChangeRequest {
            request_id: rid(),
            customer_id: id.into(),
            proposed_partner_id: partner.into(),
            reason: "needs database expertise".into(),
        })
        .await
        .map(|r| r.into_inner().change.unwrap())
}

fn date(d: time::Date) -> Date {
    crm_kit::convert::date(d)
}

/// The types and customer ids of the events in the outbox, in commit order.
async fn published(pool: &PgPool) -> Vec<(String, String)> {
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap();
    envelopes
        .iter()
        .map(|e| {
            let event =
                <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap();
            let data: pb::CustomerEvent =
                prost::Message::decode(event.payload.unwrap().value.as_slice()).unwrap();
            (event.r#type, data.customer.unwrap().id)
        })
        .collect()
}

async fn job_runs(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(sum(runs), 0)::bigint FROM scheduled_jobs")
        .fetch_one(pool)
        .await
        .unwrap()
}

impl App {
    /// Updates `fields` of `c` (at its version) to the values in `patch`.
    async fn update_fields(
        &mut self,
        c: &pb::Customer,
        patch: pb::Customer,
        fields: &[&str],
    ) -> Result<pb::Customer, tonic::Status> {
        self.client
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    id: c.id.clone(),
                    version: c.version,
                    ..patch
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: fields.iter().map(|f| f.to_string()).collect(),
                }),
            })
            .await
            .map(|r| r.into_inner().customer.unwrap())
    }

    async fn tier_changes(&mut self, id: &str) -> Vec<(pb::Tier, pb::Tier, bool, String)> {
        self.client
            .list_tier_changes(pb::ListTierChangesRequest {
                customer_id: id.into(),
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .changes
            .into_iter()
            .map(|c| (c.from_tier(), c.to_tier(), c.r#override, c.reason))
            .collect()
    }
}

impl App {
    /// Announces a user as the gateway does, and waits until the service has them.
    async fn announce_user(&self, id: &str, role: &str, region: &str) {
        let user = crm_proto::gateway::v1::User {
            id: id.into(),
            username: id.into(),
            roles: vec![role.into()],
            region: region.into(),
            ..Default::default()
        };
        testing::events::announce(
            &self.gateway,
            crm_kit::events::NewEvent {
                topic: "gateway",
                event_type: "gateway.user_changed",
                aggregate: &format!("users/{id}"),
                payload: crm_kit::events::Payload::of(&user),
                urgent: false,
            },
        )
        .await;
        let (pool, id, active) = (self.pool.clone(), id.to_string(), role == "sales_rep");
        testing::wait_until(
            "the user in the directory",
            std::time::Duration::from_secs(10),
            || {
                let (pool, id) = (pool.clone(), id.clone());
                async move {
                    sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM directory_members WHERE user_id = $1 AND role = 'sales_rep' AND active = $2)",
                )
                .bind(id)
                .bind(active)
                .fetch_one(&pool)
                .await
                .unwrap()
                }
            },
        )
        .await;
    }

    async fn owners(&mut self, ids: &[&pb::Customer]) -> Vec<String> {
        let mut out = Vec::new();
        for c in ids {
            let got = self
                .client
                .get_customer(pb::GetCustomerRequest { id: c.id.clone() })
                .await
                .unwrap()
                .into_inner()
                .customer
                .unwrap();
            out.push(got.owner_id);
        }
        out
    }
}

/// Uploads `bytes` as an import in chunks of `chunk` bytes with `client`.
async fn upload(
    mut client: Client,
    request_id: &str,
    bytes: &[u8],
    chunk: usize,
) -> Result<pb::Import, Status> {
    let mut messages = vec![pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Header(pb::ImportHeader {
            request_id: request_id.into(),
            file_name: "客户导入.csv".into(),
        })),
    }];
    for piece in bytes.chunks(chunk) {
        messages.push(pb::UploadImportRequest {
            part: Some(pb::upload_import_request::Part::Chunk(piece.to_vec())),
        });
    }
    client
        .upload_import(tokio_stream::iter(messages))
        .await
        .map(|r| r.into_inner().import.unwrap())
}

impl App {
    /// Uploads `bytes` as an import in chunks of `chunk` bytes.
    async fn upload(
        &self,
        request_id: &str,
        bytes: &[u8],
        chunk: usize,
    ) -> Result<pb::Import, Status> {
        upload(self.client.clone(), request_id, bytes, chunk).await
    }

    async fn import_rows(&mut self, id: &str) -> Vec<pb::ImportRow> {
        self.client
            .list_import_rows(pb::ListImportRowsRequest {
                import_id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .rows
    }
}
