//! Complaints through the gateway (Q-1 … Q-6), as the complaint officer, the CRM lead, the
//! responsible department and a partner use them: a service complaint goes back into the
//! service flow — one naming a solved ticket reopens it, one naming none opens a ticket, once
//! even when the event is delivered twice, linked both ways; the plan is sent back, declined
//! by the customer, approved only by someone other than its author; no step can be skipped;
//! a dissatisfied follow-up reopens the complaint as a new cycle with the earlier history
//! kept; bad input writes nothing; the statistics match the cases; a partner sees a complaint
//! about its centre without the comments about its staff.

use std::time::Duration;

use crm_kit::{Clock, testing};
use crm_proto::{
    common::v1::Money,
    complaints::v1::{
        self as pb, ComplaintChannel, ComplaintKind, ComplaintState as S, ComplaintTransition as T,
        Outcome, complaint_service_client::ComplaintServiceClient,
    },
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
    tickets::v1::{self as tpb, ticket_service_client::TicketServiceClient},
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

type Complaints = ComplaintServiceClient<InterceptedService<Channel, testing::Bearer>>;
type Tickets = TicketServiceClient<InterceptedService<Channel, testing::Bearer>>;

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn ts(t: time::OffsetDateTime) -> Option<prost_types::Timestamp> {
    Some(crm_kit::convert::timestamp(t))
}

struct Platform {
    running: crm_tests::Running,
    gateway: Channel,
    /// The users' ids by name.
    ids: std::collections::BTreeMap<&'static str, String>,
}

impl Platform {
    async fn start() -> Self {
        let env = testing::test_env().await;
        let running = crm_tests::start(env.settings, Clock::system())
            .await
            .expect("platform starts");
        let ids = running
            .users(&[
                ("admin", "admin", ""),
                ("officer", "complaint_officer", ""),
                ("lead", "crm_lead", ""),
                ("service.head", "supervisor", ""),
                ("product.qa", "tech_center", ""),
                ("eng.east", "engineer", "华东"),
                ("sup.east", "supervisor", "华东"),
                ("sup.north", "supervisor", "华北"),
            ])
            .await;
        let gateway = running.channel("gateway").await;
        Self {
            running,
            gateway,
            ids,
        }
    }

    async fn token(&self, username: &str) -> String {
        AuthServiceClient::new(self.gateway.clone())
            .login(gw::LoginRequest {
                username: username.into(),
                password: crm_tests::PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token
    }

    async fn complaints(&self, username: &str) -> Complaints {
        let token = self.token(username).await;
        ComplaintServiceClient::with_interceptor(self.gateway.clone(), testing::Bearer::new(&token))
    }

    async fn tickets(&self, username: &str) -> Tickets {
        let token = self.token(username).await;
        TicketServiceClient::with_interceptor(self.gateway.clone(), testing::Bearer::new(&token))
    }

    /// A partner organisation's client, by an API key exchanged at the gateway.
    async fn partner(&self, partner: &str) -> Complaints {
        let identity = crm::admin::identity(&self.running.settings).await.unwrap();
        let key = crm::admin::create_api_key(
            &identity,
            gw::ApiKey {
                name: format!("{partner} system"),
                roles: vec!["partner".into()],
                partner_id: partner.into(),
                ..Default::default()
            },
            30,
            "test",
        )
        .await
        .expect("an API key");
        let token = AuthServiceClient::new(self.gateway.clone())
            .exchange_api_key(gw::ExchangeApiKeyRequest {
                api_key: key.secret,
            })
            .await
            .expect("exchanged")
            .into_inner()
            .access_token;
        ComplaintServiceClient::with_interceptor(self.gateway.clone(), testing::Bearer::new(&token))
    }
}

fn complaint(kind: ComplaintKind, customer: &str) -> pb::Complaint {
    pb::Complaint {
        kind: kind as i32,
        channel: ComplaintChannel::Hotline as i32,
        customer_id: customer.into(),
        contact_name: "王晓明".into(),
        contact_phone: "+86 138 0013 8000".into(),
        contact_language: "zh".into(),
        content: "工程师两次上门都没有修好".into(),
        apology: "电话中向客户致歉".into(),
        committed_due: ts(time::OffsetDateTime::now_utc() + time::Duration::days(3)),
        ..Default::default()
    }
}

async fn create(client: &mut Complaints, c: pb::Complaint) -> Result<pb::Complaint, tonic::Status> {
    client
        .create_complaint(pb::CreateComplaintRequest {
            request_id: rid(),
            complaint: Some(c),
        })
        .await
        .map(|r| r.into_inner().complaint.unwrap())
}

async fn step(
    client: &mut Complaints,
    id: &str,
    transition: T,
    edit: impl FnOnce(&mut pb::TransitionComplaintRequest),
) -> Result<pb::TransitionComplaintResponse, tonic::Status> {
    let mut r = pb::TransitionComplaintRequest {
        request_id: rid(),
        id: id.into(),
        transition: transition as i32,
        ..Default::default()
    };
    edit(&mut r);
    client.transition_complaint(r).await.map(|r| r.into_inner())
}

fn state(r: &pb::TransitionComplaintResponse) -> S {
    S::try_from(r.complaint.as_ref().unwrap().state).unwrap()
}

async fn get(client: &mut Complaints, id: &str) -> Result<pb::Complaint, tonic::Status> {
    client
        .get_complaint(pb::GetComplaintRequest { id: id.into() })
        .await
        .map(|r| r.into_inner().complaint.unwrap())
}

fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

async fn judge(officer: &mut Complaints, id: &str) {
    step(officer, id, T::Judge, |r| {
        r.policy_judgement = "属服务问题，按服务政策处理".into();
        r.policy_explanation = "已向客户详细解释保修政策".into();
    })
    .await
    .expect("judged");
}

/// Waits until complaint `id` records its ticket; the ticket id.
async fn linked_ticket(officer: &Complaints, id: &str) -> String {
    let mut found = String::new();
    testing::wait_until(
        "the complaint is linked to its ticket",
        Duration::from_secs(30),
        || {
            let mut officer = officer.clone();
            let id = id.to_string();
            async move {
                get(&mut officer, &id)
                    .await
                    .is_ok_and(|c| !c.ticket_id.is_empty())
            }
        },
    )
    .await;
    let mut officer = officer.clone();
    found.push_str(&get(&mut officer, id).await.unwrap().ticket_id);
    found
}

#[tokio::test]
async fn a_service_complaint_goes_back_into_the_service_flow_once_and_is_linked_both_ways() {
    let p = Platform::start().await;
    let customer = p.running.customer("苏州精工电子有限公司", "华东").await;
    let mut admin_tickets = p.tickets("admin").await;
    // a ticket solved on the phone
    let solved = admin_tickets
        .create_ticket(tpb::CreateTicketRequest {
            request_id: rid(),
            ticket: Some(tpb::Ticket {
                channel: tpb::Channel::Hotline as i32,
                customer_id: customer.clone(),
                region: "华东".into(),
                contact_name: "王晓明".into(),
                contact_phone: "+86 138 0013 8000".into(),
                product_model: "X200".into(),
                serial_number: "SN-0001".into(),
                symptom: "无法登录".into(),
                warranty: tpb::Warranty::InWarranty as i32,
                service_mode: tpb::ServiceMode::Phone as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("a ticket")
        .into_inner()
        .ticket
        .unwrap();
    admin_tickets
        .transition_ticket(tpb::TransitionTicketRequest {
            request_id: rid(),
            id: solved.id.clone(),
            transition: tpb::Transition::SolveByPhone as i32,
            ..Default::default()
        })
        .await
        .expect("solved by phone");

    let mut officer = p.complaints("officer").await;
    let about_ticket = create(
        &mut officer,
        pb::Complaint {
            ticket_id: solved.id.clone(),
            ..complaint(ComplaintKind::Service, &customer)
        },
    )
    .await
    .unwrap();
    let without_ticket = create(&mut officer, complaint(ComplaintKind::Service, &customer))
        .await
        .unwrap();
    assert_eq!(about_ticket.state, S::Received as i32);
    assert!(about_ticket.number.starts_with('Q'));
    judge(&mut officer, &about_ticket.id).await;
    judge(&mut officer, &without_ticket.id).await;

    // the solved ticket is reopened for the complaint, with the hotline engineer again
    testing::wait_until(
        "the solved ticket takes the complaint",
        Duration::from_secs(30),
        || {
            let mut tickets = admin_tickets.clone();
            let (id, complaint) = (solved.id.clone(), about_ticket.id.clone());
            async move {
                tickets
                    .get_ticket(tpb::GetTicketRequest { id })
                    .await
                    .is_ok_and(|t| t.into_inner().ticket.unwrap().complaint_id == complaint)
            }
        },
    )
    .await;
    assert_eq!(linked_ticket(&officer, &about_ticket.id).await, solved.id);
    let reopened = admin_tickets
        .get_ticket(tpb::GetTicketRequest {
            id: solved.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(
        (reopened.state, reopened.complaint_id.as_str()),
        (
            tpb::TicketState::WithHotlineEngineer as i32,
            about_ticket.id.as_str()
        )
    );
    let history = admin_tickets
        .list_ticket_history(tpb::ListTicketHistoryRequest {
            id: solved.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert!(history.iter().any(
        |e| e.transition == tpb::Transition::ReopenForComplaint as i32
            && e.reason.contains(&about_ticket.number)
    ));

    // the other opens a ticket from the complaint
    let opened_id = linked_ticket(&officer, &without_ticket.id).await;
    let opened = admin_tickets
        .get_ticket(tpb::GetTicketRequest {
            id: opened_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .ticket
        .unwrap();
    assert_eq!(opened.channel, tpb::Channel::Complaint as i32);
    assert_eq!(opened.complaint_id, without_ticket.id);
    assert_eq!(opened.customer_id, customer);

    // the routing event delivered again (the relay publishes it a second time) opens nothing
    let complaints_db = crm_kit::db::connect(&p.running.settings.database, "complaints")
        .await
        .unwrap();
    let again = sqlx::query(
        "UPDATE outbox SET publish_time = NULL WHERE aggregate = $1 AND publish_time IS NOT NULL",
    )
    .bind(format!("complaints/{}", without_ticket.id))
    .execute(&complaints_db)
    .await
    .unwrap()
    .rows_affected();
    assert!(again >= 2, "the complaint's events go out again");
    testing::wait_until(
        "the events are relayed again",
        Duration::from_secs(30),
        || {
            let db = complaints_db.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM outbox WHERE publish_time IS NULL",
                )
                .fetch_one(&db)
                .await
                .unwrap()
                    == 0
            }
        },
    )
    .await;
    // a complaint routed after the redelivery: once its ticket is linked, the redelivered
    // events before it on the same stream were handled too
    let marker = create(&mut officer, complaint(ComplaintKind::Service, &customer))
        .await
        .unwrap();
    judge(&mut officer, &marker.id).await;
    linked_ticket(&officer, &marker.id).await;
    let tickets_db = crm_kit::db::connect(&p.running.settings.database, "tickets")
        .await
        .unwrap();
    let opened_for: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tickets WHERE complaint_id = $1")
            .bind(&without_ticket.id)
            .fetch_one(&tickets_db)
            .await
            .unwrap();
    assert_eq!(opened_for, 1, "one ticket for the complaint");
}

#[tokio::test]
async fn a_complaint_is_planned_approved_by_another_accepted_and_reopened_when_dissatisfied() {
    let p = Platform::start().await;
    let customer = uuid::Uuid::new_v4().to_string();
    let mut officer = p.complaints("officer").await;
    let mut lead = p.complaints("lead").await;
    let mut head = p.complaints("service.head").await;
    let mut admin = p.complaints("admin").await;
    let started = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);

    // bad input writes nothing
    let listed = |client: &mut Complaints| {
        let mut client = client.clone();
        async move {
            client
                .list_complaints(pb::ListComplaintsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .complaints
                .len()
        }
    };
    let bad = create(&mut officer, pb::Complaint::default())
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
    for f in [
        "complaint.content",
        "complaint.customer_id",
        "complaint.kind",
    ] {
        assert!(
            fields(&bad).contains(&f.to_string()),
            "{f}: {:?}",
            fields(&bad)
        );
    }
    let past = create(
        &mut officer,
        pb::Complaint {
            committed_due: ts(time::OffsetDateTime::now_utc() - time::Duration::hours(1)),
            ..complaint(ComplaintKind::Service, &customer)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(fields(&past), ["complaint.committed_due"]);
    assert_eq!(listed(&mut officer).await, 0);

    let c = create(&mut officer, complaint(ComplaintKind::Product, &customer))
        .await
        .unwrap();
    let id = c.id.clone();
    // no step can be skipped
    assert_eq!(
        step(&mut officer, &id, T::CustomerConfirms, |_| {})
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    judge(&mut officer, &id).await;
    let unknown = step(&mut officer, &id, T::RecordFindings, |r| {
        r.cause = "安装不规范".into();
        r.department = "nowhere".into();
    })
    .await
    .unwrap_err();
    assert_eq!(fields(&unknown), ["department"]);
    step(&mut officer, &id, T::RecordFindings, |r| {
        r.cause = "安装不规范".into();
        r.department = "service".into();
    })
    .await
    .unwrap();
    // the plan is the department's: the officer may not write it
    assert_eq!(
        step(&mut officer, &id, T::SubmitPlan, |r| r.plan = "x".into())
            .await
            .unwrap_err()
            .code(),
        Code::PermissionDenied
    );
    let negative = step(&mut head, &id, T::SubmitPlan, |r| {
        r.plan = "退款".into();
        r.compensation = Some(pb::Compensation {
            kind: "refund".into(),
            amount: Some(Money {
                currency_code: "CNY".into(),
                units: -200,
                nanos: 0,
            }),
        });
    })
    .await
    .unwrap_err();
    assert_eq!(fields(&negative), ["compensation.amount"]);
    // the admin writes a plan and may not approve it; the lead sends it back
    step(&mut admin, &id, T::SubmitPlan, |r| {
        r.plan = "上门道歉".into()
    })
    .await
    .unwrap();
    let own = step(&mut admin, &id, T::ApprovePlan, |_| {})
        .await
        .unwrap_err();
    assert_eq!(own.code(), Code::FailedPrecondition);
    let back = step(&mut lead, &id, T::SendBackPlan, |r| {
        r.note = "需要给出补偿方案".into()
    })
    .await
    .unwrap();
    assert_eq!(state(&back), S::Planning);
    // the department plans again with compensation; approved; the customer declines
    let plan = |r: &mut pb::TransitionComplaintRequest| {
        r.plan = "重新安装并补偿服务费".into();
        r.compensation = Some(pb::Compensation {
            kind: "refund".into(),
            amount: Some(Money {
                currency_code: "CNY".into(),
                units: 200,
                nanos: 500_000_000,
            }),
        });
    };
    step(&mut head, &id, T::SubmitPlan, plan).await.unwrap();
    step(&mut lead, &id, T::ApprovePlan, |_| {}).await.unwrap();
    let declined = step(&mut officer, &id, T::CustomerDeclines, |r| {
        r.note = "客户希望更换设备".into()
    })
    .await
    .unwrap();
    assert_eq!(state(&declined), S::Planning);
    step(&mut head, &id, T::SubmitPlan, plan).await.unwrap();
    let approved = step(&mut lead, &id, T::ApprovePlan, |_| {}).await.unwrap();
    let a = approved.complaint.as_ref().unwrap();
    assert!(!a.plan_approver.is_empty() && a.plan_author != a.plan_approver);
    assert_eq!(
        a.compensation
            .as_ref()
            .unwrap()
            .amount
            .as_ref()
            .unwrap()
            .nanos,
        500_000_000
    );
    // the customer's confirmation needs the execution first
    step(&mut officer, &id, T::CustomerAccepts, |_| {})
        .await
        .unwrap();
    assert_eq!(
        step(&mut officer, &id, T::CustomerConfirms, |_| {})
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    step(&mut head, &id, T::Execute, |r| {
        r.note = "已重新安装，服务费已退".into()
    })
    .await
    .unwrap();
    let resolved = step(&mut officer, &id, T::CustomerConfirms, |_| {})
        .await
        .unwrap();
    assert_eq!(state(&resolved), S::Resolved);
    // dissatisfied: a new deadline is needed, then a new linked cycle
    let no_deadline = step(&mut officer, &id, T::FollowUp, |r| r.satisfaction = 2)
        .await
        .unwrap_err();
    assert_eq!(fields(&no_deadline), ["new_committed_due"]);
    let new_due = time::OffsetDateTime::now_utc() + time::Duration::days(5);
    let followed = step(&mut officer, &id, T::FollowUp, |r| {
        r.satisfaction = 2;
        r.note = "客户仍不满意".into();
        r.new_committed_due = ts(new_due);
    })
    .await
    .unwrap();
    assert_eq!(state(&followed), S::Reopened);
    let next = followed.next_cycle.clone().unwrap();
    assert_eq!(
        (
            next.cycle,
            next.state,
            next.number.as_str(),
            next.previous_cycle_id.as_str()
        ),
        (2, S::Investigating as i32, c.number.as_str(), id.as_str())
    );
    assert_eq!(followed.complaint.unwrap().next_cycle_id, next.id);
    assert_eq!(
        next.committed_due.unwrap().seconds,
        new_due.unix_timestamp()
    );
    // the first cycle keeps its history
    let history = officer
        .list_complaint_history(pb::ListComplaintHistoryRequest {
            id: id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let steps: Vec<&str> = history.iter().map(|e| e.via.as_str()).collect();
    assert_eq!(
        steps,
        [
            "CREATE",
            "JUDGE",
            "RECORD_FINDINGS",
            "SUBMIT_PLAN",
            "SEND_BACK_PLAN",
            "SUBMIT_PLAN",
            "APPROVE_PLAN",
            "CUSTOMER_DECLINES",
            "SUBMIT_PLAN",
            "APPROVE_PLAN",
            "CUSTOMER_ACCEPTS",
            "EXECUTE",
            "CUSTOMER_CONFIRMS",
            "FOLLOW_UP"
        ]
    );
    assert!(history[4].reason.contains("补偿"), "why it was sent back");

    // the customer heard of the intake and the approved plan, in Chinese, by SMS
    let token = p.token("admin").await;
    let notifications = crm_proto::notifications::v1::notification_service_client::NotificationServiceClient::with_interceptor(
        p.gateway.clone(),
        testing::Bearer::new(&token),
    );
    let number = c.number.clone();
    testing::wait_until("the customer's messages", Duration::from_secs(30), || {
        let mut n = notifications.clone();
        let number = number.clone();
        async move {
            let sent = n
                .list_sent_messages(crm_proto::notifications::v1::ListSentMessagesRequest {
                    channel: crm_proto::notifications::v1::Channel::Sms as i32,
                    page: None,
                })
                .await
                .map(|r| r.into_inner().messages)
                .unwrap_or_default();
            let to_customer = |needle: &str| {
                sent.iter().any(|m| {
                    m.address == "+86 138 0013 8000"
                        && m.body.contains(&number)
                        && m.body.contains(needle)
                })
            };
            to_customer("已受理") && to_customer("CNY 200.50")
        }
    })
    .await;

    // a second complaint, still open; the statistics count both cycles and it
    create(&mut officer, complaint(ComplaintKind::Service, &customer))
        .await
        .unwrap();
    let stats = lead
        .get_complaint_statistics(pb::GetComplaintStatisticsRequest {
            from: ts(started),
            to: ts(time::OffsetDateTime::now_utc() + time::Duration::minutes(1)),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.complaints, 3);
    let line = |kind: ComplaintKind, department: &str, outcome: Outcome| {
        stats
            .lines
            .iter()
            .find(|l| {
                l.kind == kind as i32 && l.department == department && l.outcome == outcome as i32
            })
            .map(|l| (l.complaints, l.on_time))
    };
    assert_eq!(
        line(ComplaintKind::Product, "service", Outcome::Reopened),
        Some((1, 1))
    );
    assert_eq!(
        line(ComplaintKind::Product, "", Outcome::Open),
        Some((1, 0))
    );
    assert_eq!(
        line(ComplaintKind::Service, "", Outcome::Open),
        Some((1, 0))
    );
    assert_eq!(stats.lines.len(), 3);
    assert!((stats.on_time_rate - 1.0).abs() < 1e-9);
    assert!((stats.reopen_rate - 1.0).abs() < 1e-9);
    // per day on the working clock (UTC+8): every bucket starts at a local midnight, and the
    // buckets add up to the same cycles
    let daily = lead
        .get_complaint_statistics(pb::GetComplaintStatisticsRequest {
            from: ts(started),
            to: ts(time::OffsetDateTime::now_utc() + time::Duration::minutes(1)),
            period: pb::Period::Day as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(daily.complaints, 3);
    for l in &daily.lines {
        let start = l.period_start.as_ref().unwrap().seconds;
        assert_eq!((start + 8 * 3600) % 86_400, 0, "{l:?}");
    }
    assert_eq!(daily.lines.iter().map(|l| l.complaints).sum::<i32>(), 3);
    let bad_period = lead
        .get_complaint_statistics(pb::GetComplaintStatisticsRequest {
            from: ts(time::OffsetDateTime::now_utc()),
            to: ts(started),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&bad_period), ["to"]);
}

#[tokio::test]
async fn a_partner_sees_a_complaint_about_its_centre_without_the_comments_about_its_staff() {
    let p = Platform::start().await;
    let customer = uuid::Uuid::new_v4().to_string();
    let mut officer = p.complaints("officer").await;
    let about_a = create(
        &mut officer,
        pb::Complaint {
            partner_id: "partner.a".into(),
            staff_comment: "维修站的李师傅态度很差".into(),
            ..complaint(ComplaintKind::Service, &customer)
        },
    )
    .await
    .unwrap();
    let other = create(&mut officer, complaint(ComplaintKind::Product, &customer))
        .await
        .unwrap();
    let mut a = p.partner("partner.a").await;
    let mut b = p.partner("partner.b").await;
    let seen = get(&mut a, &about_a.id).await.unwrap();
    assert_eq!(seen.content, about_a.content);
    assert!(seen.staff_comment.is_empty() && seen.contact_phone.is_empty());
    assert_eq!(
        get(&mut officer, &about_a.id).await.unwrap().staff_comment,
        "维修站的李师傅态度很差"
    );
    assert_eq!(
        get(&mut a, &other.id).await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        get(&mut b, &about_a.id).await.unwrap_err().code(),
        Code::NotFound
    );
    let list = |client: &mut Complaints| {
        let mut client = client.clone();
        async move {
            client
                .list_complaints(pb::ListComplaintsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .complaints
                .into_iter()
                .map(|c| c.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(list(&mut a).await, vec![about_a.id.clone()]);
    assert!(list(&mut b).await.is_empty());
    // a partner reads only
    assert_eq!(
        step(&mut a, &about_a.id, T::Judge, |r| {
            r.policy_judgement = "x".into();
            r.policy_explanation = "y".into();
        })
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn a_product_complaint_reaches_the_product_department_and_a_staff_complaint_the_supervisors()
{
    use crm_proto::notifications::v1::{
        ListInboxRequest, notification_service_client::NotificationServiceClient,
    };
    let p = Platform::start().await;
    let customer = uuid::Uuid::new_v4().to_string();
    let mut officer = p.complaints("officer").await;
    let product = create(&mut officer, complaint(ComplaintKind::Product, &customer))
        .await
        .unwrap();
    let staff = create(
        &mut officer,
        pb::Complaint {
            staff_id: p.ids["eng.east"].clone(),
            ..complaint(ComplaintKind::Staff, &customer)
        },
    )
    .await
    .unwrap();
    judge(&mut officer, &product.id).await;
    judge(&mut officer, &staff.id).await;
    let inbox = |user: &'static str| {
        let p = &p;
        async move {
            let token = p.token(user).await;
            NotificationServiceClient::with_interceptor(
                p.gateway.clone(),
                testing::Bearer::new(&token),
            )
            .list_inbox(ListInboxRequest::default())
            .await
            .map(|r| r.into_inner().items)
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.subject)
            .collect::<Vec<_>>()
        }
    };
    for (user, subject) in [
        ("product.qa", format!("产品投诉反馈：{}", product.number)),
        ("eng.east", format!("服务人员投诉：{}", staff.number)),
        ("sup.east", format!("服务人员投诉：{}", staff.number)),
    ] {
        testing::wait_until(&format!("{user} is told"), Duration::from_secs(30), || {
            let subject = subject.clone();
            let inbox = inbox(user);
            async move { inbox.await.contains(&subject) }
        })
        .await;
    }
    // the staff member's own region's supervisors only; the product department not of staff
    assert!(inbox("sup.north").await.is_empty());
    assert!(
        !inbox("product.qa")
            .await
            .iter()
            .any(|s| s.contains(&staff.number))
    );
}

#[tokio::test]
async fn the_complaints_demo_loads_twice_alike_in_its_states() {
    // a platform with the demo's own users (no test users: the demo makes an admin too)
    let env = testing::test_env().await;
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let settings = &running.settings;
    let users = crm::demo::load_users(settings).await.expect("demo users");
    let customers = crm::demo::load(settings, &users)
        .await
        .expect("demo customers");
    let first = crm::demo::complaints::load(settings, &users, &customers)
        .await
        .expect("demo");
    let again = crm::demo::complaints::load(settings, &users, &customers)
        .await
        .expect("demo again");
    assert_eq!((first, again), (6, 6));
    let gateway = running.channel("gateway").await;
    let token = AuthServiceClient::new(gateway.clone())
        .login(gw::LoginRequest {
            username: "crm.lead".into(),
            password: crm::demo::DEMO_PASSWORD.into(),
        })
        .await
        .expect("the demo's CRM lead logs in")
        .into_inner()
        .access_token;
    let mut lead = ComplaintServiceClient::with_interceptor(gateway, testing::Bearer::new(&token));
    let all = lead
        .list_complaints(pb::ListComplaintsRequest {
            states: (1..=10).collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .complaints;
    let mut states: Vec<i32> = all.iter().map(|c| c.state).collect();
    states.sort_unstable();
    assert_eq!(
        states,
        [
            S::Received as i32,
            S::Investigating as i32,
            S::Investigating as i32,
            S::AwaitingApproval as i32,
            S::Resolved as i32,
            S::Reopened as i32,
        ]
    );
}
