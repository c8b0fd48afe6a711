//! Intake: completeness before a hand-off, and the customer must exist (T-1).

use super::*;

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
