//! Scheduled care and reminders (N-5).

use super::*;

#[tokio::test]
async fn signed_customers_get_care_every_two_weeks_and_owners_one_reminder_per_overdue_contact() {
    let mut app = spawn_app().await;
    let signed = app.create(sample("关怀客户")).await;
    for stage in [
        pb::Stage::Potential,
        pb::Stage::Target,
        pb::Stage::Trial,
        pb::Stage::Signed,
    ] {
        change_stage(&mut app, &signed.id, stage).await.unwrap();
    }
    let prospect = app.create(sample("潜在客户")).await;
    // the prospect's next contact is two days ago
    let today = app.clock.today();
    app.client
        .create_communication(pb::CreateCommunicationRequest {
            request_id: rid(),
            customer_id: prospect.id.clone(),
            communication: Some(pb::Communication {
                kind: pb::CommunicationKind::Call.into(),
                summary: "called".into(),
                next_contact_date: Some(date(today - time::Duration::days(2))),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let is = |kind: &'static str| move |e: &(String, String)| e.0 == kind;
    // the jobs ran when the service started, before these customers existed; the next scan
    // is an hour later
    app.clock.advance(time::Duration::hours(1));
    let pool = app.pool.clone();
    testing::wait_until("the first scan", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            let events = published(&pool).await;
            events.iter().any(is("customers.care_due"))
                && events.iter().any(is("customers.next_contact_overdue"))
        }
    })
    .await;
    let events = published(&app.pool).await;
    let care: Vec<_> = events
        .iter()
        .filter(|e| is("customers.care_due")(e))
        .collect();
    let overdue: Vec<_> = events
        .iter()
        .filter(|e| is("customers.next_contact_overdue")(e))
        .collect();
    assert_eq!(
        care,
        vec![&("customers.care_due".to_string(), signed.id.clone())]
    );
    assert_eq!(
        overdue,
        vec![&(
            "customers.next_contact_overdue".to_string(),
            prospect.id.clone()
        )]
    );

    // an hour later the jobs look again: nothing is due, nothing is repeated
    let runs = job_runs(&app.pool).await;
    app.clock.advance(time::Duration::hours(1));
    let pool = app.pool.clone();
    testing::wait_until(
        "the second scan",
        std::time::Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move { job_runs(&pool).await >= runs + 2 }
        },
    )
    .await;
    assert_eq!(published(&app.pool).await.len(), events.len());

    // two weeks on, the next care message; the same overdue date is not reminded again
    app.clock.advance(time::Duration::days(14));
    let pool = app.pool.clone();
    testing::wait_until(
        "the care two weeks on",
        std::time::Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move {
                published(&pool)
                    .await
                    .iter()
                    .filter(|e| e.0 == "customers.care_due")
                    .count()
                    == 2
            }
        },
    )
    .await;
    let runs = job_runs(&app.pool).await;
    app.clock.advance(time::Duration::hours(1));
    let pool = app.pool.clone();
    testing::wait_until("another scan", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move { job_runs(&pool).await >= runs + 2 }
    })
    .await;
    let events = published(&app.pool).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.0 == "customers.next_contact_overdue")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.0 == "customers.care_due")
            .count(),
        2
    );
}
