//! Notifications across the platform, through the gateway: users created at the gateway reach
//! the notifications directory by events; a sales rep's partner request reaches the sales
//! manager's inbox; the manager's approval reaches the new tech-support partner's inbox and
//! phone at once (urgent, N-4) — every step a real service, event stream and relay.

use std::time::Duration;

use crm_kit::{Clock, testing};
use crm_proto::{
    customers::v1::{self as customers, customer_service_client::CustomerServiceClient},
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
    notifications::v1::{self as pb, notification_service_client::NotificationServiceClient},
};
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";

type Notifications = NotificationServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, testing::Bearer>,
>;

struct Platform {
    _running: crm_tests::Running,
    gateway: Channel,
}

impl Platform {
    async fn login(&self, username: &str) -> gw::LoginResponse {
        AuthServiceClient::new(self.gateway.clone())
            .login(gw::LoginRequest {
                username: username.into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
    }

    fn notifications(&self, token: &str) -> Notifications {
        NotificationServiceClient::with_interceptor(
            self.gateway.clone(),
            testing::Bearer::new(token),
        )
    }
}

async fn inbox(client: &mut Notifications) -> Vec<pb::InboxItem> {
    client
        .list_inbox(pb::ListInboxRequest::default())
        .await
        .expect("inbox")
        .into_inner()
        .items
}

async fn wait_for_inbox(client: &Notifications, what: &str, n: usize) -> Vec<pb::InboxItem> {
    let c = client.clone();
    testing::wait_until(what, Duration::from_secs(20), || {
        let mut c = c.clone();
        async move { inbox(&mut c).await.len() >= n }
    })
    .await;
    inbox(&mut client.clone()).await
}

#[tokio::test]
async fn a_partner_request_reaches_the_manager_and_the_approval_the_new_partner() {
    let env = testing::test_env().await;
    let _ = crm_kit::telemetry::init("test", &env.settings.telemetry, std::io::sink);
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let identity = crm::admin::identity(&running.settings).await.unwrap();
    let mut ids = std::collections::BTreeMap::new();
    for (name, role, region, phone, language) in [
        ("admin", "admin", "", "", "zh"),
        ("rep.east", "sales_rep", "华东", "", "zh"),
        ("manager.east", "sales_manager", "华东", "", "zh"),
        ("manager.west", "sales_manager", "西南", "", "zh"),
        ("ts.li", "tech_support", "", "+86 137 0000 1111", "zh"),
        ("ts.wang", "tech_support", "", "+86 137 0000 2222", "en"),
    ] {
        let user = gw::User {
            username: name.into(),
            display_name: format!("{name} (demo)"),
            roles: vec![role.into()],
            region: region.into(),
            email: format!("{name}@example.com"),
            phone: phone.into(),
            language: language.into(),
            ..Default::default()
        };
        let created =
            crm::admin::create_user(&identity, &format!("seed-{name}"), user, PASSWORD, "test")
                .await
                .unwrap();
        ids.insert(name, created.id);
    }
    let p = Platform {
        gateway: running.channel("gateway").await,
        _running: running,
    };

    // templates, saved through the gateway
    let admin = p.login("admin").await;
    let mut admin_n = p.notifications(&admin.access_token);
    for (name, language, kind, subject, body) in [
        (
            "partner_change_requested",
            "zh",
            "customers.partner_change_requested",
            "待审批：{{ customer_name }} 更换技术支持",
            "{{ actor_name }} 申请由 {{ proposed_partner_name }} 接替 {{ current_partner_name }}。",
        ),
        (
            "partner_change_decided",
            "zh",
            "customers.partner_change_decided",
            "技术支持变更：{{ customer_name }}",
            "{{ recipient_name }}：{{ customer_name }} 的技术支持变更已{{ decision }}。",
        ),
        (
            "partner_change_decided",
            "en",
            "customers.partner_change_decided",
            "Partner change for {{ customer_name }}: {{ decision }}",
            "{{ recipient_name }}, you now support {{ customer_name }}.",
        ),
    ] {
        admin_n
            .save_template(pb::SaveTemplateRequest {
                template: Some(pb::Template {
                    name: name.into(),
                    language: language.into(),
                    kind: kind.into(),
                    subject: subject.into(),
                    body: body.into(),
                    ..Default::default()
                }),
                version: 0,
            })
            .await
            .expect("save template");
    }

    // the rep's customer, its first partner, then a change request
    let rep = p.login("rep.east").await;
    let mut customers_client = CustomerServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&rep.access_token),
    );
    let customer = customers_client
        .create_customer(customers::CreateCustomerRequest {
            request_id: "e2e-customer".into(),
            customer: Some(customers::Customer {
                display_name: "杭州海纳科技有限公司".into(),
                region: "华东".into(),
                owner_id: ids["rep.east"].clone(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    for (i, partner) in ["ts.li", "ts.wang"].iter().enumerate() {
        customers_client
            .request_partner_change(customers::RequestPartnerChangeRequest {
                request_id: format!("e2e-partner-{i}"),
                customer_id: customer.id.clone(),
                proposed_partner_id: ids[partner].clone(),
                reason: "closer to the site".into(),
            })
            .await
            .unwrap();
    }

    // the manager of the region sees both requests in the inbox; the other region's does not
    let manager = p.login("manager.east").await;
    let mut manager_n = p.notifications(&manager.access_token);
    let items = wait_for_inbox(&manager_n, "the manager's inbox", 2).await;
    assert_eq!(
        items[0].subject,
        "待审批：杭州海纳科技有限公司 更换技术支持"
    );
    assert!(
        items[0]
            .body
            .contains("rep.east (demo) 申请由 ts.wang (demo) 接替 ts.li (demo)"),
        "{}",
        items[0].body
    );
    let west = p.login("manager.west").await;
    assert!(
        inbox(&mut p.notifications(&west.access_token))
            .await
            .is_empty()
    );

    // the manager approves; the new partner hears at once, in English, by inbox and SMS
    let mut manager_c = CustomerServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&manager.access_token),
    );
    let pending = manager_c
        .list_partner_changes(customers::ListPartnerChangesRequest {
            customer_id: customer.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .changes
        .into_iter()
        .find(|c| c.state() == customers::PartnerChangeState::Pending)
        .unwrap();
    manager_c
        .approve_partner_change(customers::ApprovePartnerChangeRequest {
            request_id: "e2e-approve".into(),
            id: pending.id,
            reason: "agreed".into(),
        })
        .await
        .unwrap();
    let wang = p.login("ts.wang").await;
    let items = wait_for_inbox(
        &p.notifications(&wang.access_token),
        "the partner's inbox",
        1,
    )
    .await;
    assert!(items[0].urgent);
    assert_eq!(
        items[0].subject,
        "Partner change for 杭州海纳科技有限公司: approved"
    );
    let n = manager_n
        .get_notification(pb::GetNotificationRequest {
            id: items[0].notification_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .notification
        .unwrap();
    assert!(n.urgent && n.deadline.is_some());
    let wang_key = format!("user:{}", ids["ts.wang"]);
    let c = admin_n.clone();
    let id = n.id.clone();
    testing::wait_until("the SMS to the partner", Duration::from_secs(20), || {
        let mut c = c.clone();
        let id = id.clone();
        let key = wang_key.clone();
        async move {
            c.get_notification(pb::GetNotificationRequest { id })
                .await
                .unwrap()
                .into_inner()
                .notification
                .unwrap()
                .deliveries
                .iter()
                .any(|d| {
                    d.recipient == key
                        && d.channel == pb::Channel::Sms as i32
                        && d.state == pb::DeliveryState::Sent as i32
                        && !d.deadline_missed
                })
        }
    })
    .await;
}
