//! Tech-support partners and the approval of a change (C-5).

use super::*;

#[tokio::test]
async fn the_first_partner_is_set_and_a_change_waits_for_approval() {
    let mut app = spawn_app().await;
    let c = app.create(sample("广州南方家电")).await;
    let first = request_partner(&mut app, &c.id, "ts.li").await.unwrap();
    assert_eq!(first.state(), pb::PartnerChangeState::Initial);
    let get = |app: &mut App| {
        let mut client = app.client.clone();
        let id = c.id.clone();
        async move {
            client
                .get_customer(pb::GetCustomerRequest { id })
                .await
                .unwrap()
                .into_inner()
                .customer
                .unwrap()
        }
    };
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.li");

    assert_eq!(
        request_partner(&mut app, &c.id, "ts.li")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let pending = request_partner(&mut app, &c.id, "ts.wang").await.unwrap();
    assert_eq!(pending.state(), pb::PartnerChangeState::Pending);
    assert_eq!(pending.current_partner_id, "ts.li");
    // until approved the old partner stays, and a second request must wait
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.li");
    let second = request_partner(&mut app, &c.id, "ts.chen")
        .await
        .unwrap_err();
    assert_eq!(reason(&second), "PARTNER_CHANGE_PENDING");

    let rejected = app
        .client
        .reject_partner_change(pb::RejectPartnerChangeRequest {
            request_id: rid(),
            id: pending.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&rejected), ["reason"]);
    let approve = pb::ApprovePartnerChangeRequest {
        request_id: rid(),
        id: pending.id.clone(),
        reason: "ok".into(),
    };
    let approved = app
        .as_caller("mgr.zhou", &["sales_manager"], "")
        .approve_partner_change(approve)
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(approved.state(), pb::PartnerChangeState::Approved);
    assert_eq!(approved.decided.unwrap().actor, "mgr.zhou");
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.wang");

    // decided requests cannot be decided again; a new one can be rejected and changes nothing
    let twice = app
        .client
        .reject_partner_change(pb::RejectPartnerChangeRequest {
            request_id: rid(),
            id: pending.id.clone(),
            reason: "no".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&twice), "PARTNER_CHANGE_DECIDED");
    let another = request_partner(&mut app, &c.id, "ts.chen").await.unwrap();
    app.client
        .reject_partner_change(pb::RejectPartnerChangeRequest {
            request_id: rid(),
            id: another.id.clone(),
            reason: "keep the current partner".into(),
        })
        .await
        .unwrap();
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.wang");

    let listed = app
        .client
        .list_partner_changes(pb::ListPartnerChangesRequest {
            customer_id: c.id.clone(),
            state: 0,
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let states: Vec<_> = listed.iter().map(|c| c.state()).collect();
    use pb::PartnerChangeState::*;
    assert_eq!(states, [Initial, Approved, Rejected]);
    let unknown = app
        .client
        .approve_partner_change(pb::ApprovePartnerChangeRequest {
            request_id: rid(),
            id: uuid::Uuid::now_v7().to_string(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}
