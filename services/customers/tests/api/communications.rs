//! The communication log and overdue next contacts (C-6).

use super::*;

#[tokio::test]
async fn communications_set_the_next_contact_and_overdue_ones_surface() {
    let mut app = spawn_app().await;
    let a = app.create(sample("北京华夏能源")).await;
    let b = app.create(sample("成都天府信息")).await;
    let mut other_owner = sample("Northwind Medical");
    other_owner.owner_id = "rep.smith".into();
    let c = app.create(other_owner).await;
    let log = |app: &mut App, id: &str, next: time::Date, summary: &str| {
        let mut client = app.client.clone();
        let request = pb::CreateCommunicationRequest {
            request_id: rid(),
            customer_id: id.to_string(),
            communication: Some(pb::Communication {
                kind: pb::CommunicationKind::Call.into(),
                summary: summary.into(),
                needs: "remote support".into(),
                concerns: "price".into(),
                next_contact_date: Some(date(next)),
                care_plan_step: "step 1".into(),
                ..Default::default()
            }),
        };
        async move {
            client
                .create_communication(request)
                .await
                .map(|r| r.into_inner().communication.unwrap())
        }
    };
    use time::macros::date as d;
    log(&mut app, &a.id, d!(2026 - 03 - 05), "first call")
        .await
        .unwrap();
    app.clock.advance(time::Duration::hours(1));
    log(&mut app, &a.id, d!(2026 - 03 - 10), "second call")
        .await
        .unwrap();
    log(&mut app, &b.id, d!(2026 - 03 - 04), "intro")
        .await
        .unwrap();
    log(&mut app, &c.id, d!(2026 - 03 - 03), "intro")
        .await
        .unwrap();

    let got = app
        .client
        .get_customer(pb::GetCustomerRequest { id: a.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(got.next_contact_date, Some(date(d!(2026 - 03 - 10))));
    let history = app
        .client
        .list_communications(pb::ListCommunicationsRequest {
            customer_id: a.id.clone(),
            page: Some(PageRequest {
                page_size: 1,
                page_token: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.communications[0].summary, "second call");
    let next = app
        .client
        .list_communications(pb::ListCommunicationsRequest {
            customer_id: a.id.clone(),
            page: Some(PageRequest {
                page_size: 1,
                page_token: history.page.unwrap().next_page_token,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next.communications[0].summary, "first call");
    assert!(next.page.unwrap().next_page_token.is_empty());

    let overdue = |app: &mut App| {
        let mut client = app.client.clone();
        async move {
            client
                .list_overdue_contacts(pb::ListOverdueContactsRequest {
                    owner_id: "rep.zhang".into(),
                    page: None,
                })
                .await
                .unwrap()
                .into_inner()
                .customers
                .into_iter()
                .map(|c| c.display_name)
                .collect::<Vec<_>>()
        }
    };
    assert!(
        overdue(&mut app).await.is_empty(),
        "nothing is overdue on 2 March"
    );
    app.clock.advance(time::Duration::days(3)); // 5 March: b (4 March) is overdue, a (10 March) not
    assert_eq!(overdue(&mut app).await, ["成都天府信息"]);
    app.clock.advance(time::Duration::days(10)); // 15 March: both, most overdue first
    assert_eq!(overdue(&mut app).await, ["成都天府信息", "北京华夏能源"]);

    let bad = log(&mut app, "not-an-id", d!(2026 - 03 - 05), "")
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), ["customer_id", "communication.summary"]);
    let unknown = log(
        &mut app,
        &uuid::Uuid::now_v7().to_string(),
        d!(2026 - 03 - 05),
        "x",
    )
    .await
    .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let missing_owner = app
        .client
        .list_overdue_contacts(pb::ListOverdueContactsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violations(&missing_owner), ["owner_id"]);
    assert_eq!(app.count("communications").await, 4);
}
