//! Escalations filtered, routed, timed and tracked (T-8).

use super::*;

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
