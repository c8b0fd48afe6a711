//! The repairs service's timers against the real Postgres and Redis, with a clock the test
//! moves. Turnaround: a repair order's warning and breach fire once from the kit's timers
//! in business time, the breach raises the priority and is published urgently, an order closed
//! in time fires nothing, and the report counts both per centre within the caller's scope.
//! Exchange: a replacement shipped before the faulty unit came back makes the return
//! overdue once after `repairs.return_days`.

use std::time::Duration;

use crm_kit::{
    CancellationToken, Clock,
    auth::Security,
    testing::{self, Bearer, TestCaller},
};
use crm_proto::repairs::v1::{
    self as pb, CentreKind, OrderKind, OrderPriority, OrderTransition as T,
    repair_service_client::RepairServiceClient,
};
use time::macros::datetime;
use tonic::{service::interceptor::InterceptedService, transport::Channel};

type Client = RepairServiceClient<InterceptedService<Channel, Bearer>>;

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn get(client: &mut Client, id: &str) -> pb::RepairOrder {
    client
        .get_repair_order(pb::GetRepairOrderRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .repair_order
        .unwrap()
}

/// The repairs server on the test's own database, with a clock the test moves (Monday
/// 2026-11-23 09:00 in China).
struct App {
    settings: crm_kit::Settings,
    clock: Clock,
    pool: sqlx::PgPool,
    channel: Channel,
    _stop: testing::StopOnDrop,
}

impl App {
    async fn start() -> Self {
        let mut env = testing::test_env().await;
        env.settings.timers.poll_ms = 20;
        crm_repairs::migrate(&env.settings).await.expect("migrate");
        let clock = Clock::manual(datetime!(2026-11-23 01:00 UTC));
        let stop = CancellationToken::new();
        let security = Security::start(&env.settings.auth, &env.settings.redis, stop.clone())
            .expect("security");
        let app = crm_repairs::Application::build(&env.settings, clock.clone(), security)
            .await
            .expect("build");
        let pool = app.repairs().pool().clone();
        let channel = testing::serve(app, &stop).await;
        Self {
            settings: env.settings,
            clock,
            pool,
            channel,
            _stop: testing::StopOnDrop(stop),
        }
    }

    /// A client calling as `subject` with `roles`, of `region` and partner organisation
    /// `partner`.
    fn client(&self, subject: &str, roles: &[&str], region: &str, partner: &str) -> Client {
        RepairServiceClient::with_interceptor(
            self.channel.clone(),
            testing::bearer_as(
                &self.settings,
                &TestCaller {
                    subject,
                    roles,
                    region,
                    partner,
                },
            ),
        )
    }
}

#[tokio::test]
async fn a_missed_turnaround_is_recorded_once_and_reported_per_centre() {
    let app = App::start().await;
    let (clock, pool) = (app.clock.clone(), app.pool.clone());
    let mut admin = app.client("tester", &["admin"], "", "");
    let hq = admin
        .create_centre(pb::CreateCentreRequest {
            request_id: rid(),
            centre: Some(pb::Centre {
                code: "HQ".into(),
                name: "总部维修中心".into(),
                kind: CentreKind::Hq as i32,
                region: "华北".into(),
                address: "北京".into(),
                opening_hours: "09:00–18:00".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .centre
        .unwrap();
    let order = |admin: &mut Client| {
        let mut admin = admin.clone();
        let centre = hq.id.clone();
        async move {
            admin
                .create_repair_order(pb::CreateRepairOrderRequest {
                    request_id: rid(),
                    repair_order: Some(pb::RepairOrder {
                        kind: OrderKind::CarryIn as i32,
                        centre_id: centre,
                        contact_name: "王晓明".into(),
                        contact_phone: "+86 138 0013 8000".into(),
                        product_model: "X200".into(),
                        serial_number: "SN-1".into(),
                        fault_description: "无法开机".into(),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap()
                .into_inner()
                .repair_order
                .unwrap()
        }
    };
    let late = order(&mut admin).await;
    let quick = order(&mut admin).await;
    assert_eq!(
        late.due_time.as_ref().unwrap().seconds,
        datetime!(2026-11-23 09:00 UTC).unix_timestamp(),
        "17:00 in China"
    );
    // the quick one is repaired while the customer waits and handed over before its deadline
    for (t, edit) in [
        (T::Inspect, 0),
        (T::RepairWhileWaiting, 1),
        (T::HandOver, 2),
    ] {
        let mut r = pb::TransitionRepairOrderRequest {
            request_id: rid(),
            id: quick.id.clone(),
            transition: t as i32,
            ..Default::default()
        };
        match edit {
            0 => {
                r.configuration = "8G".into();
                r.customer_confirmed = true;
            }
            1 => {
                r.service_record = "更换电源".into();
                r.tested = true;
            }
            _ => r.signature = "王晓明".into(),
        }
        admin.transition_repair_order(r).await.unwrap();
    }

    // 16:00: past the warning (80 % = 15:24), before the deadline
    clock.advance(time::Duration::hours(7));
    let c = admin.clone();
    let id = late.id.clone();
    testing::wait_until("the warning", Duration::from_secs(20), || {
        let (mut c, id) = (c.clone(), id.clone());
        async move { get(&mut c, &id).await.warning_time.is_some() }
    })
    .await;
    let warned = get(&mut admin, &late.id).await;
    assert!(warned.breach_time.is_none());
    assert_eq!(warned.priority, OrderPriority::Normal as i32);

    // 18:00: the deadline has passed
    clock.advance(time::Duration::hours(2));
    testing::wait_until("the breach", Duration::from_secs(20), || {
        let (mut c, id) = (c.clone(), id.clone());
        async move { get(&mut c, &id).await.breach_time.is_some() }
    })
    .await;
    let breached = get(&mut admin, &late.id).await;
    assert_eq!(breached.priority, OrderPriority::High as i32);
    // the next day: nothing fires twice, and the closed order fired nothing
    clock.advance(time::Duration::hours(24));
    testing::wait_until("every timer settled", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM timers WHERE state = 'scheduled'")
                .fetch_one(&pool)
                .await
                .unwrap()
                == 0
        }
    })
    .await;
    let count = |sql: &'static str, subject: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(subject)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let breach_entries =
        "SELECT count(*) FROM history WHERE subject = $1 AND via = 'TURNAROUND_BREACH'";
    assert_eq!(
        count(breach_entries, format!("repair_orders/{}", late.id)).await,
        1
    );
    assert_eq!(
        count(breach_entries, format!("repair_orders/{}", quick.id)).await,
        0
    );
    let quick_now = get(&mut admin, &quick.id).await;
    assert!(quick_now.warning_time.is_none() && quick_now.breach_time.is_none());

    let report = |client: &mut Client| {
        let mut client = client.clone();
        async move {
            client
                .report_turnaround(pb::ReportTurnaroundRequest {
                    from_time: Some(prost_types::Timestamp {
                        seconds: datetime!(2026-11-23 00:00 UTC).unix_timestamp(),
                        nanos: 0,
                    }),
                    to_time: Some(prost_types::Timestamp {
                        seconds: datetime!(2026-11-24 00:00 UTC).unix_timestamp(),
                        nanos: 0,
                    }),
                })
                .await
                .unwrap()
                .into_inner()
                .centres
        }
    };
    let lines = report(&mut admin).await;
    assert_eq!(lines.len(), 1);
    let l = &lines[0];
    assert_eq!(
        (
            l.centre_id.as_str(),
            l.orders,
            l.on_time,
            l.breached,
            l.open,
            l.on_time_share
        ),
        (hq.id.as_str(), 2, 1, 1, 0, 0.5)
    );
    // a partner's report holds none of HQ's orders
    let mut partner = app.client("tester", &["partner"], "", "partner.a");
    assert!(report(&mut partner).await.is_empty());
    let status = admin
        .report_turnaround(pb::ReportTurnaroundRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn an_exchanged_units_faulty_original_is_overdue_once_after_the_return_days() {
    use pb::{RmaOutcome, RmaState, RmaStep};
    let app = App::start().await;
    let (clock, pool) = (app.clock.clone(), app.pool.clone());
    let as_ = |subject: &str, roles: &[&str], region: &str| app.client(subject, roles, region, "");
    let mut admin = as_("admin", &["admin"], "");
    let centre = admin
        .create_centre(pb::CreateCentreRequest {
            request_id: rid(),
            centre: Some(pb::Centre {
                code: "BR".into(),
                name: "分中心".into(),
                kind: CentreKind::Branch as i32,
                region: "华东".into(),
                address: "上海".into(),
                opening_hours: "09:00–18:00".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .centre
        .unwrap();
    let part = admin
        .create_part(pb::CreatePartRequest {
            request_id: rid(),
            part: Some(pb::Part {
                part_number: "UNIT".into(),
                name: "整机".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .part
        .unwrap();
    admin
        .receive_stock(pb::ReceiveStockRequest {
            request_id: rid(),
            centre_id: centre.id.clone(),
            part_id: part.id.clone(),
            quantity: 1,
            note: String::new(),
        })
        .await
        .unwrap();
    let customer = uuid::Uuid::new_v4().to_string();
    admin
        .register_delivery(pb::RegisterDeliveryRequest {
            request_id: rid(),
            delivery: Some(pb::Delivery {
                customer_id: customer.clone(),
                product_model: "X200".into(),
                serial_number: "SN-X".into(),
                quantity: 1,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let id = as_("agent", &["hotline_agent"], "")
        .request_rma(pb::RequestRmaRequest {
            request_id: rid(),
            rma: Some(pb::Rma {
                centre_id: centre.id.clone(),
                customer_id: customer,
                serial_number: "SN-X".into(),
                quantity: 1,
                reason: "坏".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .rma
        .unwrap()
        .id;
    let step = |s: RmaStep| pb::TransitionRmaRequest {
        request_id: rid(),
        id: id.clone(),
        step: s as i32,
        ..Default::default()
    };
    for (mut client, r) in [
        (
            as_("eng", &["engineer"], "华东"),
            pb::TransitionRmaRequest {
                fault_cause: "电源击穿".into(),
                customer_situation: "急用".into(),
                return_reason: "硬件故障".into(),
                qualifies: true,
                ..step(RmaStep::Diagnose)
            },
        ),
        (
            as_("tc", &["tech_center"], ""),
            pb::TransitionRmaRequest {
                note: "建议换机".into(),
                outcome: RmaOutcome::Exchange as i32,
                ..step(RmaStep::Judge)
            },
        ),
        (
            as_("boss", &["supervisor"], ""),
            pb::TransitionRmaRequest {
                note: "同意换机".into(),
                outcome: RmaOutcome::Exchange as i32,
                replacement_part_id: part.id.clone(),
                ..step(RmaStep::Decide)
            },
        ),
        (
            as_("ts", &["tech_support"], ""),
            pb::TransitionRmaRequest {
                carrier: "顺丰".into(),
                tracking_number: "SF1".into(),
                ..step(RmaStep::ShipReplacement)
            },
        ),
    ] {
        client.transition_rma(r).await.unwrap();
    }
    let get = |admin: &Client| {
        let (mut admin, id) = (admin.clone(), id.clone());
        async move {
            admin
                .get_rma(pb::GetRmaRequest { id })
                .await
                .unwrap()
                .into_inner()
                .rma
                .unwrap()
        }
    };
    let waiting = get(&admin).await;
    assert_eq!(waiting.state, RmaState::AwaitingReturn as i32);
    assert!(!waiting.return_overdue);
    // fourteen days (return_days) later the obligation is overdue, once
    clock.advance(time::Duration::days(15));
    testing::wait_until("the return is overdue", Duration::from_secs(20), || {
        let get = get(&admin);
        async move { get.await.return_overdue }
    })
    .await;
    clock.advance(time::Duration::days(15));
    testing::wait_until("no timer left", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM timers WHERE state = 'scheduled'")
                .fetch_one(&pool)
                .await
                .unwrap()
                == 0
        }
    })
    .await;
    let overdue: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE aggregate = $1 AND create_time > $2")
            .bind(format!("rmas/{id}"))
            .bind(datetime!(2026-12-01 00:00 UTC))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(overdue, 1, "the overdue return is announced once");
}
