//! The customers service through a real gRPC channel against the real Postgres, each test with
//! a database of its own (crm_kit::testing).

use crm_kit::{
    CancellationToken, Clock, Settings,
    auth::Security,
    testing::{self, Bearer, TestCaller},
};
use crm_proto::{
    common::v1::{Date, PageRequest},
    customers::v1::{self as pb, customer_service_client::CustomerServiceClient},
};
use prost_types::FieldMask;
use sqlx::PgPool;
use time::macros::datetime;
use tonic::{Code, Status, service::interceptor::InterceptedService, transport::Channel};
use tonic_types::StatusExt;

type Client = CustomerServiceClient<InterceptedService<Channel, Bearer>>;

struct App {
    client: Client,
    channel: Channel,
    settings: Settings,
    pool: PgPool,
    /// The gateway's outbox, to announce users as the gateway does.
    gateway: PgPool,
    clock: Clock,
    _stop: testing::StopOnDrop,
}

async fn spawn_app() -> App {
    spawn_app_with(&[]).await
}

/// The service with some settings of the test's own.
async fn spawn_app_with(settings: &[(&'static str, String)]) -> App {
    let env = testing::test_env_with(settings).await;
    crm_customers::migrate(&env.settings)
        .await
        .expect("migrate");
    let clock = Clock::manual(datetime!(2026-03-02 09:00 UTC));
    let stop = CancellationToken::new();
    let gateway = testing::upstream(&env.settings, "gateway", &stop).await;
    let security = Security::start(&env.settings, stop.clone()).expect("security");
    let app = crm_customers::Application::build(&env.settings, clock.clone(), security)
        .await
        .expect("build");
    let pool = app.customers().pool().clone();
    let channel = testing::serve(app, &stop).await;
    let admin = testing::admin_token(&env.settings);
    App {
        client: CustomerServiceClient::with_interceptor(channel.clone(), Bearer::new(&admin)),
        channel,
        settings: env.settings,
        pool,
        gateway,
        clock,
        _stop: testing::StopOnDrop(stop),
    }
}

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn sample(name: &str) -> pb::Customer {
    pb::Customer {
        display_name: name.into(),
        industry: "electronics".into(),
        region: "华东".into(),
        address: "上海市浦东新区张江路 88 号".into(),
        source_channel: pb::SourceChannel::Exhibition.into(),
        contacts: vec![pb::Contact {
            name: "王晓明".into(),
            phone: "+86 138-0013-8000".into(),
            email: "wangxm@example.cn".into(),
            role: "IT manager".into(),
        }],
        tags: vec!["制造".into()],
        owner_id: "rep.zhang".into(),
        // an annual service fee above 5,000 CNY: core (C-7)
        annual_service_fee_cny: 6000,
        credit_rating: pb::CreditRating::B.into(),
        ..Default::default()
    }
}

impl App {
    /// A client acting as `subject` with `roles` (and `region` for sales reps).
    fn as_caller(&self, subject: &str, roles: &[&str], region: &str) -> Client {
        let token = testing::token(
            &self.settings,
            &TestCaller {
                subject,
                roles,
                region,
                partner: "",
            },
            3600,
        );
        CustomerServiceClient::with_interceptor(self.channel.clone(), Bearer::new(&token))
    }

    async fn create(&mut self, c: pb::Customer) -> pb::Customer {
        self.client
            .create_customer(pb::CreateCustomerRequest {
                request_id: rid(),
                customer: Some(c),
            })
            .await
            .expect("create")
            .into_inner()
            .customer
            .unwrap()
    }

    async fn count(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    async fn list(&mut self, filter: pb::CustomerFilter) -> Vec<String> {
        let r = self
            .client
            .list_customers(pb::ListCustomersRequest {
                filter: Some(filter),
                page: None,
            })
            .await
            .expect("list")
            .into_inner();
        r.customers.into_iter().map(|c| c.display_name).collect()
    }
}

fn violations(status: &Status) -> Vec<String> {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    status
        .get_error_details()
        .bad_request()
        .expect("bad request details")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect()
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .expect("error info")
        .reason
        .clone()
}

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

async fn change_stage(
    app: &mut App,
    id: &str,
    stage: pb::Stage,
) -> Result<pb::ChangeCustomerStageResponse, Status> {
    app.client
        .change_customer_stage(pb::ChangeCustomerStageRequest {
            request_id: rid(),
            customer_id: id.into(),
            stage: stage.into(),
            reason: format!("moved to {}", stage.as_str_name()),
            version: 0,
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn stages_move_by_the_rules_and_keep_their_history() {
    let mut app = spawn_app().await;
    let c = app.create(sample("深圳前海智能硬件")).await;
    for stage in [
        pb::Stage::NonTarget,
        pb::Stage::Potential,
        pb::Stage::Target,
        pb::Stage::Trial,
        pb::Stage::Signed,
    ] {
        app.clock.advance(time::Duration::days(1));
        let r = change_stage(&mut app, &c.id, stage).await.unwrap();
        assert_eq!(r.customer.unwrap().stage(), stage);
    }
    for forbidden in [
        pb::Stage::Trial,
        pb::Stage::InitialContact,
        pb::Stage::Signed,
    ] {
        let status = change_stage(&mut app, &c.id, forbidden).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{forbidden:?}");
        assert_eq!(reason(&status), "STAGE_TRANSITION_FORBIDDEN");
    }
    let status = change_stage(&mut app, &c.id, pb::Stage::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(violations(&status), ["stage"]);

    let history = app
        .client
        .list_stage_changes(pb::ListStageChangesRequest {
            customer_id: c.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let moves: Vec<_> = history
        .iter()
        .map(|h| (h.from_stage(), h.to_stage()))
        .collect();
    use pb::Stage::*;
    assert_eq!(
        moves,
        [
            (Unspecified, InitialContact),
            (InitialContact, NonTarget),
            (NonTarget, Potential),
            (Potential, Target),
            (Target, Trial),
            (Trial, Signed)
        ]
    );
    assert_eq!(history[5].reason, "moved to STAGE_SIGNED");
    assert_eq!(
        history[5]
            .changed
            .as_ref()
            .unwrap()
            .time
            .as_ref()
            .unwrap()
            .seconds,
        datetime!(2026-03-07 09:00 UTC).unix_timestamp()
    );
}

#[tokio::test]
async fn a_stage_change_with_a_stale_version_is_aborted() {
    let mut app = spawn_app().await;
    let c = app.create(sample("重庆山城汽车")).await;
    let status = app
        .client
        .change_customer_stage(pb::ChangeCustomerStageRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            stage: pb::Stage::Potential.into(),
            reason: "qualified".into(),
            version: c.version + 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(app.count("history WHERE kind = 'stage'").await, 1);
}

async fn request_partner(
    app: &mut App,
    id: &str,
    partner: &str,
) -> Result<pb::PartnerChange, Status> {
    app.client
        .request_partner_change(pb::RequestPartnerChangeRequest {
            request_id: rid(),
            customer_id: id.into(),
            proposed_partner_id: partner.into(),
            reason: "needs database expertise".into(),
        })
        .await
        .map(|r| r.into_inner().change.unwrap())
}

#[tokio::test]
async fn the_first_partner_is_set_and_a_change_waits_for_approval() {
    let mut app = spawn_app().await;
    let c = app.create(sample("广州南方家电")).await;
    let first = request_partner(&mut app, &c.id, "ts.li").await.unwrap();
    assert_eq!(first.state(), pb::PartnerChangeState::Initial);
    let get = |app: &mut App| {
        let mut client = app.client.clone();
        let id = c.id.clone();
        async move {
            client
                .get_customer(pb::GetCustomerRequest { id })
                .await
                .unwrap()
                .into_inner()
                .customer
                .unwrap()
        }
    };
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.li");

    assert_eq!(
        request_partner(&mut app, &c.id, "ts.li")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let pending = request_partner(&mut app, &c.id, "ts.wang").await.unwrap();
    assert_eq!(pending.state(), pb::PartnerChangeState::Pending);
    assert_eq!(pending.current_partner_id, "ts.li");
    // until approved the old partner stays, and a second request must wait
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.li");
    let second = request_partner(&mut app, &c.id, "ts.chen")
        .await
        .unwrap_err();
    assert_eq!(reason(&second), "PARTNER_CHANGE_PENDING");

    let rejected = app
        .client
        .reject_partner_change(pb::RejectPartnerChangeRequest {
            request_id: rid(),
            id: pending.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&rejected), ["reason"]);
    let approve = pb::ApprovePartnerChangeRequest {
        request_id: rid(),
        id: pending.id.clone(),
        reason: "ok".into(),
    };
    let approved = app
        .as_caller("mgr.zhou", &["sales_manager"], "")
        .approve_partner_change(approve)
        .await
        .unwrap()
        .into_inner()
        .change
        .unwrap();
    assert_eq!(approved.state(), pb::PartnerChangeState::Approved);
    assert_eq!(approved.decided.unwrap().actor, "mgr.zhou");
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.wang");

    // decided requests cannot be decided again; a new one can be rejected and changes nothing
    let twice = app
        .client
        .reject_partner_change(pb::RejectPartnerChangeRequest {
            request_id: rid(),
            id: pending.id.clone(),
            reason: "no".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&twice), "PARTNER_CHANGE_DECIDED");
    let another = request_partner(&mut app, &c.id, "ts.chen").await.unwrap();
    app.client
        .reject_partner_change(pb::RejectPartnerChangeRequest {
            request_id: rid(),
            id: another.id.clone(),
            reason: "keep the current partner".into(),
        })
        .await
        .unwrap();
    assert_eq!(get(&mut app).await.tech_partner_id, "ts.wang");

    let listed = app
        .client
        .list_partner_changes(pb::ListPartnerChangesRequest {
            customer_id: c.id.clone(),
            state: 0,
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let states: Vec<_> = listed.iter().map(|c| c.state()).collect();
    use pb::PartnerChangeState::*;
    assert_eq!(states, [Initial, Approved, Rejected]);
    let unknown = app
        .client
        .approve_partner_change(pb::ApprovePartnerChangeRequest {
            request_id: rid(),
            id: uuid::Uuid::now_v7().to_string(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
}

fn date(d: time::Date) -> Date {
    crm_kit::convert::date(d)
}

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

/// The types and customer ids of the events in the outbox, in commit order.
async fn published(pool: &PgPool) -> Vec<(String, String)> {
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
        .fetch_all(pool)
        .await
        .unwrap();
    envelopes
        .iter()
        .map(|e| {
            let event =
                <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap();
            let data: pb::CustomerEvent =
                prost::Message::decode(event.payload.unwrap().value.as_slice()).unwrap();
            (event.r#type, data.customer.unwrap().id)
        })
        .collect()
}

async fn job_runs(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT COALESCE(sum(runs), 0)::bigint FROM scheduled_jobs")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn signed_customers_get_care_every_two_weeks_and_owners_one_reminder_per_overdue_contact() {
    let mut app = spawn_app().await;
    let signed = app.create(sample("关怀客户")).await;
    for stage in [
        pb::Stage::Potential,
        pb::Stage::Target,
        pb::Stage::Trial,
        pb::Stage::Signed,
    ] {
        change_stage(&mut app, &signed.id, stage).await.unwrap();
    }
    let prospect = app.create(sample("潜在客户")).await;
    // the prospect's next contact is two days ago
    let today = app.clock.today();
    app.client
        .create_communication(pb::CreateCommunicationRequest {
            request_id: rid(),
            customer_id: prospect.id.clone(),
            communication: Some(pb::Communication {
                kind: pb::CommunicationKind::Call.into(),
                summary: "called".into(),
                next_contact_date: Some(date(today - time::Duration::days(2))),
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let is = |kind: &'static str| move |e: &(String, String)| e.0 == kind;
    // the jobs ran when the service started, before these customers existed; the next scan
    // is an hour later
    app.clock.advance(time::Duration::hours(1));
    let pool = app.pool.clone();
    testing::wait_until("the first scan", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            let events = published(&pool).await;
            events.iter().any(is("customers.care_due"))
                && events.iter().any(is("customers.next_contact_overdue"))
        }
    })
    .await;
    let events = published(&app.pool).await;
    let care: Vec<_> = events
        .iter()
        .filter(|e| is("customers.care_due")(e))
        .collect();
    let overdue: Vec<_> = events
        .iter()
        .filter(|e| is("customers.next_contact_overdue")(e))
        .collect();
    assert_eq!(
        care,
        vec![&("customers.care_due".to_string(), signed.id.clone())]
    );
    assert_eq!(
        overdue,
        vec![&(
            "customers.next_contact_overdue".to_string(),
            prospect.id.clone()
        )]
    );

    // an hour later the jobs look again: nothing is due, nothing is repeated
    let runs = job_runs(&app.pool).await;
    app.clock.advance(time::Duration::hours(1));
    let pool = app.pool.clone();
    testing::wait_until(
        "the second scan",
        std::time::Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move { job_runs(&pool).await >= runs + 2 }
        },
    )
    .await;
    assert_eq!(published(&app.pool).await.len(), events.len());

    // two weeks on, the next care message; the same overdue date is not reminded again
    app.clock.advance(time::Duration::days(14));
    let pool = app.pool.clone();
    testing::wait_until(
        "the care two weeks on",
        std::time::Duration::from_secs(10),
        || {
            let pool = pool.clone();
            async move {
                published(&pool)
                    .await
                    .iter()
                    .filter(|e| e.0 == "customers.care_due")
                    .count()
                    == 2
            }
        },
    )
    .await;
    let runs = job_runs(&app.pool).await;
    app.clock.advance(time::Duration::hours(1));
    let pool = app.pool.clone();
    testing::wait_until("another scan", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move { job_runs(&pool).await >= runs + 2 }
    })
    .await;
    let events = published(&app.pool).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.0 == "customers.next_contact_overdue")
            .count(),
        1
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.0 == "customers.care_due")
            .count(),
        2
    );
}

impl App {
    /// Updates `fields` of `c` (at its version) to the values in `patch`.
    async fn update_fields(
        &mut self,
        c: &pb::Customer,
        patch: pb::Customer,
        fields: &[&str],
    ) -> Result<pb::Customer, tonic::Status> {
        self.client
            .update_customer(pb::UpdateCustomerRequest {
                customer: Some(pb::Customer {
                    id: c.id.clone(),
                    version: c.version,
                    ..patch
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: fields.iter().map(|f| f.to_string()).collect(),
                }),
            })
            .await
            .map(|r| r.into_inner().customer.unwrap())
    }

    async fn tier_changes(&mut self, id: &str) -> Vec<(pb::Tier, pb::Tier, bool, String)> {
        self.client
            .list_tier_changes(pb::ListTierChangesRequest {
                customer_id: id.into(),
                page: None,
            })
            .await
            .unwrap()
            .into_inner()
            .changes
            .into_iter()
            .map(|c| (c.from_tier(), c.to_tier(), c.r#override, c.reason))
            .collect()
    }
}

#[tokio::test]
async fn tiers_follow_their_inputs_and_a_managers_override_with_every_change_recorded() {
    use pb::Tier::{Core, Ordinary, Unspecified, Vip};
    let mut app = spawn_app().await;
    // an annual service fee of 6,000 CNY: core
    let c = app.create(sample("宁波港信息技术有限公司")).await;
    assert_eq!((c.tier(), c.computed_tier()), (Core, Core));
    // the investment passes 500,000 CNY: VIP, recomputed on the update
    let c = app
        .update_fields(
            &c,
            pb::Customer {
                investment_cny: 600_000,
                ..Default::default()
            },
            &["investment_cny"],
        )
        .await
        .unwrap();
    assert_eq!(c.tier(), Vip);
    // the tier itself cannot be written
    let e = app
        .update_fields(
            &c,
            pb::Customer {
                tier: Ordinary.into(),
                ..Default::default()
            },
            &["tier"],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("SetTierOverride"), "{}", e.message());
    // a manager overrides it, with a reason; a reason is required, the version must match
    let mut manager = app.as_caller("manager.li", &["sales_manager"], "");
    let set = |tier: pb::Tier, reason: &str, version: i64| pb::SetTierOverrideRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        tier: tier.into(),
        reason: reason.into(),
        version,
    };
    let e = manager
        .set_tier_override(set(Ordinary, "", c.version))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["reason"]);
    let e = manager
        .set_tier_override(set(Ordinary, "项目已结束", c.version - 1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let c = manager
        .set_tier_override(set(Ordinary, "项目已结束，投资为一次性采购", c.version))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!((c.tier(), c.computed_tier()), (Ordinary, Vip));
    let o = c.tier_override.clone().unwrap();
    assert_eq!(
        (o.tier(), o.reason.as_str()),
        (Ordinary, "项目已结束，投资为一次性采购")
    );
    assert_eq!(o.set.unwrap().actor, "manager.li");
    // while overridden, input changes move the computed tier only
    let c = app
        .update_fields(
            &c,
            pb::Customer {
                investment_cny: 100_000,
                annual_service_fee_cny: 8_000,
                ..Default::default()
            },
            &["investment_cny", "annual_service_fee_cny"],
        )
        .await
        .unwrap();
    assert_eq!((c.tier(), c.computed_tier()), (Ordinary, Core));
    // cleared: the computed tier applies again
    let c = manager
        .set_tier_override(set(Unspecified, "", c.version))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(c.tier(), Core);
    assert!(c.tier_override.is_none());
    // every change of the tier in force, with why
    assert_eq!(
        app.tier_changes(&c.id).await,
        [
            (
                Unspecified,
                Core,
                false,
                "annual service fee 6000 CNY > 5000".to_string()
            ),
            (
                Core,
                Vip,
                false,
                "investment 600000 CNY > 500000".to_string()
            ),
            (
                Vip,
                Ordinary,
                true,
                "override to TIER_ORDINARY: 项目已结束，投资为一次性采购".to_string()
            ),
            (Ordinary, Core, true, "override cleared".to_string()),
        ]
    );
    // a sales rep may not override
    let e = app
        .as_caller("rep.zhang", &["sales_rep"], "华东")
        .set_tier_override(set(Vip, "重要客户", c.version))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

impl App {
    /// Announces a user as the gateway does, and waits until the service has them.
    async fn announce_user(&self, id: &str, role: &str, region: &str) {
        let user = crm_proto::gateway::v1::User {
            id: id.into(),
            username: id.into(),
            roles: vec![role.into()],
            region: region.into(),
            ..Default::default()
        };
        testing::events::announce(
            &self.gateway,
            crm_kit::events::NewEvent {
                topic: "gateway",
                event_type: "gateway.user_changed",
                aggregate: &format!("users/{id}"),
                payload: crm_kit::events::Payload::of(&user),
                urgent: false,
            },
        )
        .await;
        let (pool, id, active) = (self.pool.clone(), id.to_string(), role == "sales_rep");
        testing::wait_until(
            "the user in the directory",
            std::time::Duration::from_secs(10),
            || {
                let (pool, id) = (pool.clone(), id.clone());
                async move {
                    sqlx::query_scalar::<_, bool>(
                    "SELECT EXISTS (SELECT 1 FROM directory_members WHERE user_id = $1 AND role = 'sales_rep' AND active = $2)",
                )
                .bind(id)
                .bind(active)
                .fetch_one(&pool)
                .await
                .unwrap()
                }
            },
        )
        .await;
    }

    async fn owners(&mut self, ids: &[&pb::Customer]) -> Vec<String> {
        let mut out = Vec::new();
        for c in ids {
            let got = self
                .client
                .get_customer(pb::GetCustomerRequest { id: c.id.clone() })
                .await
                .unwrap()
                .into_inner()
                .customer
                .unwrap();
            out.push(got.owner_id);
        }
        out
    }
}

#[tokio::test]
async fn customers_are_assigned_fairly_or_by_hand_all_or_nothing_and_every_change_is_recorded() {
    let mut app = spawn_app().await;
    for (id, region) in [
        ("rep.b", "华东"),
        ("rep.a", "华东"),
        ("rep.c", "华北"),
        ("rep.old", "华东"),
    ] {
        app.announce_user(id, "sales_rep", region).await;
    }
    // rep.old moves to management: no longer a rep
    app.announce_user("rep.old", "sales_manager", "华东").await;
    let unassigned = |name: &str, region: &str| {
        let mut c = sample(name);
        c.owner_id.clear();
        c.region = region.into();
        c
    };
    // rep.a already has one open customer in 华东
    let mut owned = sample("已有客户");
    owned.owner_id = "rep.a".into();
    app.create(owned).await;
    let x1 = app.create(unassigned("客户一", "华东")).await;
    let x2 = app.create(unassigned("客户二", "华东")).await;
    let x3 = app.create(unassigned("客户三", "华东")).await;
    let y1 = app.create(unassigned("客户四", "华北")).await;
    let listed = app
        .client
        .list_customers(pb::ListCustomersRequest {
            filter: Some(pb::CustomerFilter {
                unassigned: true,
                ..Default::default()
            }),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .customers;
    assert_eq!(listed.len(), 4);
    let mut manager = app.as_caller("manager.li", &["sales_manager"], "");
    let assign =
        |ids: &[&pb::Customer], mode: pb::AssignmentMode, owner: &str| pb::AssignCustomersRequest {
            request_id: rid(),
            customer_ids: ids.iter().map(|c| c.id.clone()).collect(),
            mode: mode.into(),
            owner_id: owner.into(),
            reason: if owner.is_empty() {
                String::new()
            } else {
                "客户要求更换对接人".into()
            },
        };
    // fairly: the fewest open customers in the region first, ties by id, loads kept current
    let done = manager
        .assign_customers(assign(&[&x1, &x2, &x3, &y1], pb::AssignmentMode::Auto, ""))
        .await
        .unwrap()
        .into_inner()
        .assignments;
    let owners: Vec<&str> = done.iter().map(|a| a.to_owner_id.as_str()).collect();
    assert_eq!(owners, ["rep.b", "rep.a", "rep.b", "rep.c"]);
    assert_eq!(done[0].rule, "fair: fewest open customers in 华东 (0)");
    assert_eq!(
        app.owners(&[&x1, &x2, &x3, &y1]).await,
        ["rep.b", "rep.a", "rep.b", "rep.c"]
    );
    // by hand: only a rep of the customer's region
    let e = manager
        .assign_customers(assign(&[&x1], pb::AssignmentMode::ToOwner, "rep.c"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(
        e.message().contains("works in region 华北"),
        "{}",
        e.message()
    );
    let e = manager
        .assign_customers(assign(&[&x1], pb::AssignmentMode::ToOwner, "rep.old"))
        .await
        .unwrap_err();
    assert!(e.message().contains("not a sales rep"), "{}", e.message());
    manager
        .assign_customers(assign(&[&x1], pb::AssignmentMode::ToOwner, "rep.a"))
        .await
        .unwrap();
    let changes = manager
        .list_owner_changes(pb::ListOwnerChangesRequest {
            customer_id: x1.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let seen: Vec<(&str, &str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c.from_owner_id.as_str(),
                c.to_owner_id.as_str(),
                c.rule.as_str(),
                c.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("", "rep.b", "fair: fewest open customers in 华东 (0)", ""),
            ("rep.b", "rep.a", "by hand", "客户要求更换对接人"),
        ]
    );
    assert_eq!(changes[1].changed.as_ref().unwrap().actor, "manager.li");
    // all or nothing: a customer of a region without reps fails the whole request
    let z = app.create(unassigned("客户五", "华南")).await;
    let e = manager
        .assign_customers(assign(&[&x2, &z], pb::AssignmentMode::ToOwner, "rep.b"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    let e = manager
        .assign_customers(assign(&[&z], pb::AssignmentMode::Auto, ""))
        .await
        .unwrap_err();
    assert!(
        e.message().contains("no sales rep works in region 华南"),
        "{}",
        e.message()
    );
    assert_eq!(app.owners(&[&x2, &z]).await, ["rep.a", ""]);
    // bad requests name their fields; a sales rep may not assign
    let e = manager
        .assign_customers(pb::AssignCustomersRequest {
            request_id: rid(),
            mode: pb::AssignmentMode::ToOwner.into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["customer_ids", "owner_id"]);
    let e = app
        .as_caller("rep.a", &["sales_rep"], "华东")
        .assign_customers(assign(&[&z], pb::AssignmentMode::Auto, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn signing_schedules_the_visits_and_the_share_done_on_time_is_reported() {
    use pb::VisitKind::{Return, Satisfaction};
    let mut app = spawn_app().await; // the clock: 2026-03-02 09:00 UTC
    let c1 = app.create(sample("签约客户一")).await;
    let mut other = sample("签约客户二");
    other.owner_id = "rep.wu".into();
    other.region = "华北".into();
    let c2 = app.create(other).await;
    for c in [&c1, &c2] {
        change_stage(&mut app, &c.id, pb::Stage::Signed)
            .await
            .unwrap();
    }
    let visits = |app: &mut App, id: String| {
        let mut client = app.client.clone();
        async move {
            client
                .list_return_visits(pb::ListReturnVisitsRequest {
                    customer_id: id,
                    page: None,
                })
                .await
                .unwrap()
                .into_inner()
                .visits
        }
    };
    let v1 = visits(&mut app, c1.id.clone()).await;
    let due: Vec<(pb::VisitKind, Date, &str)> = v1
        .iter()
        .map(|v| (v.kind(), v.due_date.unwrap(), v.owner_id.as_str()))
        .collect();
    let date = |year, month, day| Date { year, month, day };
    assert_eq!(
        due,
        [
            (Return, date(2026, 3, 9), "rep.zhang"),
            (Satisfaction, date(2026, 5, 2), "rep.zhang"),
        ]
    );
    // the results: a score in time, bad results refused, a result only once
    let record = |visit: &str, score: i32, refusal: &str| pb::RecordReturnVisitRequest {
        request_id: rid(),
        visit_id: visit.into(),
        score,
        refusal_reason: refusal.into(),
        comments: "工程师响应及时".into(),
    };
    let e = app
        .client
        .record_return_visit(record(&v1[0].id, 0, ""))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["score"]);
    let e = app
        .client
        .record_return_visit(record(&v1[0].id, 6, ""))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["score"]);
    app.clock.advance(time::Duration::days(3));
    let done = app
        .client
        .record_return_visit(record(&v1[0].id, 5, ""))
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    assert!(done.done && done.on_time);
    assert_eq!(done.score, 5);
    let e = app
        .client
        .record_return_visit(record(&v1[0].id, 4, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // the other customer's return visit is late, and refused
    app.clock.advance(time::Duration::days(7)); // 2026-03-12
    let v2 = visits(&mut app, c2.id.clone()).await;
    let late = app
        .client
        .record_return_visit(record(&v2[0].id, 0, "客户表示不需要回访"))
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    assert!(late.done && !late.on_time);
    assert_eq!(late.refusal_reason, "客户表示不需要回访");
    // the share done on time, per rep and per region: the satisfaction visits are not due yet
    let report = |group: pb::VisitReportGrouping| pb::ReportReturnVisitsRequest {
        group_by: group.into(),
        from: Some(date(2026, 3, 1)),
        to: Some(date(2026, 12, 31)),
    };
    let rows = app
        .client
        .report_return_visits(report(pb::VisitReportGrouping::Owner))
        .await
        .unwrap()
        .into_inner()
        .rows;
    let seen: Vec<(&str, i64, i64, i64, i64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.due,
                r.on_time,
                r.late,
                r.open,
                r.on_time_fraction,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("rep.wu", 1, 0, 1, 0, 0.0), ("rep.zhang", 1, 1, 0, 0, 1.0)]
    );
    let regions: Vec<String> = app
        .client
        .report_return_visits(report(pb::VisitReportGrouping::Region))
        .await
        .unwrap()
        .into_inner()
        .rows
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(regions, ["华东", "华北"]);
    let e = app
        .client
        .report_return_visits(pb::ReportReturnVisitsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["group_by", "from", "to"]);
}

#[tokio::test]
async fn the_tier_policy_in_force_shows_whether_visits_and_reports_are_on_track() {
    let mut app = spawn_app().await; // 2026-03-02
    let mut vip = sample("战略客户");
    vip.reference_account = true;
    let c = app.create(vip).await;
    let log = |app: &mut App, kind: pb::CommunicationKind| {
        let mut client = app.client.clone();
        let id = c.id.clone();
        let next = app.clock.now().date() + time::Duration::days(30);
        async move {
            client
                .create_communication(pb::CreateCommunicationRequest {
                    request_id: rid(),
                    customer_id: id,
                    communication: Some(pb::Communication {
                        kind: kind.into(),
                        summary: "季度服务".into(),
                        next_contact_date: Some(Date {
                            year: next.year(),
                            month: i32::from(next.month() as u8),
                            day: i32::from(next.day()),
                        }),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
        }
    };
    let status = |app: &mut App| {
        let mut client = app.client.clone();
        let id = c.id.clone();
        async move {
            client
                .get_service_policy(pb::GetServicePolicyRequest { customer_id: id })
                .await
                .unwrap()
                .into_inner()
                .status
                .unwrap()
        }
    };
    // VIP (C-8): 2 h response, 4 visits a year, a report every quarter, a dedicated engineer
    let s = status(&mut app).await;
    let p = s.policy.unwrap();
    assert_eq!(
        (
            p.tier(),
            p.response_minutes,
            p.visits_per_year,
            p.report_every_months,
            p.dedicated_engineer
        ),
        (pb::Tier::Vip, 120, 4, 3, true)
    );
    assert!(s.visits_on_track && s.reports_on_track);
    assert_eq!(
        s.next_report_due,
        Some(Date {
            year: 2026,
            month: 6,
            day: 2
        })
    );
    // a visit and a report in the first weeks, then half a year of nothing
    app.clock.advance(time::Duration::days(10));
    log(&mut app, pb::CommunicationKind::Visit).await;
    log(&mut app, pb::CommunicationKind::ServiceReport).await;
    app.clock.advance(time::Duration::days(173)); // 2026-09-01
    let s = status(&mut app).await;
    assert_eq!((s.visits_last_year, s.visits_due), (1, 2));
    assert!(!s.visits_on_track);
    assert_eq!(
        s.last_report_date,
        Some(Date {
            year: 2026,
            month: 3,
            day: 12
        })
    );
    assert_eq!(
        s.next_report_due,
        Some(Date {
            year: 2026,
            month: 6,
            day: 12
        })
    );
    assert!(!s.reports_on_track, "the quarterly report is overdue");
    // caught up
    log(&mut app, pb::CommunicationKind::Visit).await;
    log(&mut app, pb::CommunicationKind::ServiceReport).await;
    let s = status(&mut app).await;
    assert!(s.visits_on_track && s.reports_on_track);
    assert_eq!(
        s.next_report_due,
        Some(Date {
            year: 2026,
            month: 12,
            day: 1
        })
    );
}

#[tokio::test]
async fn a_lagging_service_plan_reminds_the_owner_once_a_month_at_most() {
    let mut app = spawn_app().await; // 2026-03-02 09:00
    let mut vip = sample("服务落后客户");
    vip.reference_account = true;
    let c = app.create(vip).await;
    change_stage(&mut app, &c.id, pb::Stage::Signed)
        .await
        .unwrap();
    let reminders = |pool: PgPool, id: String| async move {
        published(&pool)
            .await
            .into_iter()
            .filter(|(t, c)| t == "customers.service_overdue" && *c == id)
            .count()
    };
    // 100 days on: no visit (one due) and the quarterly report overdue — the owner is told
    app.clock.advance(time::Duration::days(100));
    let (pool, id) = (app.pool.clone(), c.id.clone());
    testing::wait_until("the reminder", std::time::Duration::from_secs(10), || {
        let (pool, id) = (pool.clone(), id.clone());
        async move { reminders(pool, id).await == 1 }
    })
    .await;
    // the next day's check finds it still lagging, but reminded days ago: quiet
    let runs = job_runs(&app.pool).await;
    app.clock.advance(time::Duration::days(1));
    let pool = app.pool.clone();
    testing::wait_until("the next check", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move { job_runs(&pool).await >= runs + 3 }
    })
    .await;
    assert_eq!(reminders(app.pool.clone(), c.id.clone()).await, 1);
    // a month after the reminder, still lagging: told again
    app.clock.advance(time::Duration::days(30));
    let (pool, id) = (app.pool.clone(), c.id.clone());
    testing::wait_until(
        "the second reminder",
        std::time::Duration::from_secs(10),
        || {
            let (pool, id) = (pool.clone(), id.clone());
            async move { reminders(pool, id).await == 2 }
        },
    )
    .await;
}

/// Uploads `bytes` as an import in chunks of `chunk` bytes with `client`.
async fn upload(
    mut client: Client,
    request_id: &str,
    bytes: &[u8],
    chunk: usize,
) -> Result<pb::Import, Status> {
    let mut messages = vec![pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Header(pb::ImportHeader {
            request_id: request_id.into(),
            file_name: "客户导入.csv".into(),
        })),
    }];
    for piece in bytes.chunks(chunk) {
        messages.push(pb::UploadImportRequest {
            part: Some(pb::upload_import_request::Part::Chunk(piece.to_vec())),
        });
    }
    client
        .upload_import(tokio_stream::iter(messages))
        .await
        .map(|r| r.into_inner().import.unwrap())
}

impl App {
    /// Uploads `bytes` as an import in chunks of `chunk` bytes.
    async fn upload(
        &self,
        request_id: &str,
        bytes: &[u8],
        chunk: usize,
    ) -> Result<pb::Import, Status> {
        upload(self.client.clone(), request_id, bytes, chunk).await
    }

    async fn import_rows(&mut self, id: &str) -> Vec<pb::ImportRow> {
        self.client
            .list_import_rows(pb::ListImportRowsRequest {
                import_id: id.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .rows
    }
}

#[tokio::test]
async fn a_gbk_file_streamed_in_pieces_is_imported_with_a_report_for_every_row_and_once_only() {
    let mut app = spawn_app().await;
    let existing = app.create(sample("上海精工电子有限公司")).await; // phone +86 138-0013-8000
    let text = "客户名称,区域,联系人,联系电话,邮箱,年服务费\n\
                杭州云帆软件股份有限公司,华东,陈丽,0571-8765 4321,chenli@yunfan.example.cn,6000\n\
                杭州云帆软件,华东,陈丽,0571-8765 4321,,\n\
                上海精工电子,华东,王晓明,13800138000,,\n\
                南京长江物流集团,华东,刘强,12,,\n\
                宁波港信息,华东,,,,,多出一列\n\
                \"广州 \"\"南方\"\" 贸易\",华南,林芳,020-3888 9999,lin@nanfang.example.cn,\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    let import = app.upload("import-1", &gbk, 13).await.unwrap();
    assert_eq!(import.state(), pb::ImportState::Done);
    assert_eq!(import.encoding, "gbk");
    assert_eq!(
        (
            import.rows,
            import.accepted,
            import.rejected,
            import.duplicates
        ),
        (6, 2, 2, 2)
    );
    let rows = app.import_rows(&import.id).await;
    let statuses: Vec<(i64, pb::ImportRowStatus)> =
        rows.iter().map(|r| (r.row_number, r.status())).collect();
    use pb::ImportRowStatus::{Accepted, Duplicate, Rejected};
    assert_eq!(
        statuses,
        [
            (1, Accepted),
            (2, Duplicate),
            (3, Duplicate),
            (4, Rejected),
            (5, Rejected),
            (6, Accepted)
        ]
    );
    assert_eq!(rows[1].duplicate_of_row, 1, "{}", rows[1].reason);
    assert_eq!(rows[2].duplicate_of_customer_id, existing.id);
    assert_eq!(rows[3].column, "contact_phone");
    assert_eq!(rows[4].column, "row");
    let created = app
        .client
        .get_customer(pb::GetCustomerRequest {
            id: rows[0].customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(created.display_name, "杭州云帆软件股份有限公司");
    assert_eq!(created.tier(), pb::Tier::Core, "its fee makes it core");
    assert_eq!(created.source_channel(), pb::SourceChannel::Import);
    let quoted = app
        .client
        .get_customer(pb::GetCustomerRequest {
            id: rows[5].customer_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(quoted.display_name, "广州 \"南方\" 贸易");
    // each region's sales manager is told of its new, unassigned customers
    let envelopes: Vec<Vec<u8>> = sqlx::query_scalar("SELECT envelope FROM outbox ORDER BY seq")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let done: Vec<(String, i64)> = envelopes
        .iter()
        .map(|e| <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap())
        .filter(|e| e.r#type == "customers.import_done")
        .map(|e| {
            let data: pb::ImportEvent =
                prost::Message::decode(e.payload.unwrap().value.as_slice()).unwrap();
            (data.region, data.accepted_in_region)
        })
        .collect();
    assert_eq!(done, [("华东".to_string(), 1), ("华南".to_string(), 1)]);
    // the report as CSV, every row in it
    let mut stream = app
        .client
        .download_import_report(pb::DownloadImportReportRequest {
            import_id: import.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut csv_bytes = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        csv_bytes.extend(chunk.data);
    }
    assert!(
        csv_bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "a BOM for Excel"
    );
    let report = String::from_utf8(csv_bytes[3..].to_vec()).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines.len(), 7);
    assert!(lines[0].starts_with("row,status,customer_id,column,reason"));
    assert!(lines[2].starts_with("2,duplicate,,,"), "{}", lines[2]);
    assert!(
        lines[4].starts_with("4,rejected,,contact_phone,"),
        "{}",
        lines[4]
    );
    // the same request again: the same import; the same file again: nothing new
    let again = app.upload("import-1", &gbk, 13).await.unwrap();
    assert_eq!(again.id, import.id);
    let customers = app.count("customers").await;
    let second = app.upload("import-2", &gbk, 4096).await.unwrap();
    assert_eq!(
        (second.accepted, second.duplicates, second.rejected),
        (0, 4, 2)
    );
    assert_eq!(app.count("customers").await, customers);
}

#[tokio::test]
async fn broken_files_are_refused_with_the_reason() {
    let mut app = spawn_app().await;
    // a UTF-8 file with a BOM but an unknown column
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice("name,region,fax\nA,华东,1\n".as_bytes());
    let e = app.upload("bad-1", &bom, 7).await.unwrap_err();
    assert_eq!(violations(&e), ["file"]);
    assert!(e.message().contains("unknown columns"), "{}", e.message());
    // empty
    let e = app.upload("bad-2", b"", 7).await.unwrap_err();
    assert!(
        e.message().contains("header row is missing"),
        "{}",
        e.message()
    );
    // no header first
    let e = app
        .client
        .upload_import(tokio_stream::iter(vec![pb::UploadImportRequest {
            part: Some(pb::upload_import_request::Part::Chunk(
                b"name,region\n".to_vec(),
            )),
        }]))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["header"]);
    assert_eq!(app.count("customers").await, 0);
}

#[tokio::test]
async fn an_interrupted_import_keeps_a_report_for_every_row_it_applied() {
    let app = spawn_app_with(&[("customers.import_batch_rows", "500".to_string())]).await;
    // 600 rows in one piece; the upload then stalls (the first batch of 500 is committed)
    let mut file = String::from("name,region,contact_name,contact_phone\n");
    for i in 0..600 {
        file.push_str(&format!("客户{i:04},华东,联系人{i},139{i:08}\n"));
    }
    let (send, receive) = tokio::sync::mpsc::channel(4);
    send.send(pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Header(pb::ImportHeader {
            request_id: "stalled".into(),
            file_name: "big.csv".into(),
        })),
    })
    .await
    .unwrap();
    send.send(pb::UploadImportRequest {
        part: Some(pb::upload_import_request::Part::Chunk(file.into_bytes())),
    })
    .await
    .unwrap();
    let mut client = app.client.clone();
    let upload = tokio::spawn(async move {
        client
            .upload_import(tokio_stream::wrappers::ReceiverStream::new(receive))
            .await
    });
    let pool = app.pool.clone();
    let progress = || {
        let pool = pool.clone();
        async move {
            sqlx::query_as::<_, (String, i64)>(
                "SELECT state, rows FROM imports WHERE request_id = 'stalled'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
        }
    };
    testing::wait_until(
        "the first batch",
        std::time::Duration::from_secs(20),
        || {
            let p = progress();
            async move { p.await.is_some_and(|(_, rows)| rows == 500) }
        },
    )
    .await;
    // the client goes away: the server drops the call with it, and the import stays PROCESSING
    // until the stale window has passed without progress
    upload.abort();
    drop(send);
    app.clock.advance(time::Duration::minutes(11));
    testing::wait_until(
        "the import to fail",
        std::time::Duration::from_secs(20),
        || {
            let p = progress();
            async move {
                p.await
                    .is_some_and(|(state, _)| state == "IMPORT_STATE_FAILED")
            }
        },
    )
    .await;
    // every applied row is in the report, and only those
    let (customers, reported): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM customers), (SELECT count(*) FROM import_rows)",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((customers, reported), (500, 500));
}

#[tokio::test]
async fn an_import_whose_process_died_is_marked_failed_after_the_stale_window() {
    let app = spawn_app().await;
    let now = app.clock.now();
    sqlx::query(
        "INSERT INTO imports (id, request_id, file_name, state, encoding, rows, create_time, created_by, update_time) \
         VALUES ($1, 'killed', 'x.csv', 'IMPORT_STATE_PROCESSING', 'utf-8', 1500, $2, 'clerk', $2)",
    )
    .bind(uuid::Uuid::now_v7())
    .bind(now)
    .execute(&app.pool)
    .await
    .unwrap();
    app.clock.advance(time::Duration::minutes(11));
    let pool = app.pool.clone();
    testing::wait_until("the sweep", std::time::Duration::from_secs(20), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT failure FROM imports WHERE request_id = 'killed'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
            .starts_with("interrupted after row 1500")
        }
    })
    .await;
}

#[tokio::test]
async fn a_file_over_the_size_limit_is_refused_with_the_limit() {
    let app = spawn_app_with(&[("customers.import_max_bytes", "64".to_string())]).await;
    let mut file = String::from("name,region\n");
    for i in 0..10 {
        file.push_str(&format!("客户{i},华东\n"));
    }
    let e = app
        .upload("too-big", file.as_bytes(), 16)
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["file"]);
    assert!(
        e.message().contains("larger than the limit of 64 bytes"),
        "{}",
        e.message()
    );
    let state: String =
        sqlx::query_scalar("SELECT state FROM imports WHERE request_id = 'too-big'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(state, "IMPORT_STATE_FAILED");
}

#[tokio::test]
async fn duplicates_across_batches_written_side_by_side_and_concurrent_imports_create_once() {
    // batches of three rows: while one batch is written the next is decided, so a row's
    // earlier twin is often in a batch not yet committed
    let mut app = spawn_app_with(&[("customers.import_batch_rows", "3".to_string())]).await;
    let mut file = String::from("name,region,contact_name,contact_phone\n");
    let mut twins = Vec::new();
    for i in 1..=60i64 {
        if i % 4 == 0 {
            // the same phone as the row before, another name
            file.push_str(&format!(
                "别名{i},华东,联系人{i},+86 139-0000-{:04}\n",
                i - 1
            ));
            twins.push((i, i - 1));
        } else {
            file.push_str(&format!("客户{i}有限公司,华东,联系人{i},139{:08}\n", i));
        }
    }
    let import = app.upload("sides", file.as_bytes(), 50).await.unwrap();
    assert_eq!(
        (import.rows, import.accepted, import.duplicates),
        (60, 45, 15)
    );
    let rows = app
        .client
        .list_import_rows(pb::ListImportRowsRequest {
            import_id: import.id.clone(),
            page: Some(crm_proto::common::v1::PageRequest {
                page_size: 100,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .rows;
    assert_eq!(rows.len(), 60, "every row reported once");
    for (row, of) in twins {
        let r = &rows[row as usize - 1];
        assert_eq!(
            (r.row_number, r.status(), r.duplicate_of_row),
            (row, pb::ImportRowStatus::Duplicate, of),
            "{}",
            r.reason
        );
    }
    let customers: i64 =
        sqlx::query_scalar("SELECT count(*) FROM customers WHERE import_id IS NOT NULL")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(customers, 45);
    // the batches' events carry each new customer as a read gives it back
    let envelopes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE aggregate = $1 ORDER BY seq")
            .bind(format!("imports/{}", import.id))
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let mut announced = Vec::new();
    for e in envelopes {
        let event = <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap();
        if event.r#type == "customers.customers_imported" {
            let data: pb::CustomersImportedEvent =
                prost::Message::decode(event.payload.unwrap().value.as_slice()).unwrap();
            announced.extend(data.customers);
        }
    }
    assert_eq!(announced.len(), 45);
    for customer in announced {
        let read = app
            .client
            .clone()
            .get_customer(pb::GetCustomerRequest {
                id: customer.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .customer
            .unwrap();
        assert_eq!(customer, read);
    }

    // the same new file twice at once: one import creates each customer, the other finds it
    let mut other = String::from("name,region,contact_name,contact_phone\n");
    for i in 1..=30 {
        other.push_str(&format!("新客户{i},华南,联系人{i},138{i:08}\n"));
    }
    let (a, b) = tokio::join!(
        app.upload("twice-a", other.as_bytes(), 40),
        app.upload("twice-b", other.as_bytes(), 40)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        (a.accepted + b.accepted, a.duplicates + b.duplicates),
        (30, 30)
    );
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM customers WHERE region = '华南'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(created, 30);
}

#[tokio::test]
async fn an_import_waiting_for_another_is_kept_alive_and_runs_when_the_other_is_done() {
    let app = spawn_app().await;
    // another import holds the lock (as a running import's decider does)
    let mut other = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.import'))")
        .execute(&mut *other)
        .await
        .unwrap();
    let file = "name,region,contact_name,contact_phone\n等待客户,华东,联系人,13700000001\n";
    let waiting = tokio::spawn(upload(app.client.clone(), "waiting", file.as_bytes(), 1024));
    let pool = app.pool.clone();
    testing::wait_until("the import", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM imports WHERE request_id = 'waiting'",
            )
            .fetch_one(&pool)
            .await
            .unwrap()
                == 1
        }
    })
    .await;
    app.clock.advance(time::Duration::minutes(1));
    // while it waits it is marked alive (every 10 s), though it has no rows yet
    testing::wait_until("a sign of life", std::time::Duration::from_secs(30), || {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT update_time > create_time AND rows = 0 AND state = 'IMPORT_STATE_PROCESSING' \
                 FROM imports WHERE request_id = 'waiting'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap()
            .unwrap_or(false)
        }
    })
    .await;
    assert!(!waiting.is_finished());
    other.rollback().await.unwrap();
    let import = waiting.await.unwrap().unwrap();
    assert_eq!(
        (import.state(), import.accepted),
        (pb::ImportState::Done, 1)
    );
}
