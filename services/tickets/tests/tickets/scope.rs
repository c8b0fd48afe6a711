//! Queues scoped by role and region (G-2).

use super::*;

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
