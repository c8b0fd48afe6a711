//! The instalments' due dates against the real Postgres and Redis, with a clock the test moves
//! (P-5): an instalment whose due date passed with less paid than the schedule asked for by
//! then reminds the owner once; one paid in time says nothing.

use std::time::Duration;

use crm_kit::{
    CancellationToken, Clock,
    auth::Security,
    testing::{self, Bearer, TestCaller},
};
use crm_proto::{
    common::v1::{Date, Money},
    pipeline::v1::{
        self as pb, OpportunityType, Stage, pipeline_service_client::PipelineServiceClient,
    },
};
use time::macros::datetime;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

type Client = PipelineServiceClient<InterceptedService<Channel, Bearer>>;

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn cny(units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        units,
        nanos: 0,
    })
}

fn day(month: i32, day: i32) -> Option<Date> {
    Some(Date {
        year: 2026,
        month,
        day,
    })
}

/// The overdue reminders published about contract `id`: the instalments they name.
async fn reminders(pool: &sqlx::PgPool, id: &str) -> Vec<i32> {
    use prost::Message;
    let envelopes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE aggregate = $1 ORDER BY seq")
            .bind(format!("contracts/{id}"))
            .fetch_all(pool)
            .await
            .unwrap();
    envelopes
        .iter()
        .map(|e| crm_proto::events::v1::Event::decode(e.as_slice()).unwrap())
        .filter(|e| e.r#type == "pipeline.instalment_overdue")
        .map(|e| {
            crm_kit::events::decode::<pb::InstalmentEvent>(&e)
                .unwrap()
                .instalment
        })
        .collect()
}

/// Waits until every timer due by the test's clock has fired.
async fn settled(pool: &sqlx::PgPool, clock: &Clock) {
    let now = clock.now();
    testing::wait_until(
        "the due timers fired",
        Duration::from_secs(15),
        || async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM timers WHERE state = 'scheduled' AND due_time <= $1",
            )
            .bind(now)
            .fetch_one(pool)
            .await
            .unwrap()
                == 0
        },
    )
    .await;
}

#[tokio::test]
async fn an_unpaid_instalment_reminds_the_owner_once_and_a_paid_one_says_nothing() {
    let mut env = testing::test_env().await;
    env.settings.timers.poll_ms = 20;
    crm_pipeline::migrate(&env.settings).await.expect("migrate");
    let clock = Clock::manual(datetime!(2026-11-23 01:00 UTC));
    let stop = CancellationToken::new();
    let security =
        Security::start(&env.settings.auth, &env.settings.redis, stop.clone()).expect("security");
    let app = crm_pipeline::Application::build(&env.settings, clock.clone(), security)
        .await
        .expect("build");
    let pool = app.pipeline().pool().clone();
    let channel = testing::serve(app, &stop).await;
    let _stop = testing::StopOnDrop(stop);
    let client = |subject: &str, roles: &[&str]| -> Client {
        PipelineServiceClient::with_interceptor(
            channel.clone(),
            testing::bearer_as(
                &env.settings,
                &TestCaller {
                    subject,
                    roles,
                    region: "华东",
                    ..Default::default()
                },
            ),
        )
    };
    let mut rep = client("rep", &["sales_rep"]);
    let mut finance = client("finance", &["finance"]);
    let o = rep
        .create_opportunity(pb::CreateOpportunityRequest {
            request_id: rid(),
            opportunity: Some(pb::Opportunity {
                name: "工单系统".into(),
                r#type: OpportunityType::NewBusiness as i32,
                customer_id: rid(),
                region: "华东".into(),
                amount: cny(100_000),
                expected_close_date: day(12, 31),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    rep.move_opportunity_stage(pb::MoveOpportunityStageRequest {
        request_id: rid(),
        id: o.id.clone(),
        stage: Stage::Won as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    let contract = rep
        .sign_contract(pb::SignContractRequest {
            request_id: rid(),
            contract: Some(pb::Contract {
                opportunity_id: o.id.clone(),
                term_months: 12,
                start_date: day(12, 1),
                instalments: vec![
                    pb::Instalment {
                        due_date: day(11, 25),
                        amount: cny(40_000),
                    },
                    pb::Instalment {
                        due_date: day(12, 20),
                        amount: cny(60_000),
                    },
                ],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .contract
        .unwrap();

    // past the first due date, nothing paid: one reminder, of the first
    clock.advance(time::Duration::days(3));
    settled(&pool, &clock).await;
    assert_eq!(reminders(&pool, &contract.id).await, [0]);
    // the first paid late and the second in time: nothing more
    finance
        .record_payment(pb::RecordPaymentRequest {
            request_id: rid(),
            payment: Some(pb::Payment {
                contract_id: contract.id.clone(),
                amount: cny(100_000),
                paid_on: day(12, 1),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    clock.advance(time::Duration::days(30));
    settled(&pool, &clock).await;
    assert_eq!(
        reminders(&pool, &contract.id).await,
        [0],
        "the second was paid in time"
    );
}
