//! The notifications service against the real Postgres and Redis, with events published
//! through real outboxes and relays, and real HTTP and SMTP servers on the other end.

mod support;

use std::time::Duration;

use crm_kit::testing::{self, TestCaller};
use crm_proto::{
    audit::v1::{ListAuditEventsRequest, audit_service_client::AuditServiceClient},
    customers::v1 as customers,
    notifications::v1::{self as pb, Channel, DeliveryState},
};
use hmac::{Hmac, KeyInit, Mac};
use redis::AsyncCommands;
use sha2::Sha256;
use support::{App, customer, http_sink, smtp_server, spawn_app, user};
use tonic::Code;
use tonic_types::StatusExt;

fn field_violations(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

const MANAGER_EAST: &str = "u-manager-east";
const MANAGER_EUROPE: &str = "u-manager-europe";
const REP: &str = "u-rep";
const PARTNER: &str = "u-partner";

async fn directory(app: &App) {
    app.announce_user(user(
        MANAGER_EAST,
        &["sales_manager"],
        "华东",
        "east@example.com",
        "",
        "zh",
    ))
    .await;
    app.announce_user(user(
        MANAGER_EUROPE,
        &["sales_manager"],
        "europe",
        "eu@example.com",
        "",
        "en",
    ))
    .await;
    app.announce_user(user(
        REP,
        &["sales_rep"],
        "华东",
        "rep@example.com",
        "13900001111",
        "zh",
    ))
    .await;
    app.announce_user(user(
        PARTNER,
        &["tech_support"],
        "",
        "ts@example.com",
        "+86 137 0000 2222",
        "en",
    ))
    .await;
}

async fn partner_templates(app: &App) {
    let kind = "customers.partner_change_requested";
    app.template(
        "partner_change_requested",
        "zh",
        kind,
        "待审批：{{ customer_name }} 更换技术支持",
        "{{ recipient_name }}，{{ actor_name }} 申请将 {{ customer_name }} 的技术支持由 {{ current_partner_name }} 改为 {{ proposed_partner_name }}。",
        )
        .await;
    app.template(
        "partner_change_requested",
        "en",
        kind,
        "To approve: new partner for {{ customer_name }}",
        "{{ recipient_name }}, please decide on {{ proposed_partner_name }} for {{ customer_name }}.",
    )
    .await;
}

fn partner_request(customer_id: &str) -> customers::CustomerEvent {
    customers::CustomerEvent {
        customer: Some(customer(customer_id, "华东", REP, PARTNER)),
        stage_change: None,
        partner_change: Some(customers::PartnerChange {
            id: "pc-1".into(),
            customer_id: customer_id.into(),
            current_partner_id: PARTNER.into(),
            proposed_partner_id: "u-other".into(),
            reason: "closer to the site".into(),
            state: customers::PartnerChangeState::Pending as i32,
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn templates_are_checked_when_saved() {
    let app = spawn_app(|_| {}).await;
    let mut admin = app.admin.clone();
    let save = |body: &str, version: i64| pb::SaveTemplateRequest {
        template: Some(pb::Template {
            name: "stage_note".into(),
            language: "zh".into(),
            kind: "customers.stage_changed".into(),
            subject: "客户 {{ customer_name }}".into(),
            body: body.into(),
            ..Default::default()
        }),
        version,
    };
    // a variable the kind does not provide: refused now, naming the field and the variable
    let e = admin
        .save_template(save("{{ amount }} 元", 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&e), vec!["template.body".to_string()]);
    assert!(e.message().contains("{{ amount }}"), "{}", e.message());
    let e = admin
        .get_template(pb::GetTemplateRequest {
            name: "stage_note".into(),
            language: "zh".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "nothing was written");

    let saved = admin
        .save_template(save("{{ from_stage }} → {{ to_stage }}", 0))
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap();
    assert_eq!(saved.version, 1);
    assert_eq!(saved.updated.unwrap().actor, "admin.test");
    let e = admin
        .save_template(save("{{ to_stage }}", 7))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let again = admin
        .save_template(save("{{ to_stage }}", 1))
        .await
        .unwrap()
        .into_inner()
        .template
        .unwrap();
    assert_eq!(again.version, 2);

    let kinds = admin
        .list_kinds(pb::ListKindsRequest {})
        .await
        .unwrap()
        .into_inner()
        .kinds;
    let stage = kinds
        .iter()
        .find(|k| k.name == "customers.stage_changed")
        .unwrap();
    assert!(stage.variables.contains(&"to_stage".to_string()));

    // a sales rep may not edit templates (default-deny policy)
    let mut rep = app.client(&TestCaller {
        subject: REP,
        roles: &["sales_rep"],
        ..Default::default()
    });
    let e = rep
        .save_template(save("{{ to_stage }}", 0))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn an_event_becomes_inbox_items_and_emails_in_each_recipients_language_once() {
    let app = spawn_app(|_| {}).await;
    directory(&app).await;
    partner_templates(&app).await;
    let event_id = app
        .customer_event(
            "customers.partner_change_requested",
            partner_request("c-1"),
            false,
        )
        .await;

    let found = app.settled("customers.partner_change_requested", 1).await;
    assert_eq!(found.len(), 1);
    let n = &found[0];
    assert_eq!(n.event_id, event_id);
    assert_eq!(n.customer_id, "c-1");
    // the sales managers of the customer's region only (role:sales_manager, region 华东)
    let recipients: Vec<(&str, i32, i32)> = n
        .deliveries
        .iter()
        .map(|d| (d.recipient.as_str(), d.channel, d.state))
        .collect();
    assert_eq!(
        recipients,
        vec![
            (
                "user:u-manager-east",
                Channel::Email as i32,
                DeliveryState::Sent as i32
            ),
            (
                "user:u-manager-east",
                Channel::Inbox as i32,
                DeliveryState::Sent as i32
            ),
        ]
    );
    assert_eq!(
        n.deliveries[0].address, "e***@example.com",
        "addresses are masked"
    );
    assert_eq!(n.deliveries[0].language, "zh");

    // the manager's inbox, in Chinese, with the names from the directory
    let mut manager = app.client(&TestCaller {
        subject: MANAGER_EAST,
        roles: &["sales_manager"],
        region: "华东",
        ..Default::default()
    });
    let inbox = manager
        .list_inbox(pb::ListInboxRequest {
            unread_only: true,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.unread_count, 1);
    let item = &inbox.items[0];
    assert_eq!(item.subject, "待审批：上海精工电子有限公司 更换技术支持");
    assert!(
        item.body.starts_with("Name of u-manager-east，"),
        "{}",
        item.body
    );
    assert!(item.body.contains("Name of u-partner"), "{}", item.body);
    let marked = manager
        .mark_inbox_read(pb::MarkInboxReadRequest {
            ids: vec![item.id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .marked;
    assert_eq!(marked, 1);
    let inbox = manager
        .list_inbox(pb::ListInboxRequest {
            unread_only: true,
            page: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.unread_count, 0);
    assert!(inbox.items.is_empty());

    // another user's item is NOT_FOUND, and marks nothing
    let mut rep = app.client(&TestCaller {
        subject: REP,
        roles: &["sales_rep"],
        ..Default::default()
    });
    let e = rep
        .mark_inbox_read(pb::MarkInboxReadRequest {
            ids: vec![item.id.clone()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    // and the rep does not see the managers' notification
    let e = rep
        .get_notification(pb::GetNotificationRequest { id: n.id.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // the e-mail went to the development sink
    let sent = app.sent(Channel::Email).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].address, "east@example.com");
    assert_eq!(sent[0].subject, item.subject);

    // the same event delivered again (added to the stream a second time) is acted on once
    let envelope: Vec<u8> = sqlx::query_scalar("SELECT envelope FROM outbox WHERE id = $1::uuid")
        .bind(&event_id)
        .fetch_one(&app.customers)
        .await
        .unwrap();
    let mut redis = crm_kit::redis::connect(&app.settings.redis).await.unwrap();
    let stream = crm_kit::events::stream_key(&app.settings.redis.key_prefix, "customers");
    let _: String = redis
        .xadd(
            &stream,
            "*",
            &[("id", event_id.as_bytes()), ("e", envelope.as_slice())],
        )
        .await
        .unwrap();
    let marker = app
        .customer_event(
            "customers.partner_change_requested",
            partner_request("c-2"),
            false,
        )
        .await;
    let found = app.settled("customers.partner_change_requested", 2).await;
    assert_eq!(
        found.len(),
        2,
        "the duplicate made nothing; the next event did"
    );
    assert_eq!(found[0].event_id, marker);
}

#[tokio::test]
async fn urgent_events_reach_the_partner_by_inbox_and_sms_within_the_deadline() {
    let app = spawn_app(|_| {}).await;
    directory(&app).await;
    app.template(
        "partner_change_decided",
        "en",
        "customers.partner_change_decided",
        "You now support {{ customer_name }}",
        "{{ recipient_name }}: {{ customer_name }} ({{ tier }}) is yours, decided by {{ actor_name }}.",
    )
    .await;
    let mut event = partner_request("c-9");
    event.partner_change.as_mut().unwrap().state = customers::PartnerChangeState::Approved as i32;
    app.customer_event("customers.partner_change_decided", event, false)
        .await;
    let found = app.settled("customers.partner_change_decided", 1).await;
    let n = &found[0];
    assert!(n.urgent, "the rule marks it urgent");
    let deadline = n.deadline.expect("urgent messages have a deadline");
    let to_partner: Vec<&pb::Delivery> = n
        .deliveries
        .iter()
        .filter(|d| d.recipient == format!("user:{PARTNER}"))
        .collect();
    assert_eq!(to_partner.len(), 2, "inbox and SMS");
    for d in to_partner {
        assert_eq!(d.state, DeliveryState::Sent as i32, "{d:?}");
        assert!(!d.deadline_missed);
        let sent = d.sent_time.unwrap();
        assert!((sent.seconds, sent.nanos) <= (deadline.seconds, deadline.nanos));
        assert_eq!(d.language, "en");
    }
    let sms = app.sent(Channel::Sms).await;
    assert!(
        sms.iter()
            .any(|m| m.address == "+86 137 0000 2222" && m.body.contains("is yours"))
    );
    // the tech-support partner sees it in their inbox
    let inbox = app
        .client(&TestCaller {
            subject: PARTNER,
            roles: &["tech_support"],
            ..Default::default()
        })
        .list_inbox(pb::ListInboxRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.items.len(), 1);
    assert!(inbox.items[0].urgent);
}

#[tokio::test]
async fn a_missed_urgent_deadline_is_recorded() {
    // the SMS gateway is down; the deadline is one second
    let gateway = http_sink(usize::MAX).await;
    let app = spawn_app(|n| {
        n.urgent_deadline_s = 1;
        n.providers.sms = "http".into();
        n.sms_http.url = format!("http://{}/sms", gateway.addr);
        n.max_attempts = 1000;
        n.retry_base_ms = 100;
        n.retry_max_ms = 200;
    })
    .await;
    directory(&app).await;
    app.template(
        "partner_change_decided",
        "en",
        "customers.partner_change_decided",
        "You now support {{ customer_name }}",
        "{{ customer_name }}",
    )
    .await;
    app.customer_event(
        "customers.partner_change_decided",
        partner_request("c-3"),
        false,
    )
    .await;
    let pool = app.pool.clone();
    testing::wait_until("the miss is recorded", Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM deliveries WHERE channel = 'CHANNEL_SMS' \
                 AND deadline_missed AND sent_time IS NULL)",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    })
    .await;
    assert!(
        gateway.received.lock().unwrap().len() >= 2,
        "it kept trying"
    );
}

#[tokio::test]
async fn webhooks_are_signed_retried_with_back_off_and_fail_for_good_after_the_last_attempt() {
    let flaky = http_sink(2).await;
    let down = http_sink(usize::MAX).await;
    let app = spawn_app(|_| {}).await;
    let secret = "partner-secret-0123456789";
    for (partner, sink) in [("partner.flaky", &flaky), ("partner.down", &down)] {
        app.admin
            .clone()
            .set_partner_endpoint(pb::SetPartnerEndpointRequest {
                partner_id: partner.into(),
                url: format!("http://{}/hook", sink.addr),
                secret: secret.into(),
                language: "en".into(),
            })
            .await
            .unwrap();
    }
    app.manual(
        "partner_news",
        "en",
        "{{ title }}",
        "{{ text }}",
        &["title", "text"],
    )
    .await;
    let send = pb::SendNotificationRequest {
        request_id: "news-1".into(),
        template: "partner_news".into(),
        recipients: vec![
            pb::Recipient {
                target: Some(pb::recipient::Target::PartnerId("partner.flaky".into())),
            },
            pb::Recipient {
                target: Some(pb::recipient::Target::PartnerId("partner.down".into())),
            },
        ],
        channels: vec![Channel::Webhook as i32],
        variables: [
            ("title".to_string(), "Firmware 2.1".to_string()),
            ("text".to_string(), "Please update.".to_string()),
        ]
        .into(),
        urgent: false,
        customer_id: String::new(),
    };
    let first = app
        .admin
        .clone()
        .send_notification(send.clone())
        .await
        .unwrap()
        .into_inner();
    let retry = app
        .admin
        .clone()
        .send_notification(send)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first, retry, "a retried request sends nothing new");

    let found = app.settled("manual", 1).await;
    assert_eq!(found.len(), 1);
    let by = |r: &str| {
        found[0]
            .deliveries
            .iter()
            .find(|d| d.recipient == r)
            .cloned()
            .unwrap()
    };
    let ok = by("partner:partner.flaky");
    assert_eq!(ok.state, DeliveryState::Sent as i32);
    assert_eq!(ok.attempts, 3, "two failures, then success");
    let failed = by("partner:partner.down");
    assert_eq!(failed.state, DeliveryState::Failed as i32);
    assert_eq!(failed.attempts, 3, "max_attempts");
    assert_eq!(failed.last_error, "http status 500");

    // every attempt carried the same delivery id and a valid signature over its body
    let received = flaky.received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    for r in &received {
        assert_eq!(r.headers["x-crm-delivery"], ok.id.as_str());
        let header = r.headers["x-crm-signature"].to_str().unwrap();
        let (t, v1) = header.split_once(",v1=").unwrap();
        let t = t.strip_prefix("t=").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{t}.").as_bytes());
        mac.update(&r.body);
        mac.verify_slice(&hex::decode(v1).unwrap())
            .expect("signature verifies");
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["subject"], "Firmware 2.1");
    }
    // the back-off waited between attempts
    assert!(down.received.lock().unwrap().len() == 3);
}

#[tokio::test]
async fn email_goes_out_over_smtp() {
    let (port, mails) = smtp_server();
    let app = spawn_app(|n| {
        n.providers.email = "smtp".into();
        n.smtp.host = "127.0.0.1".into();
        n.smtp.port = port;
        n.smtp.security = "none".into();
        n.smtp.from = "CRM <crm@example.com>".into();
    })
    .await;
    app.manual(
        "hello",
        "zh",
        "您好 {{ recipient_name }}",
        "温馨速递：{{ text }}",
        &["text"],
    )
    .await;
    let sent = app
        .admin
        .clone()
        .send_notification(pb::SendNotificationRequest {
            request_id: "mail-1".into(),
            template: "hello".into(),
            recipients: vec![pb::Recipient {
                target: Some(pb::recipient::Target::Contact(pb::Contact {
                    name: "王晓明".into(),
                    email: "wang@example.com".into(),
                    ..Default::default()
                })),
            }],
            channels: vec![Channel::Email as i32],
            variables: [("text".to_string(), "设备运行良好".to_string())].into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    let found = app.settled("manual", 1).await;
    let d = &found[0].deliveries[0];
    assert_eq!(d.state, DeliveryState::Sent as i32, "{d:?}");
    assert_eq!(found[0].id, sent.id);
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["wang@example.com".to_string()]);
    let raw = String::from_utf8_lossy(&mails[0].data).to_string();
    assert!(
        raw.contains(&format!("Message-ID: <{}@crm.notifications>", d.id)),
        "{raw}"
    );
    assert!(raw.contains("From: CRM <crm@example.com>"), "{raw}");
}

#[tokio::test]
async fn opt_outs_suppress_delivery_and_are_audited() {
    let app = spawn_app(|_| {}).await;
    directory(&app).await;
    let mut admin = app.admin.clone();
    // bad input first: nothing written
    let e = admin
        .set_opt_out(pb::SetOptOutRequest {
            channel: Channel::Sms as i32,
            address: "not a phone".into(),
            opted_out: true,
            reason: String::new(),
            customer_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&e), vec!["address", "reason"]);

    admin
        .set_opt_out(pb::SetOptOutRequest {
            channel: Channel::Sms as i32,
            address: "+86 138-0013-8000".into(),
            opted_out: true,
            reason: "asked on the phone".into(),
            customer_id: "c-1".into(),
        })
        .await
        .unwrap();
    let listed = admin
        .list_opt_outs(pb::ListOptOutsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .opt_outs;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].address, "138****8000");

    // the customer's care message: SMS suppressed (the same number written differently), e-mail sent
    app.template(
        "care_biweekly",
        "zh",
        "customers.care_due",
        "温馨速递 {{ customer_name }}",
        "{{ recipient_name }} 您好，{{ customer_name }} 的设备运行情况……",
    )
    .await;
    let n = admin.clone();
    drop(n);
    app.customer_event(
        "customers.care_due",
        customers::CustomerEvent {
            customer: Some(customer("c-1", "华东", REP, "")),
            ..Default::default()
        },
        false,
    )
    .await;
    // the default rule sends care by e-mail; send an SMS too by hand to see the suppression
    app.manual(
        "care_sms",
        "zh",
        "温馨速递",
        "{{ recipient_name }} 您好",
        &[],
    )
    .await;
    let sms = admin
        .send_notification(pb::SendNotificationRequest {
            request_id: "care-sms-1".into(),
            template: "care_sms".into(),
            recipients: vec![pb::Recipient {
                target: Some(pb::recipient::Target::Contact(pb::Contact {
                    name: "王晓明".into(),
                    phone: "13800138000".into(),
                    ..Default::default()
                })),
            }],
            channels: vec![Channel::Sms as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(sms.deliveries[0].state, DeliveryState::Suppressed as i32);
    assert_eq!(sms.deliveries[0].suppressed_reason, "opted out");
    let care = app.settled("customers.care_due", 1).await;
    assert_eq!(care[0].deliveries.len(), 1);
    assert_eq!(care[0].deliveries[0].state, DeliveryState::Sent as i32);
    assert_eq!(care[0].deliveries[0].channel, Channel::Email as i32);

    // the opt-out is in the audit trail, without the number
    let mut audit = AuditServiceClient::with_interceptor(
        app.channel.clone(),
        crm_kit::testing::Bearer::new(&testing::token(
            &app.settings,
            &TestCaller {
                subject: "admin.test",
                roles: &["admin"],
                ..Default::default()
            },
            600,
        )),
    );
    let events = audit
        .list_audit_events(ListAuditEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events;
    let opt = events
        .iter()
        .find(|e| e.method.ends_with("/SetOptOut"))
        .expect("audited");
    assert_eq!(opt.resource, "opt_outs/CHANNEL_SMS/138****8000");
    assert!(!format!("{events:?}").contains("13800138000"));

    // opting back in lets SMS through again
    admin
        .set_opt_out(pb::SetOptOutRequest {
            channel: Channel::Sms as i32,
            address: "13800138000".into(),
            opted_out: false,
            reason: "asked again".into(),
            customer_id: "c-1".into(),
        })
        .await
        .unwrap();
    assert!(
        admin
            .list_opt_outs(pb::ListOptOutsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .opt_outs
            .is_empty()
    );

    // one number however it is written (issue 15): an opt-out entered as 8613800138000 stops a
    // message addressed to 0086-138-0013-8000
    admin
        .set_opt_out(pb::SetOptOutRequest {
            channel: Channel::Sms as i32,
            address: "8613800138000".into(),
            opted_out: true,
            reason: "asked by e-mail".into(),
            customer_id: "c-1".into(),
        })
        .await
        .unwrap();
    let sms = admin
        .send_notification(pb::SendNotificationRequest {
            request_id: "care-sms-2".into(),
            template: "care_sms".into(),
            recipients: vec![pb::Recipient {
                target: Some(pb::recipient::Target::Contact(pb::Contact {
                    name: "王晓明".into(),
                    phone: "0086-138-0013-8000".into(),
                    ..Default::default()
                })),
            }],
            channels: vec![Channel::Sms as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert_eq!(sms.deliveries[0].state, DeliveryState::Suppressed as i32);
}

#[tokio::test]
async fn bad_requests_are_refused_with_the_field_and_write_nothing() {
    let app = spawn_app(|_| {}).await;
    let mut admin = app.admin.clone();
    let e = admin
        .send_notification(pb::SendNotificationRequest {
            request_id: "bad-1".into(),
            template: "Bad Name".into(),
            recipients: vec![pb::Recipient { target: None }],
            channels: vec![],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        field_violations(&e),
        vec!["template", "recipients[0]", "channels"]
    );
    // a template that is not manual, and missing variables
    app.template(
        "stage_changed",
        "zh",
        "customers.stage_changed",
        "{{ customer_name }}",
        "{{ to_stage }}",
    )
    .await;
    let mut send = pb::SendNotificationRequest {
        request_id: "bad-2".into(),
        template: "stage_changed".into(),
        recipients: vec![pb::Recipient {
            target: Some(pb::recipient::Target::UserId(REP.into())),
        }],
        channels: vec![Channel::Inbox as i32],
        ..Default::default()
    };
    let e = admin.send_notification(send.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    app.manual("memo", "zh", "{{ title }}", "{{ title }}", &["title"])
        .await;
    send.request_id = "bad-3".into();
    send.template = "memo".into();
    let e = admin.send_notification(send.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(field_violations(&e), vec!["variables[title]"]);
    let e = admin
        .get_notification(pb::GetNotificationRequest { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
    // a user with no address for a channel gets a suppressed delivery, not an error
    send.request_id = "ok-1".into();
    send.variables = [("title".to_string(), "备忘".to_string())].into();
    send.channels = vec![Channel::Inbox as i32, Channel::Sms as i32];
    let n = admin
        .send_notification(send)
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    let states: Vec<i32> = n.deliveries.iter().map(|d| d.state).collect();
    assert_eq!(
        states,
        vec![DeliveryState::Sent as i32, DeliveryState::Suppressed as i32]
    );
}

#[tokio::test]
async fn a_sender_that_dies_holding_deliveries_loses_none() {
    let app = spawn_app(|n| n.lease_ms = 300).await;
    app.template("memo", "zh", "manual", "备忘", "内容").await;
    // another replica's sender makes and claims five deliveries in one transaction, then dies
    // before sending any: they are committed as being sent, under a lease that runs out
    let mut tx = app.pool.begin().await.unwrap();
    let draft = crm_notifications::sending::compose::Draft {
        kind: "manual".into(),
        template: "memo".into(),
        event_id: String::new(),
        customer_id: String::new(),
        urgent: false,
        deadline: None,
        variables: Default::default(),
        recipients: (0..5)
            .map(|i| {
                crm_notifications::rules::Recipient::Contact(crm_notifications::rules::Contact {
                    email: format!("c{i}@example.com"),
                    ..Default::default()
                })
            })
            .collect(),
        channels: vec![crm_notifications::rules::Channel::Email],
    };
    let now = time::OffsetDateTime::now_utc();
    crm_notifications::sending::compose::make(
        &mut tx,
        &draft,
        crm_notifications::rules::Language::Zh,
        now,
    )
    .await
    .unwrap();
    let held = crm_notifications::delivery::claim_due(
        &mut tx,
        now,
        now + time::Duration::milliseconds(300),
        100,
    )
    .await
    .unwrap();
    assert_eq!(held.len(), 5);
    tx.commit().await.unwrap();

    // the live sender takes them over once the lease has run out, and sends each once
    let found = app.settled("manual", 1).await;
    for d in &found[0].deliveries {
        assert_eq!(d.state, DeliveryState::Sent as i32, "{d:?}");
        assert_eq!(
            d.attempts, 2,
            "the dead sender's claim counts as an attempt"
        );
    }
    let sent: i64 = sqlx::query_scalar("SELECT count(*) FROM sink_messages")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(sent, 5);
}

#[tokio::test]
async fn an_event_naming_a_user_the_directory_lacks_waits_for_the_gateways_announcement() {
    let app = spawn_app(|_| {}).await;
    // the stage change of a customer owned by a user the gateway has not announced yet
    let event = customers::CustomerEvent {
        customer: Some(customer("c-late", "华东", "u-late", "")),
        stage_change: Some(customers::StageChange {
            from_stage: customers::Stage::Potential as i32,
            to_stage: customers::Stage::Target as i32,
            reason: "budget confirmed".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    app.customer_event("customers.stage_changed", event, false)
        .await;
    // it was delivered and failed: it waits, pending, with no message made
    let redis = crm_kit::redis::connect(&app.settings.redis).await.unwrap();
    let stream = crm_kit::events::stream_key(&app.settings.redis.key_prefix, "customers");
    let r = redis.clone();
    let key = stream.clone();
    testing::wait_until("the event to be pending", Duration::from_secs(10), || {
        let mut r = r.clone();
        let key = key.clone();
        async move {
            let pending: redis::streams::StreamPendingReply =
                r.xpending(&key, "notifications").await.unwrap_or_default();
            pending.count() == 1
        }
    })
    .await;
    let made: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(made, 0);
    // once the user is announced, it is handled, with the user's address
    app.announce_user(user(
        "u-late",
        &["sales_rep"],
        "华东",
        "late@example.com",
        "",
        "zh",
    ))
    .await;
    let found = app.settled("customers.stage_changed", 1).await;
    let inbox = found[0]
        .deliveries
        .iter()
        .find(|d| d.channel == Channel::Inbox as i32)
        .unwrap();
    assert_eq!(inbox.recipient, "user:u-late");
    assert_eq!(inbox.state, DeliveryState::Sent as i32);
}

#[tokio::test]
async fn a_missed_turnaround_reaches_the_centres_supervisor_or_else_its_regions() {
    use crm_proto::repairs::v1 as repairs;
    let app = spawn_app(|_| {}).await;
    for (id, region) in [
        ("sup.south", "华南"),
        ("sup.south.2", "华南"),
        ("sup.north", "华北"),
    ] {
        app.announce_user(user(id, &["supervisor"], region, "", "", "zh"))
            .await;
    }
    let breach = |centre: repairs::Centre| repairs::TurnaroundEvent {
        repair_order: Some(repairs::RepairOrder {
            id: uuid::Uuid::new_v4().to_string(),
            number: "R00000042".into(),
            centre_id: centre.id.clone(),
            serial_number: "SN-0001".into(),
            ..Default::default()
        }),
        centre: Some(centre),
    };
    let centre = |code: &str, supervisor: &str| repairs::Centre {
        id: uuid::Uuid::new_v4().to_string(),
        code: code.into(),
        name: format!("{code} 维修中心"),
        kind: repairs::CentreKind::Branch as i32,
        region: "华南".into(),
        supervisor_id: supervisor.into(),
        ..Default::default()
    };
    let mut sent = Vec::new();
    for c in [centre("SZ-01", "sup.south"), centre("GZ-01", "")] {
        let event = breach(c);
        let aggregate = format!("repair_orders/{}", event.repair_order.as_ref().unwrap().id);
        sent.push(
            app.publish(
                &app.repairs,
                "repairs",
                "repairs.turnaround_breached",
                &aggregate,
                crm_kit::events::Payload::of(&event),
                true,
            )
            .await,
        );
    }
    let found = app.settled("repairs.turnaround_breached", 2).await;
    let supervisors_told = |event_id: &str| {
        let mut who: Vec<String> = found
            .iter()
            .filter(|n| n.event_id == event_id)
            .flat_map(|n| n.deliveries.iter())
            .filter(|d| d.channel == Channel::Inbox as i32)
            .map(|d| d.recipient.clone())
            .collect();
        who.sort();
        who
    };
    // the centre's own supervisor alone; a centre without one: its region's, not the north's
    assert_eq!(supervisors_told(&sent[0]), vec!["user:sup.south"]);
    assert_eq!(
        supervisors_told(&sent[1]),
        vec!["user:sup.south", "user:sup.south.2"]
    );
}
