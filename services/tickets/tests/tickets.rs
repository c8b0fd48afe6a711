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
    let security = Security::start(&env.settings, stop.clone()).expect("security");
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

#[tokio::test]
async fn an_incomplete_ticket_cannot_be_handed_on_until_completed() {
    let mut app = spawn_app().await;
    let customer = app.new_customer().await;
    let mut t = intake(&customer);
    t.serial_number.clear();
    t.warranty = 0;
    let created = app.create(t).await;
    assert_eq!(created.state(), TicketState::New);
    let e = app
        .go(&created.id, Transition::HandToHotlineEngineer)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("serial_number, warranty"),
        "{}",
        e.message()
    );
    // a stale version is refused; the right one completes it
    let patch = pb::Ticket {
        id: created.id.clone(),
        serial_number: "SN-0002".into(),
        warranty: pb::Warranty::OutOfWarranty as i32,
        version: 7,
        ..Default::default()
    };
    let mask = FieldMask {
        paths: vec!["serial_number".into(), "warranty".into()],
    };
    let e = app
        .client
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(patch.clone()),
            update_mask: Some(mask.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    app.client
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                version: created.version,
                ..patch
            }),
            update_mask: Some(mask),
        })
        .await
        .unwrap();
    let handed = app
        .go(&created.id, Transition::HandToHotlineEngineer)
        .await
        .unwrap();
    assert_eq!(handed.state(), TicketState::WithHotlineEngineer);
    assert!(handed.response_due.is_none(), "the response was given");
    // a forbidden transition: accepting before it was dispatched
    let e = app.go(&created.id, Transition::Accept).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // bad input names the field and writes nothing
    let e = app
        .client
        .create_ticket(pb::CreateTicketRequest {
            request_id: rid(),
            ticket: Some(pb::Ticket::default()),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 1);
}

#[tokio::test]
async fn the_tier_sets_the_deadlines_in_business_time() {
    let mut app = spawn_app().await;
    let vip = uuid::Uuid::now_v7().to_string();
    app.customer_tier(&vip, customers::Tier::Vip, "").await;
    // Friday 17:00 in China: a VIP's 2 business hours end Monday 10:00
    app.clock.set(datetime!(2026-11-27 09:00 UTC));
    let t = app.create(intake(&vip)).await;
    assert_eq!(t.tier, "vip");
    assert_eq!(time_of(&t.response_due), datetime!(2026-11-30 02:00 UTC));
    // the hand-off deadline is wall-clock: 15 minutes
    assert_eq!(time_of(&t.handoff_due), datetime!(2026-11-27 09:15 UTC));
    // an unknown customer gets the ordinary level: 8 business hours
    let customer_of_other = app.new_customer().await;
    let other = app.create(intake(&customer_of_other)).await;
    assert_eq!(other.tier, "ordinary");
    assert_eq!(
        time_of(&other.response_due),
        datetime!(2026-11-30 08:00 UTC)
    );
}

#[tokio::test]
async fn a_late_hand_off_warns_then_breaches_once_and_raises_the_priority() {
    let mut app = spawn_app().await;
    let customer_of_t = app.new_customer().await;
    let t = app.create(intake(&customer_of_t)).await;
    // 13 minutes: past the 80 % warning, not the deadline
    app.clock.advance(time::Duration::minutes(13));
    let pool = app.pool.clone();
    let history_has = |what: &'static str| {
        let pool = pool.clone();
        move || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM history WHERE kind = 'lifecycle' AND reason LIKE $1)",
                )
                .bind(what)
                .fetch_one(&pool)
                .await
                .unwrap()
            }
        }
    };
    testing::wait_until(
        "the warning",
        Duration::from_secs(10),
        history_has("warning: DEADLINE_HANDOFF%"),
    )
    .await;
    assert!(app.get(&t.id).await.breaches.is_empty());
    // 16 minutes: the breach
    app.clock.advance(time::Duration::minutes(3));
    testing::wait_until(
        "the breach",
        Duration::from_secs(10),
        history_has("breach: DEADLINE_HANDOFF"),
    )
    .await;
    let after = app.get(&t.id).await;
    assert_eq!(after.breaches.len(), 1);
    assert_eq!(after.breaches[0].deadline(), Deadline::Handoff);
    assert_eq!(
        time_of(&after.breaches[0].due_time),
        MONDAY_9 + time::Duration::minutes(15)
    );
    assert_eq!(after.priority(), pb::Priority::High);
    // announced, urgently, for the notifications service's rules
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let breached: Vec<crm_proto::events::v1::Event> = envelopes
        .iter()
        .map(|e| <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap())
        .filter(|e| e.r#type == "tickets.sla_breached")
        .collect();
    assert_eq!(breached.len(), 1);
    assert!(breached[0].urgent);
    // time goes on: the same deadline does not breach twice
    app.clock.advance(time::Duration::minutes(30));
    let fired_all: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM timers WHERE kind LIKE 'tickets.handoff%' AND state = 'fired'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(fired_all, 2);
    assert_eq!(app.get(&t.id).await.breaches.len(), 1);
}

#[tokio::test]
async fn waiting_for_the_customer_pauses_the_resolution_clock() {
    let mut app = spawn_app().await;
    let customer_of_t = app.new_customer().await;
    let t = app.create(intake(&customer_of_t)).await;
    let resolution_due = time_of(&t.resolution_due);
    app.dispatch(&t.id, "engineer.li").await;
    app.go(&t.id, Transition::Accept).await.unwrap();
    app.go(&t.id, Transition::StartWork).await.unwrap();
    // one business hour in, the customer is to send a log file
    app.clock.advance(time::Duration::hours(1));
    let paused = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::WaitForCustomer as i32,
            reason: "waiting for the customer's log file".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(paused.resolution_due.is_none());
    // three days later the customer answers: the rest of the clock continues from now
    app.clock.advance(time::Duration::days(3));
    let resumed = app.go(&t.id, Transition::Resume).await.unwrap();
    let new_due = time_of(&resumed.resolution_due);
    let calendar = crm_kit::calendar::Calendar::new(&app.settings.calendar).unwrap();
    let left_at_pause = calendar.between(MONDAY_9 + time::Duration::hours(1), resolution_due);
    assert_eq!(calendar.between(app.clock.now(), new_due), left_at_pause);
    assert!(new_due > resolution_due);
    // a pause of 30.0 s starting at a fraction of a second moves the deadline by 30.0 s exactly
    app.clock.advance(time::Duration::milliseconds(250));
    app.go_with(pb::TransitionTicketRequest {
        id: t.id.clone(),
        transition: Transition::WaitForCustomer as i32,
        reason: "one more photo".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    app.clock.advance(time::Duration::seconds(30));
    let again = app.go(&t.id, Transition::Resume).await.unwrap();
    assert_eq!(
        calendar.between(new_due, time_of(&again.resolution_due)),
        time::Duration::seconds(30),
        "30 s of business time, sub-second precision kept"
    );
    app.go(&t.id, Transition::RecordArrival).await.unwrap();
    app.go_with(pb::TransitionTicketRequest {
        id: t.id.clone(),
        transition: Transition::Resolve as i32,
        service_record: Some(service_record(true, None)),
        ..Default::default()
    })
    .await
    .unwrap();
    // closing needs the satisfaction result or a refusal
    let e = app.go(&t.id, Transition::Close).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let closed = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::Close as i32,
            satisfaction: 5,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(closed.state(), TicketState::Closed);
    // the transitions (the history also holds the opening and any reminders or warnings the
    // timers added while the clock moved)
    let transitions: Vec<Transition> = app
        .history(&t.id)
        .await
        .iter()
        .map(|e| e.transition())
        .filter(|t| *t != Transition::Unspecified)
        .collect();
    assert_eq!(
        transitions,
        [
            Transition::Dispatch,
            Transition::Accept,
            Transition::StartWork,
            Transition::WaitForCustomer,
            Transition::Resume,
            Transition::WaitForCustomer,
            Transition::Resume,
            Transition::RecordArrival,
            Transition::Resolve,
            Transition::Close
        ]
    );
}

#[tokio::test]
async fn queues_are_ordered_by_deadline_and_engineers_act_on_their_own_tickets() {
    let mut app = spawn_app().await;
    let vip = uuid::Uuid::now_v7().to_string();
    app.customer_tier(&vip, customers::Tier::Vip, "").await;
    let customer_of_ordinary = app.new_customer().await;
    let ordinary = app.create(intake(&customer_of_ordinary)).await;
    app.clock.advance(time::Duration::minutes(5));
    let urgent = app.create(intake(&vip)).await;
    let queue = app
        .client
        .list_tickets(pb::ListTicketsRequest {
            filter: Some(pb::TicketFilter {
                states: vec![TicketState::New as i32],
                ..Default::default()
            }),
            page: Some(crm_proto::common::v1::PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    // both hand-offs run (09:15 and 09:20), the ordinary ticket's first
    assert_eq!(queue.tickets[0].id, ordinary.id);
    let second = app
        .client
        .list_tickets(pb::ListTicketsRequest {
            filter: Some(pb::TicketFilter {
                states: vec![TicketState::New as i32],
                ..Default::default()
            }),
            page: Some(crm_proto::common::v1::PageRequest {
                page_size: 1,
                page_token: queue.page.unwrap().next_page_token,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.tickets[0].id, urgent.id);
    // dispatched to engineer.li: another engineer may not accept it
    app.dispatch(&urgent.id, "engineer.li").await;
    let token = testing::token(
        &app.settings,
        &TestCaller {
            subject: "engineer.wang",
            roles: &["engineer"],
            ..Default::default()
        },
        600,
    );
    let mut wang = TicketServiceClient::with_interceptor(app.channel.clone(), Bearer::new(&token));
    let e = wang
        .transition_ticket(pb::TransitionTicketRequest {
            request_id: rid(),
            id: urgent.id.clone(),
            transition: Transition::Accept as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    // another engineer does not see the ticket at all (its scope, G-2)
    assert_eq!(e.code(), Code::NotFound);
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

#[tokio::test]
async fn an_unfinished_visit_books_a_second_service_and_resolving_needs_a_confirmed_record() {
    let mut app = spawn_app().await;
    let customer_of_t = app.new_customer().await;
    let t = app.create(intake(&customer_of_t)).await;
    app.dispatch(&t.id, "engineer.li").await;
    app.go(&t.id, Transition::Accept).await.unwrap();
    app.go(&t.id, Transition::StartWork).await.unwrap();
    // resolving without a record, or with one the customer did not confirm, is refused
    let e = app.go(&t.id, Transition::Resolve).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let mut unconfirmed = service_record(true, None);
    unconfirmed.confirmation = None;
    let e = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::Resolve as i32,
            service_record: Some(unconfirmed),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // an on-site visit is resolved only once the engineer's arrival is recorded (T-6)
    let e = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::Resolve as i32,
            service_record: Some(service_record(true, None)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("record the arrival"),
        "{}",
        e.message()
    );
    app.clock.advance(time::Duration::minutes(40));
    let arrived = app.go(&t.id, Transition::RecordArrival).await.unwrap();
    assert_eq!(time_of(&arrived.contact_time), MONDAY_9);
    assert_eq!(
        time_of(&arrived.arrival_time),
        MONDAY_9 + time::Duration::minutes(40)
    );
    // the parts are out of stock: the visit ends unfinished, a second visit is booked
    let e = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::RecordUnfinishedVisit as i32,
            service_record: Some(service_record(
                false,
                Some(MONDAY_9 - time::Duration::hours(1)),
            )),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::InvalidArgument,
        "a second visit in the past"
    );
    let after_first = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::RecordUnfinishedVisit as i32,
            service_record: Some(service_record(
                false,
                Some(MONDAY_9 + time::Duration::days(2)),
            )),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(after_first.state(), TicketState::InProgress);
    assert!(after_first.second_service);
    assert_eq!(after_first.second_service_reason, "备件缺货");
    assert_eq!(after_first.service_records.len(), 1);
    assert!(!after_first.service_records[0].finished);
    assert!(!after_first.service_records[0].second_service);
    // the second visit finishes, confirmed by the customer's signature
    let resolved = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::Resolve as i32,
            service_record: Some(service_record(true, None)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(resolved.state(), TicketState::Resolved);
    let second = &resolved.service_records[1];
    assert!(second.finished && second.second_service);
    assert_eq!(second.second_service_reason, "备件缺货");
    assert_eq!(second.parts_used[0].part_number, "MB-200");
    match second
        .confirmation
        .as_ref()
        .unwrap()
        .proof
        .as_ref()
        .unwrap()
    {
        pb::confirmation::Proof::Signature(s) => assert_eq!(s.name, "王晓明"),
        other => panic!("{other:?}"),
    }
    assert_eq!(app.get(&t.id).await.service_records.len(), 2);
}

#[tokio::test]
async fn a_tier_change_recomputes_the_running_deadlines() {
    let mut app = spawn_app().await;
    let customer = uuid::Uuid::now_v7().to_string();
    app.customer_tier(&customer, customers::Tier::Ordinary, "")
        .await;
    let t = app.create(intake(&customer)).await;
    // ordinary: 8 business hours to respond (Monday 17:00 in China)
    assert_eq!(time_of(&t.response_due), datetime!(2026-11-23 09:00 UTC));
    // an hour later the customer becomes VIP: 2 hours in all, one of them used
    app.clock.advance(time::Duration::hours(1));
    app.publish_customer(&customer, customers::Tier::Vip, "")
        .await;
    let client = app.client.clone();
    let id = t.id.clone();
    testing::wait_until("the new tier", Duration::from_secs(10), || {
        let mut c = client.clone();
        let id = id.clone();
        async move {
            c.get_ticket(pb::GetTicketRequest { id })
                .await
                .unwrap()
                .into_inner()
                .ticket
                .unwrap()
                .tier
                == "vip"
        }
    })
    .await;
    let after = app.get(&t.id).await;
    assert_eq!(
        time_of(&after.response_due),
        MONDAY_9 + time::Duration::hours(2)
    );
    // its timer moved with it, and its entry in the schedule at once (earlier, not at the
    // next reconciliation)
    let (id, due): (uuid::Uuid, OffsetDateTime) = sqlx::query_as(
        "SELECT id, due_time FROM timers WHERE kind = 'tickets.response' AND state = 'scheduled'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(due, MONDAY_9 + time::Duration::hours(2));
    let timers = crm_kit::timers::Timers::connect(&app.settings.redis, "tickets")
        .await
        .unwrap();
    let mut redis = redis::Client::open(app.settings.redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(timers.key())
        .arg(id.to_string())
        .query_async(&mut redis)
        .await
        .unwrap();
    let ms = (due.unix_timestamp_nanos() / 1_000_000) as f64;
    assert_eq!(score, Some(ms));
}

#[tokio::test]
async fn work_started_today_without_a_record_is_reminded_at_the_close_of_day() {
    let mut app = spawn_app().await;
    let mut started = Vec::new();
    for _ in 0..2 {
        let customer_of_t = app.new_customer().await;
        let t = app.create(intake(&customer_of_t)).await;
        app.dispatch(&t.id, "engineer.li").await;
        app.go(&t.id, Transition::Accept).await.unwrap();
        app.go(&t.id, Transition::StartWork).await.unwrap();
        started.push(t.id);
    }
    // the second ticket's visit is recorded (unfinished, second visit booked) the same day
    app.go_with(pb::TransitionTicketRequest {
        id: started[1].clone(),
        transition: Transition::RecordUnfinishedVisit as i32,
        service_record: Some(service_record(
            false,
            Some(MONDAY_9 + time::Duration::days(1)),
        )),
        ..Default::default()
    })
    .await
    .unwrap();
    // the working day closes at 18:00 in China (10:00 UTC)
    app.clock.set(datetime!(2026-11-23 10:00:01 UTC));
    let pool = app.pool.clone();
    testing::wait_until("the reminder", Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM timers WHERE kind = 'tickets.record_due' AND state = 'fired'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == 2
        }
    })
    .await;
    let reminded = |id: &str| {
        let id = uuid::Uuid::parse_str(id).unwrap();
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM history WHERE subject = $1 AND reason LIKE 'reminder:%'",
            )
            .bind(format!("tickets/{id}"))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(reminded(&started[0]).await, 1, "no record: reminded");
    assert_eq!(reminded(&started[1]).await, 0, "recorded: not reminded");
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let due: Vec<String> = envelopes
        .iter()
        .map(|e| <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap())
        .filter(|e| e.r#type == "tickets.record_due")
        .map(|e| e.aggregate)
        .collect();
    assert_eq!(due, vec![format!("tickets/{}", started[0])]);
}

#[tokio::test]
async fn vip_tickets_go_to_the_customers_usual_engineer_first() {
    let mut app = spawn_app().await;
    app.engineer("engineer.zhou", "华东", &["engineer"]).await;
    app.engineer("engineer.wu", "华东", &["engineer"]).await;
    // a VIP whose tech-support partner is a user of the engineer role: the partner is not the
    // usual engineer (issue 14); with none known the region's least-loaded engineer gets it
    let vip = uuid::Uuid::now_v7().to_string();
    app.customer_tier(&vip, customers::Tier::Vip, "engineer.zhou")
        .await;
    let e = app
        .client
        .get_usual_engineer(pb::GetUsualEngineerRequest {
            customer_id: vip.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let first = app.create(intake(&vip)).await;
    assert!(first.number.starts_with('T'), "{}", first.number);
    let first = app.go(&first.id, Transition::Dispatch).await.unwrap();
    let resolver = first.assignee_id.clone();
    // service history: whoever resolves the customer's ticket is its usual engineer
    app.start(&first.id).await;
    app.go(&first.id, Transition::RecordArrival).await.unwrap();
    app.go_with(pb::TransitionTicketRequest {
        id: first.id.clone(),
        transition: Transition::Resolve as i32,
        service_record: Some(service_record(true, None)),
        ..Default::default()
    })
    .await
    .unwrap();
    let usual = app
        .client
        .get_usual_engineer(pb::GetUsualEngineerRequest {
            customer_id: vip.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .usual_engineer
        .unwrap();
    assert_eq!(usual.engineer_id, resolver);
    assert_eq!(usual.source(), pb::UsualEngineerSource::ServiceHistory);
    // the other engineer now has fewer tickets in hand, but the VIP's ticket goes to its usual
    let other = if resolver == "engineer.zhou" {
        "engineer.wu"
    } else {
        "engineer.zhou"
    };
    let busy = app.create(intake(&app.new_customer().await)).await;
    app.dispatch(&busy.id, &resolver).await;
    let t = app.create(intake(&vip)).await;
    let dispatched = app.go(&t.id, Transition::Dispatch).await.unwrap();
    assert_eq!(dispatched.assignee_id, resolver);
    assert_eq!(dispatched.state(), TicketState::Dispatched);
    assert!(
        dispatched.contact_due.is_some(),
        "the customer is told when to expect the call"
    );
    // a service manager names the usual engineer; only a manager, and only an engineer
    let set = |engineer: &str| pb::SetUsualEngineerRequest {
        request_id: rid(),
        customer_id: vip.clone(),
        engineer_id: engineer.into(),
    };
    let mut coordinator = app.as_user("coord.sun", &["coordinator"], "");
    let e = coordinator
        .set_usual_engineer(set(other))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let mut manager = app.as_user("sup.qian", &["supervisor"], "");
    let e = manager
        .set_usual_engineer(set("support.li"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let named = manager
        .set_usual_engineer(set(other))
        .await
        .unwrap()
        .into_inner()
        .usual_engineer
        .unwrap();
    assert_eq!(named.source(), pb::UsualEngineerSource::Manager);
    let t = app.create(intake(&vip)).await;
    let dispatched = app.go(&t.id, Transition::Dispatch).await.unwrap();
    assert_eq!(dispatched.assignee_id, other, "the manager's choice");
    // service history does not undo a manager's choice: the resolver resolves another
    let vip_busy = app.create(intake(&vip)).await;
    app.dispatch(&vip_busy.id, &resolver).await;
    app.start(&vip_busy.id).await;
    app.go(&vip_busy.id, Transition::RecordArrival)
        .await
        .unwrap();
    app.go_with(pb::TransitionTicketRequest {
        id: vip_busy.id.clone(),
        transition: Transition::Resolve as i32,
        service_record: Some(service_record(true, None)),
        ..Default::default()
    })
    .await
    .unwrap();
    let usual = manager
        .get_usual_engineer(pb::GetUsualEngineerRequest {
            customer_id: vip.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .usual_engineer
        .unwrap();
    assert_eq!(usual.engineer_id, other);
    // an engineer who loses the role is passed over: by load again
    app.engineer(other, "华东", &["tech_support"]).await;
    let t = app.create(intake(&vip)).await;
    let dispatched = app.go(&t.id, Transition::Dispatch).await.unwrap();
    assert_eq!(dispatched.assignee_id, resolver);
    // the changes were announced, for the customers service's policy status
    let changes = app
        .events()
        .await
        .iter()
        .filter(|(t, _)| t == "tickets.usual_engineer_changed")
        .count();
    assert_eq!(changes, 2, "history once, the manager once");
    // and a named assignee who is no engineer is refused
    let t = app.create(intake(&vip)).await;
    let e = app
        .go_with(pb::TransitionTicketRequest {
            id: t.id.clone(),
            transition: Transition::Dispatch as i32,
            assignee_id: "support.li".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // an ordinary customer's ticket in a region without engineers needs the engineer named
    let customer_of_other = app.new_customer().await;
    let mut other = intake(&customer_of_other);
    other.region = "华南".into();
    let other = app.create(other).await;
    let e = app.go(&other.id, Transition::Dispatch).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("name the engineer"), "{}", e.message());
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

#[tokio::test]
async fn dispatch_without_a_name_goes_to_the_least_loaded_engineer_of_the_region_with_parts() {
    let mut app = spawn_app().await;
    app.engineer("eng.b", "华东", &["engineer"]).await;
    app.engineer("eng.c", "华北", &["engineer"]).await;
    app.engineer("eng.a", "华东", &["engineer"]).await;
    // eng.0 was an engineer of 华东 and is one no more
    app.engineer("eng.0", "华东", &["engineer"]).await;
    app.engineer("eng.0", "华东", &["sales_rep"]).await;
    let customer = app.new_customer().await;
    let mut picked = Vec::new();
    let mut dispatched = Vec::new();
    for i in 0..3 {
        let t = app.create(intake(&customer)).await;
        let parts = if i == 0 {
            vec![part("MB-200", 1), part("PSU-12V", 2)]
        } else {
            Vec::new()
        };
        let d = app
            .go_with(pb::TransitionTicketRequest {
                id: t.id.clone(),
                transition: Transition::Dispatch as i32,
                parts_to_prepare: parts.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(d.parts_to_prepare, parts);
        picked.push(d.assignee_id);
        dispatched.push(d.id);
    }
    // the fewest tickets in hand first, ties by id; the former engineer and 华北 never
    assert_eq!(picked, ["eng.a", "eng.b", "eng.a"]);
    // eng.a resolves one: one each in hand, and the tie goes to eng.a again
    let done = &dispatched[0];
    app.start(done).await;
    app.go(done, Transition::RecordArrival).await.unwrap();
    app.go_with(pb::TransitionTicketRequest {
        id: done.clone(),
        transition: Transition::Resolve as i32,
        service_record: Some(service_record(true, None)),
        ..Default::default()
    })
    .await
    .unwrap();
    let next = app.create(intake(&customer)).await;
    let d = app.go(&next.id, Transition::Dispatch).await.unwrap();
    assert_eq!(d.assignee_id, "eng.a");
    // bad parts, a named user who is no engineer, a region without engineers
    let bad = app.create(intake(&customer)).await;
    let e = app
        .go_with(pb::TransitionTicketRequest {
            id: bad.id.clone(),
            transition: Transition::Dispatch as i32,
            parts_to_prepare: vec![part("MB-200", 0)],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("parts_to_prepare[0].quantity"),
        "{}",
        e.message()
    );
    let e = app
        .go_with(pb::TransitionTicketRequest {
            id: bad.id.clone(),
            transition: Transition::Dispatch as i32,
            assignee_id: "eng.0".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("not an engineer"), "{}", e.message());
    let mut south = intake(&customer);
    south.region = "华南".into();
    let south = app.create(south).await;
    let e = app.go(&south.id, Transition::Dispatch).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("no engineer works in region 华南"),
        "{}",
        e.message()
    );
    // nothing of the refused dispatches was written
    assert_eq!(app.get(&bad.id).await.state(), TicketState::New);
    assert_eq!(app.get(&south.id).await.version, 1);
}

#[tokio::test]
async fn queues_are_scoped_by_role_and_region() {
    let mut app = spawn_app().await;
    let customer = app.new_customer().await;
    let east = app.create(intake(&customer)).await;
    let mut north = intake(&customer);
    north.region = "华北".into();
    let north = app.create(north).await;
    let mine = app.create(intake(&customer)).await;
    app.dispatch(&mine.id, "eng.li").await;
    let theirs = app.create(intake(&customer)).await;
    app.dispatch(&theirs.id, "eng.wang").await;
    let ids = |r: pb::ListTicketsResponse| r.tickets.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let all = pb::ListTicketsRequest::default();
    // an agent of 华北 sees the new tickets of 华北 only
    let mut agent = app.as_user("agent.zhao", &["hotline_agent"], "华北");
    let seen = ids(agent.list_tickets(all.clone()).await.unwrap().into_inner());
    assert_eq!(seen, std::slice::from_ref(&north.id));
    let e = agent
        .list_tickets(pb::ListTicketsRequest {
            filter: Some(pb::TicketFilter {
                region: "华东".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // an agent with no region sees every new ticket
    let mut national = app.as_user("agent.qian", &["hotline_agent"], "");
    let seen = ids(national
        .list_tickets(all.clone())
        .await
        .unwrap()
        .into_inner());
    assert_eq!(seen.len(), 2);
    assert!(seen.contains(&east.id) && seen.contains(&north.id));
    // an engineer sees the work assigned to them, and not another engineer's
    let mut li = app.as_user("eng.li", &["engineer"], "");
    let seen = ids(li.list_tickets(all.clone()).await.unwrap().into_inner());
    assert_eq!(seen, std::slice::from_ref(&mine.id));
    let e = li
        .list_tickets(pb::ListTicketsRequest {
            filter: Some(pb::TicketFilter {
                assignee_id: "eng.wang".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    // a coordinator's queue holds the dispatches not yet accepted
    let mut coordinator = app.as_user("coord.sun", &["coordinator"], "");
    let seen = ids(coordinator.list_tickets(all).await.unwrap().into_inner());
    assert_eq!(seen.len(), 2);
    assert!(seen.contains(&mine.id) && seen.contains(&theirs.id));

    // every read and change of one ticket has the queue's scope: out of it is NOT_FOUND
    let get = |id: &str| pb::GetTicketRequest { id: id.into() };
    let history = |id: &str| pb::ListTicketHistoryRequest {
        id: id.into(),
        ..Default::default()
    };
    let e = agent.get_ticket(get(&east.id)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "another region's ticket");
    let e = agent
        .list_ticket_history(history(&east.id))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "another region's history");
    assert!(agent.get_ticket(get(&north.id)).await.is_ok());
    let mut north_engineer = app.as_user("eng.zhou", &["engineer"], "华北");
    for id in [&east.id, &north.id, &theirs.id] {
        let e = north_engineer.get_ticket(get(id)).await.unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "not assigned to them");
        let e = north_engineer
            .list_ticket_history(history(id))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound);
    }
    assert!(li.get_ticket(get(&mine.id)).await.is_ok());
    assert!(li.list_ticket_history(history(&mine.id)).await.is_ok());
    let e = li.get_ticket(get(&theirs.id)).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "another engineer's ticket");
    let e = li
        .transition_ticket(pb::TransitionTicketRequest {
            request_id: rid(),
            id: theirs.id.clone(),
            transition: Transition::Accept as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "no change out of scope either");
    let e = agent
        .update_ticket(pb::UpdateTicketRequest {
            ticket: Some(pb::Ticket {
                id: east.id.clone(),
                symptom: "改".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["symptom".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn escalations_are_filtered_routed_timed_and_tracked_to_the_end() {
    let mut app = spawn_app().await;
    let customer_of_t = app.new_customer().await;
    let t = app.create(intake(&customer_of_t)).await;
    app.dispatch(&t.id, "eng.li").await;
    let request =
        |kind: pb::EscalationKind, hours: i32, batch: bool| pb::RequestEscalationRequest {
            request_id: rid(),
            ticket_id: t.id.clone(),
            kind: kind as i32,
            symptom: String::new(),
            reason: "同型号多台主板烧毁".into(),
            time_limit_hours: hours,
            batch_failure: batch,
        };
    // only a ticket in work, only by its engineer, only a complete form
    let e = app
        .client
        .request_escalation(request(pb::EscalationKind::Hardware, 4, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    app.start(&t.id).await;
    // another engineer does not even see the ticket
    let mut wang = app.as_user("eng.wang", &["engineer"], "");
    let e = wang
        .request_escalation(request(pb::EscalationKind::Hardware, 4, false))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = app
        .client
        .request_escalation(request(pb::EscalationKind::Hardware, 0, true))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    // the engineer applies; the hotline engineer filters it out
    let mut li = app.as_user("eng.li", &["engineer"], "");
    let first = li
        .request_escalation(request(pb::EscalationKind::Hardware, 4, false))
        .await
        .unwrap()
        .into_inner()
        .escalation
        .unwrap();
    assert_eq!(first.state(), pb::EscalationState::Requested);
    assert_eq!(first.symptom, "无法开机", "the ticket's symptom by default");
    assert_eq!(
        (first.product_model.as_str(), first.serial_number.as_str()),
        ("X200", "SN-0001")
    );
    assert_eq!(
        time_of(&first.due_time),
        MONDAY_9 + time::Duration::hours(4)
    );
    let e = li
        .request_escalation(request(pb::EscalationKind::System, 4, false))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::FailedPrecondition,
        "one open escalation per ticket"
    );
    let review = |approve: bool, note: &str| pb::ReviewEscalationRequest {
        request_id: rid(),
        id: first.id.clone(),
        approve,
        note: note.into(),
    };
    let e = app
        .client
        .review_escalation(review(false, ""))
        .await
        .unwrap_err();
    assert_eq!(
        e.code(),
        Code::InvalidArgument,
        "a rejection needs its reason"
    );
    let rejected = app
        .client
        .review_escalation(review(false, "复位后可恢复，按常规维修"))
        .await
        .unwrap()
        .into_inner()
        .escalation
        .unwrap();
    assert_eq!(rejected.state(), pb::EscalationState::Rejected);
    let e = app
        .client
        .review_escalation(review(true, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "reviewed once");
    // a batch failure: major-quality feedback, routed to quality, with a two-hour limit
    let major = li
        .request_escalation(request(pb::EscalationKind::MajorQuality, 2, true))
        .await
        .unwrap()
        .into_inner()
        .escalation
        .unwrap();
    let routed = app
        .client
        .review_escalation(pb::ReviewEscalationRequest {
            request_id: rid(),
            id: major.id.clone(),
            approve: true,
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .escalation
        .unwrap();
    assert_eq!(routed.state(), pb::EscalationState::Routed);
    assert_eq!(routed.routed_to, "quality");
    let progress = |note: &str, resolve: bool| pb::RecordEscalationProgressRequest {
        request_id: rid(),
        id: major.id.clone(),
        note: note.into(),
        resolve,
    };
    app.client
        .record_escalation_progress(progress("已召回同批次主板进行检测", false))
        .await
        .unwrap();
    // the time limit passes: a breach on the ticket, the escalation marked overdue
    app.clock
        .advance(time::Duration::hours(2) + time::Duration::seconds(1));
    let pool = app.pool.clone();
    let id = uuid::Uuid::parse_str(&major.id).unwrap();
    testing::wait_until(
        "the escalation to be overdue",
        Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, bool>("SELECT overdue FROM escalations WHERE id = $1")
                    .bind(id)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        },
    )
    .await;
    let late = app.get(&t.id).await;
    assert!(
        late.breaches
            .iter()
            .any(|b| b.deadline() == Deadline::Escalation)
    );
    assert_eq!(late.priority(), pb::Priority::High);
    // the ticket is resolved, but not closed while the feedback is open
    app.go(&t.id, Transition::RecordArrival).await.unwrap();
    app.go_with(pb::TransitionTicketRequest {
        id: t.id.clone(),
        transition: Transition::Resolve as i32,
        service_record: Some(service_record(true, None)),
        ..Default::default()
    })
    .await
    .unwrap();
    let close = pb::TransitionTicketRequest {
        id: t.id.clone(),
        transition: Transition::Close as i32,
        satisfaction: 4,
        ..Default::default()
    };
    let e = app.go_with(close.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("escalation is still open"),
        "{}",
        e.message()
    );
    let done = app
        .client
        .record_escalation_progress(progress("供应商批次缺陷，已更换全部受影响主板", true))
        .await
        .unwrap()
        .into_inner()
        .escalation
        .unwrap();
    assert_eq!(done.state(), pb::EscalationState::Resolved);
    assert_eq!(done.progress.len(), 2);
    assert!(done.overdue);
    assert_eq!(
        app.go_with(close).await.unwrap().state(),
        TicketState::Closed
    );
    // the lists, and what was announced: the hotline engineers of each application, the
    // department (urgently for major quality), the customer at every step after routing
    let listed = app
        .client
        .list_escalations(pb::ListEscalationsRequest {
            ticket_id: t.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .escalations;
    assert_eq!(listed.len(), 2);
    // the ticket's engineer sees its escalations, another engineer none of them
    let all = pb::ListEscalationsRequest::default();
    let mut li = app.as_user("eng.li", &["engineer"], "");
    let mine = li.list_escalations(all.clone()).await.unwrap().into_inner();
    assert_eq!(mine.escalations.len(), 2);
    let theirs = wang.list_escalations(all).await.unwrap().into_inner();
    assert!(theirs.escalations.is_empty(), "{:?}", theirs.escalations);
    let events: Vec<(String, bool)> = app
        .events()
        .await
        .into_iter()
        .filter(|(e, _)| e.starts_with("tickets.escalation"))
        .collect();
    let expected = [
        ("tickets.escalation_requested", false),
        ("tickets.escalation_rejected", false),
        ("tickets.escalation_requested", false),
        ("tickets.escalation_routed", true),
        ("tickets.escalation_changed", false),
        ("tickets.escalation_changed", false),
        ("tickets.escalation_changed", false),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(e, u)| (e.to_string(), *u)).collect();
    assert_eq!(events, expected);
}

#[tokio::test]
async fn a_ticket_is_for_a_customer_that_exists() {
    let mut app = spawn_app().await;
    // made up: refused, naming the field, nothing written
    let e = app
        .client
        .create_ticket(pb::CreateTicketRequest {
            request_id: rid(),
            ticket: Some(intake(&uuid::Uuid::now_v7().to_string())),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(
        e.message().contains("ticket.customer_id"),
        "{}",
        e.message()
    );
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // created a moment ago: its event arrives while the ticket waits for it
    let fresh = uuid::Uuid::now_v7().to_string();
    let mut client = app.client.clone();
    let request = pb::CreateTicketRequest {
        request_id: rid(),
        ticket: Some(intake(&fresh)),
    };
    let pending = tokio::spawn(async move { client.create_ticket(request).await });
    app.publish_customer(&fresh, customers::Tier::Vip, "").await;
    let t = pending
        .await
        .unwrap()
        .expect("accepted once the customer is known");
    assert_eq!(t.into_inner().ticket.unwrap().tier, "vip");
    let _ = &mut app;
}
