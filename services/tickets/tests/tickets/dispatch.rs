//! Dispatch to the usual engineer or the least-loaded one with parts (T-6).

use super::*;

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
