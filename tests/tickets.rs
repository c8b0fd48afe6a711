//! A hotline case across the platform, through the gateway: users created at the gateway reach
//! the tickets service's engineer directory by events; an agent opens a ticket and hands it to a
//! hotline engineer, who dispatches it without naming anyone (the least-loaded engineer of the
//! region gets it); the engineer escalates a hard problem, the hotline engineer routes it, the
//! tech centre records progress — and the customer's contact hears of it by SMS, the tech
//! centre and the hotline engineer by their inboxes.

use std::time::Duration;

use crm_kit::{Clock, testing};
use crm_proto::{
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
    notifications::v1::{self as npb, notification_service_client::NotificationServiceClient},
    tickets::v1::{self as pb, ticket_service_client::TicketServiceClient},
};
use tonic::{service::interceptor::InterceptedService, transport::Channel};

use crm_tests::PASSWORD;

type Tickets = TicketServiceClient<InterceptedService<Channel, testing::Bearer>>;
type Notifications = NotificationServiceClient<InterceptedService<Channel, testing::Bearer>>;

struct Platform {
    _running: crm_tests::Running,
    gateway: Channel,
}

impl Platform {
    async fn token(&self, username: &str) -> String {
        AuthServiceClient::new(self.gateway.clone())
            .login(gw::LoginRequest {
                username: username.into(),
                password: PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token
    }

    async fn tickets(&self, username: &str) -> Tickets {
        let token = self.token(username).await;
        TicketServiceClient::with_interceptor(self.gateway.clone(), testing::Bearer::new(&token))
    }

    async fn notifications(&self, username: &str) -> Notifications {
        let token = self.token(username).await;
        NotificationServiceClient::with_interceptor(
            self.gateway.clone(),
            testing::Bearer::new(&token),
        )
    }
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn inbox_subjects(client: &Notifications) -> Vec<String> {
    client
        .clone()
        .list_inbox(npb::ListInboxRequest::default())
        .await
        .expect("inbox")
        .into_inner()
        .items
        .into_iter()
        .map(|i| i.subject)
        .collect()
}

#[tokio::test]
async fn a_case_is_dispatched_by_region_and_load_escalated_and_the_customer_kept_informed() {
    let env = testing::test_env().await;
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let ids = running
        .users(&[
            ("admin", "admin", ""),
            ("agent.east", "hotline_agent", "华东"),
            ("heng.east", "hotline_engineer", "华东"),
            ("eng.east", "engineer", "华东"),
            ("eng.north", "engineer", "华北"),
            ("tc.lead", "tech_center", ""),
        ])
        .await;
    let customer = running.customer("无锡新材料有限公司", "华东").await;
    let p = Platform {
        gateway: running.channel("gateway").await,
        _running: running,
    };

    // the agent takes the call and hands it on
    let mut agent = p.tickets("agent.east").await;
    let ticket = agent
        .create_ticket(pb::CreateTicketRequest {
            request_id: rid(),
            ticket: Some(pb::Ticket {
                channel: pb::Channel::Hotline as i32,
                customer_id: customer.clone(),
                region: "华东".into(),
                contact_name: "王晓明".into(),
                contact_phone: "+86 138 0013 8000".into(),
                product_model: "X200".into(),
                serial_number: "SN-0001".into(),
                symptom: "系统升级后无法登录".into(),
                warranty: pb::Warranty::InWarranty as i32,
                service_mode: pb::ServiceMode::OnSite as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner()
        .ticket
        .unwrap();
    let step = |transition: pb::Transition| pb::TransitionTicketRequest {
        request_id: rid(),
        id: ticket.id.clone(),
        transition: transition as i32,
        ..Default::default()
    };
    agent
        .transition_ticket(step(pb::Transition::HandToHotlineEngineer))
        .await
        .expect("hand on");

    // the hotline engineer dispatches without a name: the engineer of 华东 gets it (once the
    // gateway's announcement of the engineers has arrived; a refused dispatch writes nothing)
    let heng = p.tickets("heng.east").await;
    let c = heng.clone();
    let dispatch = step(pb::Transition::Dispatch);
    testing::wait_until("a dispatch by region", Duration::from_secs(20), || {
        let mut c = c.clone();
        let mut r = dispatch.clone();
        r.request_id = rid();
        async move { c.transition_ticket(r).await.is_ok() }
    })
    .await;
    let mut engineer = p.tickets("eng.east").await;
    let queue = engineer
        .list_tickets(pb::ListTicketsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(queue.len(), 1, "the engineer's own queue");
    assert_eq!(queue[0].assignee_id, ids["eng.east"]);
    engineer
        .transition_ticket(step(pb::Transition::Accept))
        .await
        .expect("accept");
    engineer
        .transition_ticket(step(pb::Transition::StartWork))
        .await
        .expect("start");

    // a system problem: the engineer applies, the hotline engineer routes it
    let escalation = engineer
        .request_escalation(pb::RequestEscalationRequest {
            request_id: rid(),
            ticket_id: ticket.id.clone(),
            kind: pb::EscalationKind::System as i32,
            reason: "升级包与客户数据库版本不兼容".into(),
            time_limit_hours: 8,
            ..Default::default()
        })
        .await
        .expect("request")
        .into_inner()
        .escalation
        .unwrap();
    let heng_inbox = p.notifications("heng.east").await;
    testing::wait_until(
        "the hotline engineer's inbox",
        Duration::from_secs(20),
        || {
            let c = heng_inbox.clone();
            async move {
                inbox_subjects(&c)
                    .await
                    .iter()
                    .any(|s| s.contains("申请升级"))
            }
        },
    )
    .await;
    let routed = heng
        .clone()
        .review_escalation(pb::ReviewEscalationRequest {
            request_id: rid(),
            id: escalation.id.clone(),
            approve: true,
            note: String::new(),
        })
        .await
        .expect("review")
        .into_inner()
        .escalation
        .unwrap();
    assert_eq!(routed.routed_to, "tech_supervisor");
    // an engineer may not filter escalations
    let e = engineer
        .review_escalation(pb::ReviewEscalationRequest {
            request_id: rid(),
            id: escalation.id.clone(),
            approve: true,
            note: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);

    // the tech centre finds it in its department's list and records progress
    let mut tc = p.tickets("tc.lead").await;
    let listed = tc
        .list_escalations(pb::ListEscalationsRequest {
            routed_to: "tech_supervisor".into(),
            states: vec![pb::EscalationState::Routed as i32],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .escalations;
    assert_eq!(listed.len(), 1);
    tc.record_escalation_progress(pb::RecordEscalationProgressRequest {
        request_id: rid(),
        id: escalation.id.clone(),
        note: "已复现，补丁测试中".into(),
        resolve: false,
    })
    .await
    .expect("progress");

    // the customer's contact hears of the routing and the progress by SMS
    let admin = p.notifications("admin").await;
    testing::wait_until("the SMS to the customer", Duration::from_secs(20), || {
        let mut c = admin.clone();
        async move {
            c.list_sent_messages(npb::ListSentMessagesRequest {
                channel: npb::Channel::Sms as i32,
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .messages
            .iter()
            .any(|m| m.address == "+86 138 0013 8000" && m.body.contains("已复现，补丁测试中"))
        }
    })
    .await;
    // the tech centre was told of the routing
    let tc_inbox = p.notifications("tc.lead").await;
    testing::wait_until("the tech centre's inbox", Duration::from_secs(20), || {
        let c = tc_inbox.clone();
        async move {
            inbox_subjects(&c)
                .await
                .iter()
                .any(|s| s.contains("疑难问题升级"))
        }
    })
    .await;
}

#[tokio::test]
async fn the_contact_hears_of_the_ticket_opened_dispatched_and_resolved_in_their_language() {
    let env = testing::test_env().await;
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let ids = running
        .users(&[("admin", "admin", ""), ("eng.chen", "engineer", "华东")])
        .await;
    let customer = running.customer("Suzhou Optics Ltd", "华东").await;
    let p = Platform {
        gateway: running.channel("gateway").await,
        _running: running,
    };
    let mut admin = p.tickets("admin").await;
    let phone = "+86 139 0000 1111";
    let ticket = admin
        .create_ticket(pb::CreateTicketRequest {
            request_id: rid(),
            ticket: Some(pb::Ticket {
                channel: pb::Channel::Hotline as i32,
                customer_id: customer.clone(),
                region: "华东".into(),
                contact_name: "Emily Chen".into(),
                contact_phone: phone.into(),
                contact_language: "en".into(),
                product_model: "X200".into(),
                serial_number: "SN-0002".into(),
                symptom: "no picture".into(),
                warranty: pb::Warranty::InWarranty as i32,
                service_mode: pb::ServiceMode::CarryIn as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("create")
        .into_inner()
        .ticket
        .unwrap();
    assert!(ticket.number.starts_with('T'), "{}", ticket.number);
    let notifications = p.notifications("admin").await;
    // the SMS bodies sent to the contact's phone, oldest first
    let sent_to_contact = || {
        let mut c = notifications.clone();
        async move {
            c.list_sent_messages(npb::ListSentMessagesRequest {
                channel: npb::Channel::Sms as i32,
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .messages
            .into_iter()
            .filter(|m| m.address == phone)
            .map(|m| m.body)
            .collect::<Vec<_>>()
        }
    };
    let number = ticket.number.clone();
    testing::wait_until("the opening SMS", Duration::from_secs(20), || {
        let sent = sent_to_contact();
        let number = number.clone();
        async move {
            sent.await
                .iter()
                .any(|b| b.contains("we have received") && b.contains(&number))
        }
    })
    .await;
    let step = |transition: pb::Transition| pb::TransitionTicketRequest {
        request_id: rid(),
        id: ticket.id.clone(),
        transition: transition as i32,
        ..Default::default()
    };
    let mut dispatch = step(pb::Transition::Dispatch);
    dispatch.assignee_id = ids["eng.chen"].clone();
    let c = admin.clone();
    testing::wait_until(
        "a dispatch to the engineer",
        Duration::from_secs(20),
        || {
            let mut c = c.clone();
            let mut r = dispatch.clone();
            r.request_id = rid();
            async move { c.transition_ticket(r).await.is_ok() }
        },
    )
    .await;
    // the engineer finds the work in the inbox, in their language
    let engineer_inbox = p.notifications("eng.chen").await;
    let subject = format!("新派工：工单 {number}");
    testing::wait_until("the engineer's inbox", Duration::from_secs(20), || {
        let c = engineer_inbox.clone();
        let subject = subject.clone();
        async move {
            inbox_subjects(&c)
                .await
                .iter()
                .any(|s| s.starts_with(&subject))
        }
    })
    .await;
    // the contact is told who comes and by when, on the working clock
    testing::wait_until("the dispatch SMS", Duration::from_secs(20), || {
        let sent = sent_to_contact();
        async move {
            sent.await.iter().any(|b| {
                b.contains("engineer eng.chen (demo) will handle") && b.contains("UTC+08:00")
            })
        }
    })
    .await;
    let mut engineer = p.tickets("eng.chen").await;
    for t in [
        pb::Transition::Accept,
        pb::Transition::StartWork,
        pb::Transition::RecordArrival,
    ] {
        engineer.transition_ticket(step(t)).await.expect("work");
    }
    let mut resolve = step(pb::Transition::Resolve);
    resolve.service_record = Some(pb::ServiceRecord {
        work_done: "replaced the display board".into(),
        diagnosis: "display board failed".into(),
        confirmation: Some(pb::Confirmation {
            proof: Some(pb::confirmation::Proof::Signature(pb::Signature {
                name: "Emily Chen".into(),
                time: Some(crm_kit::convert::timestamp(time::OffsetDateTime::now_utc())),
            })),
        }),
        ..Default::default()
    });
    engineer.transition_ticket(resolve).await.expect("resolve");
    testing::wait_until("the resolution SMS", Duration::from_secs(20), || {
        let sent = sent_to_contact();
        let number = number.clone();
        async move {
            sent.await
                .iter()
                .any(|b| b.contains("is resolved") && b.contains(&number))
        }
    })
    .await;
    // service history made the engineer the customer's usual engineer, at the customers
    // service too
    let usual = admin
        .get_usual_engineer(pb::GetUsualEngineerRequest {
            customer_id: customer.clone(),
        })
        .await
        .expect("usual engineer")
        .into_inner()
        .usual_engineer
        .unwrap();
    assert_eq!(usual.engineer_id, ids["eng.chen"]);
    let token = p.token("admin").await;
    let customers =
        crm_proto::customers::v1::customer_service_client::CustomerServiceClient::with_interceptor(
            p.gateway.clone(),
            testing::Bearer::new(&token),
        );
    testing::wait_until(
        "the customers service's copy",
        Duration::from_secs(20),
        || {
            let mut c = customers.clone();
            let customer = customer.clone();
            let engineer = ids["eng.chen"].clone();
            async move {
                c.get_service_policy(crm_proto::customers::v1::GetServicePolicyRequest {
                    customer_id: customer,
                })
                .await
                .unwrap()
                .into_inner()
                .status
                .is_some_and(|s| s.usual_engineer_id == engineer)
            }
        },
    )
    .await;
}
