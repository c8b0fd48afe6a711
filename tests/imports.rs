//! Import to assignment across the platform, through the gateway (C-2, C-3): a data clerk
//! streams a customer file through the gateway; each region's sales manager hears of the new
//! customers in the inbox; the manager assigns them fairly among the region's sales reps, who
//! reached the customers service by the gateway's user events.

use std::time::Duration;

use crm_kit::{Clock, testing};
use crm_proto::{
    customers::v1::{self as pb, customer_service_client::CustomerServiceClient},
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
    notifications::v1::{self as npb, notification_service_client::NotificationServiceClient},
};
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";

async fn token(gateway: &Channel, username: &str) -> String {
    AuthServiceClient::new(gateway.clone())
        .login(gw::LoginRequest {
            username: username.into(),
            password: PASSWORD.into(),
        })
        .await
        .expect("login")
        .into_inner()
        .access_token
}

#[tokio::test]
async fn an_imported_file_reaches_the_regions_manager_who_assigns_it_fairly() {
    let env = testing::test_env().await;
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let identity = crm::admin::identity(&running.settings).await.unwrap();
    let mut ids = std::collections::BTreeMap::new();
    for (name, role, region) in [
        ("clerk", "data_clerk", ""),
        ("manager.east", "sales_manager", "华东"),
        ("manager.north", "sales_manager", "华北"),
        ("rep.a", "sales_rep", "华东"),
        ("rep.b", "sales_rep", "华东"),
    ] {
        let user = gw::User {
            username: name.into(),
            display_name: format!("{name} (test)"),
            roles: vec![role.into()],
            region: region.into(),
            language: "zh".into(),
            ..Default::default()
        };
        let created =
            crm::admin::create_user(&identity, &format!("seed-{name}"), user, PASSWORD, "test")
                .await
                .unwrap();
        ids.insert(name, created.id);
    }
    let gateway = running.channel("gateway").await;

    // the clerk streams the file through the gateway, in pieces
    let file = "客户名称,区域,联系人,联系电话,累计投资\n\
                甲公司,华东,张一,13900000001,1000000\n\
                乙公司,华东,张二,13900000002,\n\
                丙公司,华东,张三,13900000003,\n\
                丁公司,华东,张四,13900000004,\n";
    let mut messages = vec![pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Header(pb::ImportHeader {
            request_id: "e2e-import".into(),
            file_name: "华东客户.csv".into(),
        })),
    }];
    for piece in file.as_bytes().chunks(20) {
        messages.push(pb::UploadImportRequest {
            part: Some(pb::upload_import_request::Part::Chunk(piece.to_vec())),
        });
    }
    let clerk = token(&gateway, "clerk").await;
    let mut clerk_c =
        CustomerServiceClient::with_interceptor(gateway.clone(), testing::Bearer::new(&clerk));
    let import = clerk_c
        .upload_import(tokio_stream::iter(messages))
        .await
        .expect("upload through the gateway")
        .into_inner()
        .import
        .unwrap();
    assert_eq!(
        (import.state(), import.accepted),
        (pb::ImportState::Done, 4)
    );

    // the tickets service learns the new customers' tiers from the batch's one event
    let tickets = crm_kit::db::connect(&running.settings.database, "tickets")
        .await
        .unwrap();
    let mut report = clerk_c
        .list_import_rows(pb::ListImportRowsRequest {
            import_id: import.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    report.sort_by_key(|r| r.row_number);
    let vip = uuid::Uuid::parse_str(&report[0].customer_id).unwrap();
    testing::wait_until(
        "the tiers at the tickets service",
        Duration::from_secs(20),
        || {
            let tickets = tickets.clone();
            async move {
                let tiers: Vec<(uuid::Uuid, String)> =
                    sqlx::query_as("SELECT customer_id, tier FROM customer_tiers")
                        .fetch_all(&tickets)
                        .await
                        .unwrap();
                tiers.len() == 4 && tiers.contains(&(vip, "vip".to_string()))
            }
        },
    )
    .await;

    // the manager of 华东 is told, the manager of 华北 not
    let manager = token(&gateway, "manager.east").await;
    let inbox = NotificationServiceClient::with_interceptor(
        gateway.clone(),
        testing::Bearer::new(&manager),
    );
    testing::wait_until("the manager's inbox", Duration::from_secs(20), || {
        let mut inbox = inbox.clone();
        async move {
            inbox
                .list_inbox(npb::ListInboxRequest::default())
                .await
                .unwrap()
                .into_inner()
                .items
                .iter()
                .any(|i| i.subject.contains("华东 新增 4 个待分配客户"))
        }
    })
    .await;
    let north = token(&gateway, "manager.north").await;
    let north_inbox =
        NotificationServiceClient::with_interceptor(gateway.clone(), testing::Bearer::new(&north))
            .list_inbox(npb::ListInboxRequest::default())
            .await
            .unwrap()
            .into_inner()
            .items;
    assert!(north_inbox.is_empty());

    // the manager assigns the unassigned customers fairly: two each
    let mut manager_c =
        CustomerServiceClient::with_interceptor(gateway.clone(), testing::Bearer::new(&manager));
    let unassigned: Vec<String> = manager_c
        .list_customers(pb::ListCustomersRequest {
            filter: Some(pb::CustomerFilter {
                unassigned: true,
                region: "华东".into(),
                ..Default::default()
            }),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .customers
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(unassigned.len(), 4);
    // the reps reach the customers service through the gateway's user events
    let request = pb::AssignCustomersRequest {
        request_id: "e2e-assign".into(),
        customer_ids: unassigned,
        mode: pb::AssignmentMode::Auto.into(),
        ..Default::default()
    };
    let c = manager_c.clone();
    testing::wait_until("the fair assignment", Duration::from_secs(20), || {
        let mut c = c.clone();
        let r = request.clone();
        async move { c.assign_customers(r).await.is_ok() }
    })
    .await;
    let assigned = manager_c
        .assign_customers(request)
        .await
        .unwrap()
        .into_inner()
        .assignments;
    let mut per_rep = std::collections::BTreeMap::new();
    for a in &assigned {
        *per_rep.entry(a.to_owner_id.clone()).or_insert(0) += 1;
    }
    assert_eq!(
        per_rep.into_iter().collect::<Vec<_>>(),
        [(ids["rep.a"].clone(), 2), (ids["rep.b"].clone(), 2)]
            .into_iter()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}
