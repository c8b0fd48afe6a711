//! The same-day service record reminder (T-9).

use super::*;

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
