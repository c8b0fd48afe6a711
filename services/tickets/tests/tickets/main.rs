//! The tickets service against the real Postgres and Redis, with a clock the tests move: intake
//! and the completeness rule, the lifecycle, SLA deadlines from the tier in business time,
//! hand-off warnings and breaches fired by the timers, pause and resume, queues.

use std::time::Duration;

use crm_kit::{
    CancellationToken, Clock, Settings,
    auth::Security,
    events::{NewEvent, Payload},
    testing::{self, Bearer, TestCaller},
};
use crm_proto::{
    customers::v1 as customers,
    tickets::v1::{
        self as pb, Deadline, TicketState, Transition, ticket_service_client::TicketServiceClient,
    },
};
use prost_types::FieldMask;
use sqlx::PgPool;
use time::{OffsetDateTime, macros::datetime};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

type Client = TicketServiceClient<InterceptedService<Channel, Bearer>>;

mod dispatch;
mod escalations;
mod intake;
mod lifecycle;
mod records;
mod scope;
mod sla;

struct App {
    client: Client,
    channel: Channel,
    settings: Settings,
    pool: PgPool,
    customers: PgPool,
    gateway: PgPool,
    clock: Clock,
    _stop: testing::StopOnDrop,
}

/// Monday 2026-11-23 09:00 in China.
const MONDAY_9: OffsetDateTime = datetime!(2026-11-23 01:00 UTC);

async fn spawn_app() -> App {
    let mut env = testing::test_env().await;
    env.settings.timers.poll_ms = 20;
    env.settings.events.consumer_block_ms = 100;
    crm_tickets::migrate(&env.settings).await.expect("migrate");
    let clock = Clock::manual(MONDAY_9);
    let stop = CancellationToken::new();
    let customers_pool = testing::upstream(&env.settings, "customers", &stop).await;
    let gateway_pool = testing::upstream(&env.settings, "gateway", &stop).await;
    let security =
        Security::start(&env.settings.auth, &env.settings.redis, stop.clone()).expect("security");
    let app = crm_tickets::Application::build(&env.settings, clock.clone(), security)
        .await
        .expect("build");
    let pool = app.tickets().pool().clone();
    let channel = testing::serve(app, &stop).await;
    let token = testing::token(
        &env.settings,
        &TestCaller {
            subject: "agent.test",
            roles: &["admin"],
            ..Default::default()
        },
        3600,
    );
    App {
        client: TicketServiceClient::with_interceptor(channel.clone(), Bearer::new(&token)),
        channel,
        settings: env.settings,
        pool,
        customers: customers_pool,
        gateway: gateway_pool,
        clock,
        _stop: testing::StopOnDrop(stop),
    }
}

fn intake(customer: &str) -> pb::Ticket {
    pb::Ticket {
        channel: pb::Channel::Hotline as i32,
        customer_id: customer.into(),
        region: "华东".into(),
        contact_name: "王晓明".into(),
        contact_phone: "+86 138 0013 8000".into(),
        product_model: "X200".into(),
        serial_number: "SN-0001".into(),
        symptom: "无法开机".into(),
        warranty: pb::Warranty::InWarranty as i32,
        service_mode: pb::ServiceMode::OnSite as i32,
        ..Default::default()
    }
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn time_of(t: &Option<prost_types::Timestamp>) -> OffsetDateTime {
    crm_kit::convert::from_timestamp(t.as_ref().expect("set")).unwrap()
}

impl App {
    async fn create(&mut self, t: pb::Ticket) -> pb::Ticket {
        self.client
            .create_ticket(pb::CreateTicketRequest {
                request_id: rid(),
                ticket: Some(t),
            })
            .await
            .expect("create")
            .into_inner()
            .ticket
            .unwrap()
    }

    async fn go(&mut self, id: &str, transition: Transition) -> Result<pb::Ticket, tonic::Status> {
        self.go_with(pb::TransitionTicketRequest {
            id: id.into(),
            transition: transition as i32,
            ..Default::default()
        })
        .await
    }

    async fn go_with(
        &mut self,
        mut r: pb::TransitionTicketRequest,
    ) -> Result<pb::Ticket, tonic::Status> {
        r.request_id = rid();
        self.client
            .transition_ticket(r)
            .await
            .map(|r| r.into_inner().ticket.unwrap())
    }

    async fn dispatch(&mut self, id: &str, engineer: &str) -> pb::Ticket {
        self.engineer(engineer, "华东", &["engineer"]).await;
        self.go_with(pb::TransitionTicketRequest {
            id: id.into(),
            transition: Transition::Dispatch as i32,
            assignee_id: engineer.into(),
            ..Default::default()
        })
        .await
        .expect("dispatch")
    }

    async fn get(&mut self, id: &str) -> pb::Ticket {
        self.client
            .get_ticket(pb::GetTicketRequest { id: id.into() })
            .await
            .unwrap()
            .into_inner()
            .ticket
            .unwrap()
    }

    /// Publishes a customer's tier (and tech-support partner) as the customers service does.
    async fn publish_customer(&self, id: &str, tier: customers::Tier, partner: &str) {
        let event = customers::CustomerEvent {
            customer: Some(customers::Customer {
                id: id.into(),
                tier: tier as i32,
                tech_partner_id: partner.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        testing::events::announce(
            &self.customers,
            NewEvent {
                topic: "customers",
                event_type: "customers.customer_changed",
                aggregate: &format!("customers/{id}"),
                payload: Payload::of(&event),
                urgent: false,
            },
        )
        .await;
    }

    /// Announces a user as the gateway does, and waits until the tickets service has them
    /// (with the engineer role held or not).
    async fn engineer(&self, id: &str, region: &str, roles: &[&str]) {
        let user = crm_proto::gateway::v1::User {
            id: id.into(),
            username: id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            region: region.into(),
            ..Default::default()
        };
        testing::events::announce(
            &self.gateway,
            NewEvent {
                topic: "gateway",
                event_type: "gateway.user_changed",
                aggregate: &format!("users/{id}"),
                payload: Payload::of(&user),
                urgent: false,
            },
        )
        .await;
        let (pool, id, region) = (self.pool.clone(), id.to_string(), region.to_string());
        let active = roles.contains(&"engineer");
        testing::wait_until("the engineer to arrive", Duration::from_secs(10), || {
            let (pool, id, region) = (pool.clone(), id.clone(), region.clone());
            async move {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM directory_members WHERE user_id = $1 AND role = 'engineer' AND region = $2 AND active = $3)",
                )
                .bind(&id)
                .bind(&region)
                .bind(active)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        })
        .await;
    }

    /// A new ordinary customer, announced and known to the tickets service.
    async fn new_customer(&self) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        self.customer_tier(&id, customers::Tier::Ordinary, "").await;
        id
    }

    /// Announces a customer's tier as the customers service does, and waits for it.
    async fn customer_tier(&self, id: &str, tier: customers::Tier, partner: &str) {
        self.publish_customer(id, tier, partner).await;
        let pool = self.pool.clone();
        let id = uuid::Uuid::parse_str(id).unwrap();
        testing::wait_until("the tier to arrive", Duration::from_secs(10), || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM customer_tiers WHERE customer_id = $1)",
                )
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        })
        .await;
    }

    async fn history(&mut self, id: &str) -> Vec<pb::TicketHistoryEntry> {
        self.client
            .list_ticket_history(pb::ListTicketHistoryRequest {
                id: id.into(),
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .entries
    }
}

fn service_record(finished: bool, second_visit: Option<OffsetDateTime>) -> pb::ServiceRecord {
    pb::ServiceRecord {
        work_done: if finished {
            "更换主板，测试通过"
        } else {
            "检测，未完成"
        }
        .into(),
        diagnosis: "主板电源模块损坏".into(),
        parts_used: vec![pb::PartUsed {
            part_number: "MB-200".into(),
            quantity: 1,
        }],
        confirmation: finished.then(|| pb::Confirmation {
            proof: Some(pb::confirmation::Proof::Signature(pb::Signature {
                name: "王晓明".into(),
                time: Some(crm_kit::convert::timestamp(MONDAY_9)),
            })),
        }),
        unfinished_reason: if finished { "" } else { "备件缺货" }.into(),
        second_visit_time: second_visit.map(crm_kit::convert::timestamp),
        ..Default::default()
    }
}

impl App {
    /// A client acting as `subject` with `roles` (and a region, if any).
    fn as_user(&self, subject: &str, roles: &[&str], region: &str) -> Client {
        let token = testing::token(
            &self.settings,
            &TestCaller {
                subject,
                roles,
                region,
                ..Default::default()
            },
            600,
        );
        TicketServiceClient::with_interceptor(self.channel.clone(), Bearer::new(&token))
    }

    /// The types (and urgency) of the events the tickets service published, in order.
    async fn events(&self) -> Vec<(String, bool)> {
        let envelopes: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
                .fetch_all(&self.pool)
                .await
                .unwrap();
        envelopes
            .iter()
            .map(|e| {
                <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap()
            })
            .map(|e| (e.r#type, e.urgent))
            .collect()
    }

    /// Accepts and starts work on a dispatched ticket.
    async fn start(&mut self, id: &str) {
        self.go(id, Transition::Accept).await.unwrap();
        self.go(id, Transition::StartWork).await.unwrap();
    }
}

fn part(number: &str, quantity: i32) -> pb::PartUsed {
    pb::PartUsed {
        part_number: number.into(),
        quantity,
    }
}
