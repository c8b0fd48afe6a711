//! Assignment to sales reps (C-3).

use super::*;

#[tokio::test]
async fn customers_are_assigned_fairly_or_by_hand_all_or_nothing_and_every_change_is_recorded() {
    let mut app = spawn_app().await;
    for (id, region) in [
        ("rep.b", "华东"),
        ("rep.a", "华东"),
        ("rep.c", "华北"),
        ("rep.old", "华东"),
    ] {
        app.announce_user(id, "sales_rep", region).await;
    }
    // rep.old moves to management: no longer a rep
    app.announce_user("rep.old", "sales_manager", "华东").await;
    let unassigned = |name: &str, region: &str| {
        let mut c = sample(name);
        c.owner_id.clear();
        c.region = region.into();
        c
    };
    // rep.a already has one open customer in 华东
    let mut owned = sample("已有客户");
    owned.owner_id = "rep.a".into();
    app.create(owned).await;
    let x1 = app.create(unassigned("客户一", "华东")).await;
    let x2 = app.create(unassigned("客户二", "华东")).await;
    let x3 = app.create(unassigned("客户三", "华东")).await;
    let y1 = app.create(unassigned("客户四", "华北")).await;
    let listed = app
        .client
        .list_customers(pb::ListCustomersRequest {
            filter: Some(pb::CustomerFilter {
                unassigned: true,
                ..Default::default()
            }),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .customers;
    assert_eq!(listed.len(), 4);
    let mut manager = app.as_caller("manager.li", &["sales_manager"], "");
    let assign =
        |ids: &[&pb::Customer], mode: pb::AssignmentMode, owner: &str| pb::AssignCustomersRequest {
            request_id: rid(),
            customer_ids: ids.iter().map(|c| c.id.clone()).collect(),
            mode: mode.into(),
            owner_id: owner.into(),
            reason: if owner.is_empty() {
                String::new()
            } else {
                "客户要求更换对接人".into()
            },
        };
    // fairly: the fewest open customers in the region first, ties by id, loads kept current
    let done = manager
        .assign_customers(assign(&[&x1, &x2, &x3, &y1], pb::AssignmentMode::Auto, ""))
        .await
        .unwrap()
        .into_inner()
        .assignments;
    let owners: Vec<&str> = done.iter().map(|a| a.to_owner_id.as_str()).collect();
    assert_eq!(owners, ["rep.b", "rep.a", "rep.b", "rep.c"]);
    assert_eq!(done[0].rule, "fair: fewest open customers in 华东 (0)");
    assert_eq!(
        app.owners(&[&x1, &x2, &x3, &y1]).await,
        ["rep.b", "rep.a", "rep.b", "rep.c"]
    );
    // by hand: only a rep of the customer's region
    let e = manager
        .assign_customers(assign(&[&x1], pb::AssignmentMode::ToOwner, "rep.c"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("works in region 华北"),
        "{}",
        e.message()
    );
    let e = manager
        .assign_customers(assign(&[&x1], pb::AssignmentMode::ToOwner, "rep.old"))
        .await
        .unwrap_err();
    assert!(e.message().contains("not a sales rep"), "{}", e.message());
    manager
        .assign_customers(assign(&[&x1], pb::AssignmentMode::ToOwner, "rep.a"))
        .await
        .unwrap();
    let changes = manager
        .list_owner_changes(pb::ListOwnerChangesRequest {
            customer_id: x1.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let seen: Vec<(&str, &str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c.from_owner_id.as_str(),
                c.to_owner_id.as_str(),
                c.rule.as_str(),
                c.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("", "rep.b", "fair: fewest open customers in 华东 (0)", ""),
            ("rep.b", "rep.a", "by hand", "客户要求更换对接人"),
        ]
    );
    assert_eq!(changes[1].changed.as_ref().unwrap().actor, "manager.li");
    // all or nothing: a customer of a region without reps fails the whole request
    let z = app.create(unassigned("客户五", "华南")).await;
    let e = manager
        .assign_customers(assign(&[&x2, &z], pb::AssignmentMode::ToOwner, "rep.b"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = manager
        .assign_customers(assign(&[&z], pb::AssignmentMode::Auto, ""))
        .await
        .unwrap_err();
    assert!(
        e.message().contains("no sales rep works in region 华南"),
        "{}",
        e.message()
    );
    assert_eq!(app.owners(&[&x2, &z]).await, ["rep.a", ""]);
    // bad requests name their fields; a sales rep may not assign
    let e = manager
        .assign_customers(pb::AssignCustomersRequest {
            request_id: rid(),
            mode: pb::AssignmentMode::ToOwner.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["customer_ids", "owner_id"]);
    let e = app
        .as_caller("rep.a", &["sales_rep"], "华东")
        .assign_customers(assign(&[&z], pb::AssignmentMode::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}
