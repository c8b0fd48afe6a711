//! The audit trail and the published events.

use super::*;

#[tokio::test]
async fn changes_are_audited_in_the_same_transaction_and_the_trail_is_append_only() {
    let mut app = spawn_app().await;
    let c = app.create(sample("审计客户")).await;
    change_stage(&mut app, &c.id, pb::Stage::Potential)
        .await
        .unwrap();
    app.client
        .get_customer(pb::GetCustomerRequest { id: c.id.clone() })
        .await
        .unwrap();
    // a refused change leaves no event
    change_stage(&mut app, &c.id, pb::Stage::InitialContact)
        .await
        .unwrap_err();
    let rows: Vec<(String, String, Vec<String>, String)> = sqlx::query_as(
        "SELECT method, resource, changed_fields, actor FROM audit_events ORDER BY event_time, id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let resource = format!("customers/{}", c.id);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].0, "crm.customers.v1.CustomerService/CreateCustomer");
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        (
            "crm.customers.v1.CustomerService/ChangeCustomerStage",
            resource.as_str()
        )
    );
    assert_eq!(rows[1].2, ["stage"]);
    assert_eq!(rows[1].3, "admin.test");
    for sql in [
        "UPDATE audit_events SET actor = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ] {
        let e = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&app.pool)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
}

#[tokio::test]
async fn stage_and_partner_changes_are_published_with_their_change() {
    let mut app = spawn_app().await;
    let c = app.create(sample("事件客户")).await;
    change_stage(&mut app, &c.id, pb::Stage::Potential)
        .await
        .unwrap();
    let first = request_partner(&mut app, &c.id, "ts.li").await.unwrap();
    let pending = request_partner(&mut app, &c.id, "ts.wang").await.unwrap();
    app.client
        .reject_partner_change(pb::RejectPartnerChangeRequest {
            request_id: rid(),
            id: pending.id.clone(),
            reason: "no".into(),
        })
        .await
        .unwrap();
    // a refused change publishes nothing
    change_stage(&mut app, &c.id, pb::Stage::InitialContact)
        .await
        .unwrap_err();
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT topic, aggregate FROM outbox ORDER BY seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let aggregate = format!("customers/{}", c.id);
    assert_eq!(rows, vec![("customers".to_string(), aggregate.clone()); 5]);
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let events: Vec<crm_proto::events::v1::Event> = envelopes
        .iter()
        .map(|e| <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap())
        .collect();
    let types: Vec<_> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "customers.customer_changed",
            "customers.stage_changed",
            "customers.partner_change_requested",
            "customers.partner_change_requested",
            "customers.partner_change_decided"
        ]
    );
    let data = |i: usize| -> pb::CustomerEvent {
        prost::Message::decode(events[i].payload.as_ref().unwrap().value.as_slice()).unwrap()
    };
    assert_eq!(
        events[1].payload.as_ref().unwrap().type_url,
        "type.googleapis.com/crm.customers.v1.CustomerEvent"
    );
    let stage = data(1);
    assert_eq!(stage.stage_change.unwrap().to_stage(), pb::Stage::Potential);
    assert_eq!(
        stage.customer.as_ref().unwrap().stage(),
        pb::Stage::Potential
    );
    let initial = data(2);
    assert_eq!(initial.partner_change.unwrap().id, first.id);
    assert_eq!(
        initial.customer.unwrap().tech_partner_id,
        "ts.li",
        "the customer as it is after the change"
    );
    let rejected = data(4);
    assert_eq!(
        rejected.partner_change.unwrap().state(),
        pb::PartnerChangeState::Rejected
    );
    assert_eq!(rejected.customer.unwrap().tech_partner_id, "ts.li");
    assert!(events.iter().all(|e| e.actor == "admin.test"));
    // the service's relay moves them to its stream
    testing::wait_until(
        "the relay to publish",
        std::time::Duration::from_secs(10),
        || async {
            sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox WHERE publish_time IS NULL")
                .fetch_one(&app.pool)
                .await
                .unwrap()
                == 0
        },
    )
    .await;
}
