//! Create, read, update by mask, retries and soft delete (C-1).

use super::*;

#[tokio::test]
async fn create_then_get_returns_every_field() {
    let mut app = spawn_app().await;
    let created = app.create(sample("上海精工电子有限公司")).await;
    assert_eq!(created.stage(), pb::Stage::InitialContact);
    assert_eq!(created.version, 1);
    assert_eq!(created.created.as_ref().unwrap().actor, "admin.test");
    let got = app
        .client
        .get_customer(pb::GetCustomerRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(got, created);
    assert_eq!(got.contacts[0].phone, "+86 138-0013-8000");
    assert_eq!(got.tags, ["制造"]);
    assert_eq!(got.tier(), pb::Tier::Core);
}

#[tokio::test]
async fn the_caller_is_recorded() {
    let app = spawn_app().await;
    let request = pb::CreateCustomerRequest {
        request_id: rid(),
        customer: Some(sample("Contoso")),
    };
    let c = app
        .as_caller("rep.li", &["sales_rep"], "华东")
        .create_customer(request)
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(c.created.unwrap().actor, "rep.li");
}

#[tokio::test]
async fn bad_input_names_every_field_and_writes_nothing() {
    let mut app = spawn_app().await;
    let mut bad = sample("");
    bad.region = String::new();
    bad.contacts[0].email = "no-at-sign".into();
    bad.contacts[0].phone = "12".into();
    bad.blacklisted = true;
    bad.validity = pb::Validity::Invalid.into();
    bad.investment_cny = -1;
    let status = app
        .client
        .create_customer(pb::CreateCustomerRequest {
            request_id: String::new(),
            customer: Some(bad),
        })
        .await
        .unwrap_err();
    assert_eq!(
        violations(&status),
        [
            "request_id",
            "customer.display_name",
            "customer.region",
            "customer.contacts[0].phone",
            "customer.contacts[0].email",
            "customer.investment_cny",
            "customer.blacklist_reason",
            "customer.invalid_reason",
        ]
    );
    assert_eq!(app.count("customers").await, 0);
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("idempotency_keys").await, 0);

    // one text and phone rule for the platform: a letter O for a zero, a NUL, a BEL
    let mut bad = sample("有字母的电话公司");
    bad.contacts[0].phone = "1380013800O".into();
    bad.contacts[0].name = "李\0娜".into();
    bad.address = "响铃\u{7}路".into();
    let status = app
        .client
        .create_customer(pb::CreateCustomerRequest {
            request_id: uuid::Uuid::new_v4().to_string(),
            customer: Some(bad),
        })
        .await
        .unwrap_err();
    let fields = violations(&status);
    for field in [
        "customer.contacts[0].phone",
        "customer.contacts[0].name",
        "customer.address",
    ] {
        assert!(fields.contains(&field.to_string()), "{field} in {fields:?}");
    }
    assert_eq!(app.count("customers").await, 0);
}

#[tokio::test]
async fn a_retried_create_returns_the_first_result_and_writes_nothing() {
    let mut app = spawn_app().await;
    let request = pb::CreateCustomerRequest {
        request_id: "retry-1".into(),
        customer: Some(sample("杭州云帆软件")),
    };
    let first = app
        .client
        .create_customer(request.clone())
        .await
        .unwrap()
        .into_inner();
    app.clock.advance(time::Duration::minutes(5));
    let again = app
        .client
        .create_customer(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, again);
    assert_eq!(app.count("customers").await, 1);

    // the same id for a different request is a client bug, not a retry
    let mut other = request;
    other.customer.as_mut().unwrap().display_name = "another company".into();
    let status = app.client.create_customer(other).await.unwrap_err();
    assert_eq!(violations(&status), ["request_id"]);
    assert_eq!(app.count("customers").await, 1);
}

#[tokio::test]
async fn concurrent_retries_create_one_customer() {
    let app = spawn_app().await;
    let request = pb::CreateCustomerRequest {
        request_id: "storm".into(),
        customer: Some(sample("并发公司")),
    };
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut client = app.client.clone();
        let request = request.clone();
        tasks.push(tokio::spawn(async move {
            client.create_customer(request).await.unwrap().into_inner()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().customer.unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(app.count("customers").await, 1);
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let mut app = spawn_app().await;
    let status = app
        .client
        .get_customer(pb::GetCustomerRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason(&status), "NOT_FOUND");
    let status = app
        .client
        .get_customer(pb::GetCustomerRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), ["id"]);
}

#[tokio::test]
async fn update_changes_only_masked_fields_and_checks_the_version() {
    let mut app = spawn_app().await;
    let c = app.create(sample("南京长江物流")).await;
    let patch = pb::Customer {
        id: c.id.clone(),
        version: c.version,
        industry: "logistics".into(),
        region: "should not change".into(),
        tags: vec!["物流".into(), "VIP候选".into()],
        ..Default::default()
    };
    let mask = FieldMask {
        paths: vec!["industry".into(), "tags".into()],
    };
    let updated = app
        .client
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch.clone()),
            update_mask: Some(mask.clone()),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(updated.industry, "logistics");
    assert_eq!(updated.tags, ["物流", "VIP候选"]);
    assert_eq!(updated.region, "华东");
    assert_eq!(updated.display_name, c.display_name);
    assert_eq!(updated.version, 2);

    // the same patch again carries version 1, which is stale now
    let status = app
        .client
        .update_customer(pb::UpdateCustomerRequest {
            customer: Some(patch),
            update_mask: Some(mask),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(reason(&status), "STALE_VERSION");
    let now = app
        .client
        .get_customer(pb::GetCustomerRequest { id: c.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(now, updated);
}

#[tokio::test]
async fn update_rejects_bad_masks_and_invalid_results() {
    let mut app = spawn_app().await;
    let c = app.create(sample("天津港湾机械")).await;
    let cases: &[(&[&str], pb::Customer, &[&str])] = &[
        (&[], pb::Customer::default(), &["update_mask"]),
        (&["stage"], pb::Customer::default(), &["update_mask"]),
        (
            &["tech_partner_id"],
            pb::Customer::default(),
            &["update_mask"],
        ),
        (
            &["no_such_field"],
            pb::Customer::default(),
            &["update_mask"],
        ),
        (
            &["blacklisted"],
            pb::Customer {
                blacklisted: true,
                ..Default::default()
            },
            &["customer.blacklist_reason"],
        ),
        (
            &["display_name"],
            pb::Customer::default(),
            &["customer.display_name"],
        ),
        (
            &["contacts"],
            pb::Customer {
                contacts: vec![pb::Contact {
                    name: "x".into(),
                    ..Default::default()
                }],
                ..Default::default()
            },
            &["customer.contacts[0].phone"],
        ),
    ];
    for (paths, patch, expected) in cases {
        let mut patch = patch.clone();
        patch.id = c.id.clone();
        patch.version = c.version;
        let status = app
            .client
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(patch),
                update_mask: Some(FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
            })
            .await
            .unwrap_err();
        assert_eq!(violations(&status), *expected, "mask {paths:?}");
    }
    let missing_version = pb::UpdateCustomerRequest {
        customer: Some(pb::Customer {
            id: c.id.clone(),
            industry: "x".into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["industry".into()],
        }),
    };
    assert_eq!(
        violations(
            &app.client
                .update_customer(missing_version)
                .await
                .unwrap_err()
        ),
        ["customer.version"]
    );
    let unchanged = app
        .client
        .get_customer(pb::GetCustomerRequest { id: c.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(unchanged, c);
}

#[tokio::test]
async fn delete_is_soft_and_hides_the_customer() {
    let mut app = spawn_app().await;
    let c = app.create(sample("石家庄康宁医药")).await;
    let stale = app
        .client
        .delete_customer(pb::DeleteCustomerRequest {
            id: c.id.clone(),
            version: 7,
            request_id: rid(),
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let request = pb::DeleteCustomerRequest {
        id: c.id.clone(),
        version: c.version,
        request_id: rid(),
    };
    app.client.delete_customer(request.clone()).await.unwrap();
    // a retry of the same delete answers as the first did
    app.client.delete_customer(request).await.unwrap();
    let status = app
        .client
        .get_customer(pb::GetCustomerRequest { id: c.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(app.list(pb::CustomerFilter::default()).await.is_empty());
    let kept: (String, bool) =
        sqlx::query_as("SELECT deleted_by, delete_time IS NOT NULL FROM customers WHERE id = $1")
            .bind(uuid::Uuid::parse_str(&c.id).unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept, ("admin.test".to_string(), true));
    let again = app
        .client
        .delete_customer(pb::DeleteCustomerRequest {
            id: c.id.clone(),
            version: 0,
            request_id: rid(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
}
