//! Queues and the engineer's steps; service records and second visits (T-3, T-7).

use super::*;

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
