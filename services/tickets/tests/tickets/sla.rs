//! Deadlines by tier in business time, warnings, breaches, pauses and tier changes (T-2, T-4, T-5).

use super::*;

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
