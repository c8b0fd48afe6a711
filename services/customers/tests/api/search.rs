//! Search by every criterion and paging (C-10).

use super::*;

#[tokio::test]
async fn search_by_every_criterion() {
    let mut app = spawn_app().await;
    let mut a = sample("上海精工电子有限公司");
    a.tags = vec!["制造".into(), "参考客户".into()];
    app.create(a).await;
    let mut b = sample("ＡＢＣ Technology Co., Ltd.");
    b.region = "华南".into();
    b.owner_id = "rep.huang".into();
    b.reference_account = true; // VIP
    b.contacts[0].phone = "020 3888 9999".into();
    b.tags = vec!["外贸".into()];
    let b = app.create(b).await;
    let mut c = sample("杭州精工机械");
    c.contacts[0].phone = "0571-1234-5678".into();
    app.create(c).await;
    change_stage(&mut app, &b.id, pb::Stage::Potential)
        .await
        .unwrap();

    let f = pb::CustomerFilter::default;
    assert_eq!(
        app.list(pb::CustomerFilter {
            name_contains: "精工".into(),
            ..f()
        })
        .await,
        ["上海精工电子有限公司", "杭州精工机械"]
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            name_contains: "abc tech".into(),
            ..f()
        })
        .await,
        ["ＡＢＣ Technology Co., Ltd."]
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            name_contains: "100%".into(),
            ..f()
        })
        .await,
        Vec::<String>::new()
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            phone: "+86 (20) 38889999".into(),
            ..f()
        })
        .await,
        ["ＡＢＣ Technology Co., Ltd."]
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            phone: "13800138000".into(),
            ..f()
        })
        .await,
        ["上海精工电子有限公司"]
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            region: "华南".into(),
            ..f()
        })
        .await,
        ["ＡＢＣ Technology Co., Ltd."]
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            owner_id: "rep.zhang".into(),
            ..f()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            tier: pb::Tier::Vip.into(),
            ..f()
        })
        .await,
        ["ＡＢＣ Technology Co., Ltd."]
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            stage: pb::Stage::InitialContact.into(),
            ..f()
        })
        .await
        .len(),
        2
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            tag: "参考客户".into(),
            ..f()
        })
        .await,
        ["上海精工电子有限公司"]
    );
    assert_eq!(
        app.list(pb::CustomerFilter {
            region: "华东".into(),
            name_contains: "杭州".into(),
            ..f()
        })
        .await,
        ["杭州精工机械"]
    );
    let bad = app
        .client
        .list_customers(pb::ListCustomersRequest {
            filter: Some(pb::CustomerFilter {
                phone: "abc".into(),
                tier: 9,
                ..f()
            }),
            page: None,
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&bad), ["filter.phone", "filter.tier"]);
}

#[tokio::test]
async fn pages_cover_every_customer_once() {
    let mut app = spawn_app().await;
    let mut expected = Vec::new();
    for i in 0..23 {
        let name = format!("客户 {i:02}");
        app.create(sample(&name)).await;
        expected.push(name);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    let filter = pb::CustomerFilter {
        region: "华东".into(),
        ..Default::default()
    };
    loop {
        let r = app
            .client
            .list_customers(pb::ListCustomersRequest {
                filter: Some(filter.clone()),
                page: Some(PageRequest {
                    page_size: 5,
                    page_token: token.clone(),
                }),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(r.customers.len() <= 5);
        seen.extend(r.customers.into_iter().map(|c| c.display_name));
        token = r.page.unwrap().next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(seen, expected);

    // a token is bound to its filter
    let first = app
        .client
        .list_customers(pb::ListCustomersRequest {
            filter: Some(filter),
            page: Some(PageRequest {
                page_size: 5,
                page_token: String::new(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    let status = app
        .client
        .list_customers(pb::ListCustomersRequest {
            filter: Some(pb::CustomerFilter {
                region: "华南".into(),
                ..Default::default()
            }),
            page: Some(PageRequest {
                page_size: 5,
                page_token: first.page.unwrap().next_page_token,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&status), ["page.page_token"]);
}
