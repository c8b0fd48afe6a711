//! Tokens, rights and the sales reps' scope (G-2).

use super::*;

#[tokio::test]
async fn calls_without_a_valid_token_or_right_are_refused() {
    let app = spawn_app().await;
    let get = pb::GetCustomerRequest {
        id: uuid::Uuid::now_v7().to_string(),
    };

    let mut anonymous = CustomerServiceClient::new(app.channel.clone());
    let status = anonymous.get_customer(get.clone()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let expired = testing::token(
        &app.settings,
        &TestCaller {
            subject: "admin.test",
            roles: &["admin"],
            ..Default::default()
        },
        -10,
    );
    let mut client =
        CustomerServiceClient::with_interceptor(app.channel.clone(), Bearer::new(&expired));
    let status = client.get_customer(get.clone()).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unauthenticated, "unauthenticated: token expired")
    );

    let mut forged = testing::test_env().await.settings; // another signing key, same key id
    forged.auth.issuer.clone_from(&app.settings.auth.issuer);
    let token = testing::token(
        &forged,
        &TestCaller {
            subject: "x",
            roles: &["admin"],
            ..Default::default()
        },
        60,
    );
    let mut client =
        CustomerServiceClient::with_interceptor(app.channel.clone(), Bearer::new(&token));
    assert_eq!(
        client.get_customer(get.clone()).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    // a partner has no right to customers; the denial names the missing right
    let status = app
        .as_caller("partner.a", &["partner"], "")
        .get_customer(get.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(
        status
            .message()
            .contains("crm.customers.v1.CustomerService/GetCustomer"),
        "{}",
        status.message()
    );
    let status = app
        .as_caller("rep.a", &["sales_rep"], "华东")
        .delete_customer(pb::DeleteCustomerRequest {
            id: get.id.clone(),
            version: 0,
            request_id: rid(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(app.count("customers").await, 0);

    // health and reflection stay open for probes and tools
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
    health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_sales_rep_sees_their_region_and_their_own_customers_only() {
    let mut app = spawn_app().await;
    let mut own_elsewhere = sample("自己的华南客户");
    own_elsewhere.region = "华南".into();
    own_elsewhere.owner_id = "rep.a".into();
    app.create(own_elsewhere).await;
    let mut same_region = sample("华东同事的客户");
    same_region.owner_id = "rep.b".into();
    app.create(same_region).await;
    let mut other = sample("华北别人的客户");
    other.region = "华北".into();
    other.owner_id = "rep.c".into();
    let other = app.create(other).await;

    let mut rep = app.as_caller("rep.a", &["sales_rep"], "华东");
    let listed: Vec<_> = rep
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .customers
        .into_iter()
        .map(|c| c.display_name)
        .collect();
    assert_eq!(listed, ["自己的华南客户", "华东同事的客户"]);

    let hidden = rep
        .get_customer(pb::GetCustomerRequest {
            id: other.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(hidden.code(), Code::NotFound);
    let update = pb::UpdateCustomerRequest {
        customer: Some(pb::Customer {
            id: other.id.clone(),
            version: other.version,
            industry: "x".into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["industry".into()],
        }),
    };
    assert_eq!(
        rep.update_customer(update).await.unwrap_err().code(),
        Code::NotFound
    );
    let stage = pb::ChangeCustomerStageRequest {
        request_id: rid(),
        customer_id: other.id.clone(),
        stage: pb::Stage::Potential.into(),
        reason: "x".into(),
        version: 0,
    };
    assert_eq!(
        rep.change_customer_stage(stage).await.unwrap_err().code(),
        Code::NotFound
    );

    // creating a customer outside the rep's scope is refused and writes nothing
    let mut foreign = sample("别区的新客户");
    foreign.region = "西南".into();
    foreign.owner_id = "rep.z".into();
    let status = rep
        .create_customer(pb::CreateCustomerRequest {
            request_id: rid(),
            customer: Some(foreign),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(app.count("customers").await, 3);

    // a tech-support user sees the customers they partner
    app.client
        .request_partner_change(pb::RequestPartnerChangeRequest {
            request_id: rid(),
            customer_id: other.id.clone(),
            proposed_partner_id: "ts.x".into(),
            reason: "first request".into(),
        })
        .await
        .unwrap();
    let mut ts = app.as_caller("ts.x", &["tech_support"], "");
    let seen: Vec<_> = ts
        .list_customers(pb::ListCustomersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .customers
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(seen, std::slice::from_ref(&other.id));
    let changes = ts
        .list_partner_changes(pb::ListPartnerChangesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert_eq!(changes.len(), 1);
    let none = rep
        .list_partner_changes(pb::ListPartnerChangesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert!(none.is_empty());
}
