//! The sales pipeline through the gateway (P-1 … P-3, P-7), as reps and sales managers use it:
//! a lead qualified and converted once on a customer; an opportunity's amount, close date and
//! stages in its history, with its follow-up log; a quote whose discount above the limit is
//! approved by a manager who did not ask, voided by an edit and never inherited by a copy,
//! blocking the send and the win until it holds; won is 100 %, final; every bad input named;
//! a rep sees their own work, a manager their region's; a departing rep's work moved in one
//! call.

use crm_kit::{Clock, testing};
use crm_proto::{
    common::v1::{Date, Money},
    gateway::v1::{self as gw, auth_service_client::AuthServiceClient},
    pipeline::v1::{
        self as pb, LeadSource, LeadState, LeadTransition, OpportunityType, QuoteState, Stage,
        pipeline_service_client::PipelineServiceClient,
    },
};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

type Client = PipelineServiceClient<InterceptedService<Channel, testing::Bearer>>;

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

struct Platform {
    running: crm_tests::Running,
    gateway: Channel,
    ids: std::collections::BTreeMap<&'static str, String>,
}

impl Platform {
    async fn start() -> Self {
        let mut env = testing::test_env().await;
        // a hundred signings at once are the test's concern, not the gateway's limit
        env.settings.rate_limit.enabled = false;
        let running = crm_tests::start(env.settings, Clock::system())
            .await
            .expect("platform starts");
        let ids = running
            .users(&[
                ("rep.east", "sales_rep", "华东"),
                ("rep.east.2", "sales_rep", "华东"),
                ("rep.north", "sales_rep", "华北"),
                ("manager.east", "sales_manager", "华东"),
                ("manager.east.2", "sales_manager", "华东"),
                ("finance", "finance", ""),
                ("admin", "admin", ""),
            ])
            .await;
        let gateway = running.channel("gateway").await;
        Self {
            running,
            gateway,
            ids,
        }
    }

    /// Waits until `username`'s inbox has a message whose subject starts with `subject`.
    async fn told(&self, username: &str, subject: &str) {
        use crm_proto::notifications::v1::{
            ListInboxRequest, notification_service_client::NotificationServiceClient,
        };
        let token = AuthServiceClient::new(self.gateway.clone())
            .login(gw::LoginRequest {
                username: username.into(),
                password: crm_tests::PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token;
        let inbox = NotificationServiceClient::with_interceptor(
            self.gateway.clone(),
            testing::Bearer::new(&token),
        );
        testing::wait_until(
            &format!("{username} hears: {subject}"),
            std::time::Duration::from_secs(30),
            || {
                let mut inbox = inbox.clone();
                async move {
                    inbox
                        .list_inbox(ListInboxRequest::default())
                        .await
                        .map(|r| r.into_inner().items)
                        .unwrap_or_default()
                        .iter()
                        .any(|i| i.subject.starts_with(subject))
                }
            },
        )
        .await;
    }

    async fn client(&self, username: &str) -> Client {
        let token = AuthServiceClient::new(self.gateway.clone())
            .login(gw::LoginRequest {
                username: username.into(),
                password: crm_tests::PASSWORD.into(),
            })
            .await
            .expect("login")
            .into_inner()
            .access_token;
        PipelineServiceClient::with_interceptor(self.gateway.clone(), testing::Bearer::new(&token))
    }
}

fn cny(units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        units,
        nanos: 0,
    })
}

fn next_year() -> Option<Date> {
    let y = time::OffsetDateTime::now_utc().year() + 1;
    Some(Date {
        year: y,
        month: 6,
        day: 30,
    })
}

fn fields(status: &tonic::Status) -> Vec<String> {
    use tonic_types::StatusExt;
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

fn line(units: i64, discount_bp: i32) -> pb::QuoteLine {
    pb::QuoteLine {
        product: "CRM 企业版许可".into(),
        quantity: 10,
        unit_price: cny(units),
        discount_bp,
    }
}

async fn save(client: &mut Client, quote: pb::Quote) -> Result<pb::Quote, tonic::Status> {
    client
        .save_quote(pb::SaveQuoteRequest {
            request_id: rid(),
            quote: Some(quote),
            version: 0,
        })
        .await
        .map(|r| r.into_inner().quote.unwrap())
}

async fn request(client: &mut Client, id: &str) -> Result<pb::Quote, tonic::Status> {
    client
        .request_discount_approval(pb::RequestDiscountApprovalRequest {
            request_id: rid(),
            id: id.into(),
            version: 0,
            reason: "客户今年预算只有 12 万".into(),
        })
        .await
        .map(|r| r.into_inner().quote.unwrap())
}

async fn decide(client: &mut Client, id: &str, approve: bool) -> Result<pb::Quote, tonic::Status> {
    client
        .decide_discount(pb::DecideDiscountRequest {
            request_id: rid(),
            id: id.into(),
            version: 0,
            approve,
            reason: "战略客户，同意".into(),
        })
        .await
        .map(|r| r.into_inner().quote.unwrap())
}

async fn send(client: &mut Client, id: &str) -> Result<pb::Quote, tonic::Status> {
    client
        .send_quote(pb::SendQuoteRequest {
            request_id: rid(),
            id: id.into(),
            version: 0,
        })
        .await
        .map(|r| r.into_inner().quote.unwrap())
}

async fn stage(
    client: &mut Client,
    id: &str,
    stage: Stage,
    reason: &str,
) -> Result<pb::Opportunity, tonic::Status> {
    client
        .move_opportunity_stage(pb::MoveOpportunityStageRequest {
            request_id: rid(),
            id: id.into(),
            version: 0,
            stage: stage as i32,
            probability: 0,
            reason: reason.into(),
        })
        .await
        .map(|r| r.into_inner().opportunity.unwrap())
}

#[tokio::test]
async fn a_lead_becomes_an_opportunity_won_only_once_its_discount_is_approved_for_its_quote() {
    let p = Platform::start().await;
    let customer = p.running.customer("无锡新材料有限公司", "华东").await;
    let mut rep = p.client("rep.east").await;
    let mut manager = p.client("manager.east").await;

    // a lead from a campaign, qualified and converted; a retried conversion makes one
    let lead = rep
        .create_lead(pb::CreateLeadRequest {
            request_id: rid(),
            lead: Some(pb::Lead {
                name: "无锡新材料有限公司".into(),
                contact_name: "李娜".into(),
                contact_phone: "+86 139 0000 1111".into(),
                source: LeadSource::Campaign as i32,
                source_ref: "2026 华东展会".into(),
                region: "华东".into(),
                interest: "客服热线与工单".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(lead.owner_id, p.ids["rep.east"]);
    let convert = pb::ConvertLeadRequest {
        request_id: rid(),
        id: lead.id.clone(),
        customer_id: customer.clone(),
        opportunity: Some(pb::Opportunity {
            r#type: OpportunityType::NewBusiness as i32,
            amount: cny(0),
            expected_close_date: next_year(),
            ..Default::default()
        }),
    };
    let early = rep.convert_lead(convert.clone()).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "qualified first");
    rep.transition_lead(pb::TransitionLeadRequest {
        request_id: rid(),
        id: lead.id.clone(),
        transition: LeadTransition::Qualify as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    let converted = rep
        .convert_lead(convert.clone())
        .await
        .unwrap()
        .into_inner();
    let again = rep.convert_lead(convert).await.unwrap().into_inner();
    let o = converted.opportunity.unwrap();
    assert_eq!(again.opportunity.unwrap().id, o.id, "one opportunity");
    assert_eq!(converted.lead.unwrap().state, LeadState::Converted as i32);
    assert_eq!((o.stage, o.probability), (Stage::Qualification as i32, 10));
    assert_eq!(o.name, "无锡新材料有限公司");

    // a lead of a company not yet a customer: the customer is made from it, once
    let fresh = rep
        .create_lead(pb::CreateLeadRequest {
            request_id: rid(),
            lead: Some(pb::Lead {
                name: "常熟智造装备有限公司".into(),
                contact_name: "钱工".into(),
                contact_phone: "+86 135 0000 2222".into(),
                source: LeadSource::Hotline as i32,
                region: "华东".into(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    rep.transition_lead(pb::TransitionLeadRequest {
        request_id: rid(),
        id: fresh.id.clone(),
        transition: LeadTransition::Qualify as i32,
        ..Default::default()
    })
    .await
    .unwrap();
    let on_new = pb::ConvertLeadRequest {
        request_id: rid(),
        id: fresh.id.clone(),
        customer_id: String::new(),
        opportunity: Some(pb::Opportunity {
            r#type: OpportunityType::NewBusiness as i32,
            expected_close_date: next_year(),
            ..Default::default()
        }),
    };
    let made = rep.convert_lead(on_new.clone()).await.unwrap().into_inner();
    let again = rep.convert_lead(on_new).await.unwrap().into_inner();
    let made_on = made.opportunity.unwrap().customer_id;
    assert_eq!(again.opportunity.unwrap().customer_id, made_on);
    assert_eq!(made.lead.unwrap().customer_id, made_on);
    let customer_made = fetch_customer(&p.running.customers_admin().await, &made_on).await;
    assert_eq!(
        (
            customer_made.display_name.as_str(),
            customer_made.owner_id.as_str()
        ),
        ("常熟智造装备有限公司", p.ids["rep.east"].as_str())
    );

    // winning needs an amount
    let no_amount = stage(&mut rep, &o.id, Stage::Won, "").await.unwrap_err();
    assert_eq!(no_amount.code(), Code::FailedPrecondition);
    let updated = rep
        .update_opportunity(pb::UpdateOpportunityRequest {
            request_id: rid(),
            id: o.id.clone(),
            version: o.version,
            opportunity: Some(pb::Opportunity {
                amount: cny(150_000),
                ..Default::default()
            }),
            update_mask: vec!["amount".into()],
            reason: "客户确认采购范围".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(updated.amount.unwrap().units, 150_000);
    let proposal = stage(&mut rep, &o.id, Stage::Proposal, "方案已提交")
        .await
        .unwrap();
    assert_eq!(proposal.probability, 50);
    rep.add_follow_up(pb::AddFollowUpRequest {
        request_id: rid(),
        opportunity_id: o.id.clone(),
        follow_up: Some(pb::FollowUp {
            next_step: "下周二安排演示".into(),
            not_in_hurry_reason: "预算要等季度审批".into(),
            plan: "先做试点，分期付款".into(),
            ..Default::default()
        }),
    })
    .await
    .unwrap();

    // a quote at 15 % (the limit is 10 %): not sent, not won, until approved
    let quote = save(
        &mut rep,
        pb::Quote {
            opportunity_id: o.id.clone(),
            lines: vec![line(15_000, 1500)],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(quote.needs_approval);
    assert_eq!(quote.total.as_ref().unwrap().units, 127_500);
    assert_eq!(
        send(&mut rep, &quote.id).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        stage(&mut rep, &o.id, Stage::Won, "")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    let asked = request(&mut rep, &quote.id).await.unwrap();
    assert_eq!(asked.state, QuoteState::ApprovalRequested as i32);
    // a rep does not decide; the manager approves
    assert_eq!(
        decide(&mut rep, &quote.id, true).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let approved = decide(&mut manager, &quote.id, true).await.unwrap();
    assert_eq!(approved.state, QuoteState::Approved as i32);
    // the region's managers heard of the request, the rep of the decision
    p.told("manager.east.2", "折扣待审批").await;
    p.told("rep.east", "折扣审批结果").await;
    // an edited price voids the approval
    let edited = save(
        &mut rep,
        pb::Quote {
            id: quote.id.clone(),
            lines: vec![line(14_000, 1500)],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (edited.state, edited.revision),
        (QuoteState::Draft as i32, 2)
    );
    assert_eq!(
        send(&mut rep, &quote.id).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // asked again; a manager who asks may not decide
    let mut other_manager = p.client("manager.east.2").await;
    request(&mut other_manager, &quote.id).await.unwrap();
    assert_eq!(
        decide(&mut other_manager, &quote.id, true)
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    decide(&mut manager, &quote.id, true).await.unwrap();
    // a copy does not inherit the approval
    let copy = rep
        .copy_quote(pb::CopyQuoteRequest {
            request_id: rid(),
            id: quote.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .quote
        .unwrap();
    assert_eq!(copy.state, QuoteState::Draft as i32);
    assert_eq!(
        send(&mut rep, &copy.id).await.unwrap_err().code(),
        Code::FailedPrecondition
    );
    // the copy is dropped back under the limit; the approved one is sent; then won
    save(
        &mut rep,
        pb::Quote {
            id: copy.id.clone(),
            lines: vec![line(14_000, 500)],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        send(&mut rep, &quote.id).await.unwrap().state,
        QuoteState::Sent as i32
    );
    let won = stage(&mut rep, &o.id, Stage::Won, "合同签订")
        .await
        .unwrap();
    assert_eq!((won.stage, won.probability), (Stage::Won as i32, 100));
    assert_eq!(
        stage(&mut rep, &o.id, Stage::Lost, "x")
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition,
        "won is final"
    );
    // the history holds every stage, amount and close-date change
    let history = rep
        .list_opportunity_history(pb::ListOpportunityHistoryRequest {
            id: o.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let stages: Vec<&str> = history
        .iter()
        .filter(|c| c.field == "stage")
        .map(|c| c.to_value.as_str())
        .collect();
    assert_eq!(stages, ["QUALIFICATION", "PROPOSAL", "WON"]);
    assert!(history.iter().any(|c| c.field == "amount"
        && c.from_value == "CNY 0.00"
        && c.to_value == "CNY 150000.00"
        && c.reason == "客户确认采购范围"));
    let follow_ups = rep
        .list_follow_ups(pb::ListFollowUpsRequest {
            opportunity_id: o.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .follow_ups;
    assert_eq!(follow_ups[0].not_in_hurry_reason, "预算要等季度审批");
    // and published like every change
    let outbox = crm_kit::db::connect(&p.running.settings.database, "pipeline")
        .await
        .unwrap();
    let envelopes: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT envelope FROM outbox WHERE aggregate = $1")
            .bind(format!("opportunities/{}", o.id))
            .fetch_all(&outbox)
            .await
            .unwrap();
    let published = envelopes
        .iter()
        .map(|e| <crm_proto::events::v1::Event as prost::Message>::decode(e.as_slice()).unwrap())
        .filter(|e| e.r#type == "pipeline.follow_up_added")
        .count();
    assert_eq!(published, 1);

    // the whole path on: the contract, the customer signed and its tier recomputed, its visits
    // scheduled, and a payment against the balance
    use crm_proto::customers::v1 as cpb;
    let contract = rep
        .sign_contract(terms(&o.id, 6_000, &[100_000, 50_000]))
        .await
        .unwrap()
        .into_inner()
        .contract
        .unwrap();
    let customers = p.running.customers_admin().await;
    let fetch = || fetch_customer(&customers, &customer);
    testing::wait_until(
        "the customer is signed",
        std::time::Duration::from_secs(30),
        || async { fetch().await.stage == cpb::Stage::Signed as i32 },
    )
    .await;
    let signed = fetch().await;
    // a fee of 6000 yuan is above the core threshold (5000): the tier follows
    assert_eq!(
        (signed.investment_cny, signed.tier),
        (150_000, cpb::Tier::Core as i32)
    );
    let visits = customers
        .clone()
        .list_return_visits(cpb::ListReturnVisitsRequest {
            customer_id: customer.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .visits;
    assert!(!visits.is_empty(), "the return visit is scheduled");
    let paid = p
        .client("finance")
        .await
        .record_payment(pb::RecordPaymentRequest {
            request_id: rid(),
            payment: Some(pb::Payment {
                contract_id: contract.id,
                amount: cny(100_000),
                paid_on: next_year(),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(paid.contract.unwrap().balance.unwrap().units, 50_000);
}

#[tokio::test]
async fn bad_input_is_named_and_a_rep_sees_only_their_own_while_a_manager_moves_their_work() {
    let p = Platform::start().await;
    let customer = p.running.customer("苏州精工电子有限公司", "华东").await;
    let mut rep = p.client("rep.east").await;
    let mut north = p.client("rep.north").await;
    let mut manager = p.client("manager.east").await;
    let new = |o: pb::Opportunity| pb::CreateOpportunityRequest {
        request_id: rid(),
        opportunity: Some(o),
    };
    let good = pb::Opportunity {
        name: "热线系统".into(),
        r#type: OpportunityType::NewBusiness as i32,
        customer_id: customer.clone(),
        region: "华东".into(),
        amount: cny(80_000),
        expected_close_date: next_year(),
        ..Default::default()
    };
    let bad = rep
        .create_opportunity(new(pb::Opportunity {
            amount: Some(Money {
                currency_code: "XYZ".into(),
                units: -1,
                nanos: 0,
            }),
            probability: 150,
            ..good.clone()
        }))
        .await
        .unwrap_err();
    assert_eq!(
        fields(&bad),
        ["opportunity.amount", "opportunity.probability"]
    );
    let past = rep
        .create_opportunity(new(pb::Opportunity {
            expected_close_date: Some(Date {
                year: 2020,
                month: 1,
                day: 1,
            }),
            ..good.clone()
        }))
        .await
        .unwrap_err();
    assert_eq!(fields(&past), ["opportunity.expected_close_date"]);
    let o = rep
        .create_opportunity(new(good.clone()))
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let lost = stage(&mut rep, &o.id, Stage::Lost, "").await.unwrap_err();
    assert_eq!(fields(&lost), ["reason"]);
    let bad_quote = save(
        &mut rep,
        pb::Quote {
            opportunity_id: o.id.clone(),
            lines: vec![pb::QuoteLine {
                quantity: 0,
                ..line(0, 12_000)
            }],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(
        fields(&bad_quote),
        [
            "quote.lines[0].quantity",
            "quote.lines[0].unit_price",
            "quote.lines[0].discount_bp"
        ]
    );
    // a rep of the north sees nothing of it; the east's manager does
    let get = |id: &str| pb::GetOpportunityRequest { id: id.into() };
    assert_eq!(
        north.get_opportunity(get(&o.id)).await.unwrap_err().code(),
        Code::NotFound
    );
    let listed = north
        .list_opportunities(pb::ListOpportunitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert!(listed.is_empty());
    assert!(manager.get_opportunity(get(&o.id)).await.is_ok());
    // a rep does not open work for another
    let for_other = rep
        .create_opportunity(new(pb::Opportunity {
            owner_id: p.ids["rep.north"].clone(),
            ..good.clone()
        }))
        .await
        .unwrap_err();
    assert_eq!(for_other.code(), Code::PermissionDenied);

    // the rep leaves: one call moves their open work to a colleague, recorded
    assert_eq!(
        rep.reassign_work(pb::ReassignWorkRequest {
            request_id: rid(),
            from_owner_id: p.ids["rep.east"].clone(),
            to_owner_id: p.ids["rep.east.2"].clone(),
            reason: "离职交接".into(),
        })
        .await
        .unwrap_err()
        .code(),
        Code::PermissionDenied
    );
    let moved = manager
        .reassign_work(pb::ReassignWorkRequest {
            request_id: rid(),
            from_owner_id: p.ids["rep.east"].clone(),
            to_owner_id: p.ids["rep.east.2"].clone(),
            reason: "离职交接".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.opportunities, 1);
    let mut colleague = p.client("rep.east.2").await;
    let now_theirs = colleague
        .get_opportunity(get(&o.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        now_theirs.opportunity.unwrap().owner_id,
        p.ids["rep.east.2"]
    );
    assert_eq!(
        rep.get_opportunity(get(&o.id)).await.unwrap_err().code(),
        Code::NotFound
    );
    let history = manager
        .list_opportunity_history(pb::ListOpportunityHistoryRequest {
            id: o.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    assert!(
        history
            .iter()
            .any(|c| c.field == "owner" && c.reason == "离职交接")
    );
}

/// Opens an opportunity of `customer` for `units` yuan and wins it; its id.
async fn won(rep: &mut Client, customer: &str, units: i64) -> String {
    let o = rep
        .create_opportunity(pb::CreateOpportunityRequest {
            request_id: rid(),
            opportunity: Some(pb::Opportunity {
                name: "客服平台".into(),
                r#type: OpportunityType::NewBusiness as i32,
                customer_id: customer.into(),
                region: "华东".into(),
                amount: cny(units),
                expected_close_date: next_year(),
                ..Default::default()
            }),
        })
        .await
        .expect("an opportunity")
        .into_inner()
        .opportunity
        .unwrap();
    stage(rep, &o.id, Stage::Won, "签约").await.expect("won");
    o.id
}

type Customers = crm_proto::customers::v1::customer_service_client::CustomerServiceClient<
    InterceptedService<Channel, testing::Bearer>,
>;

/// Customer `id` as the customers service has it now.
async fn fetch_customer(customers: &Customers, id: &str) -> crm_proto::customers::v1::Customer {
    customers
        .clone()
        .get_customer(crm_proto::customers::v1::GetCustomerRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap()
}

fn schedule(parts: &[i64]) -> Vec<pb::Instalment> {
    let y = time::OffsetDateTime::now_utc().year() + 1;
    parts
        .iter()
        .enumerate()
        .map(|(i, units)| pb::Instalment {
            due_date: Some(Date {
                year: y,
                month: i as i32 + 1,
                day: 15,
            }),
            amount: cny(*units),
        })
        .collect()
}

fn terms(opportunity: &str, fee: i64, parts: &[i64]) -> pb::SignContractRequest {
    pb::SignContractRequest {
        request_id: rid(),
        contract: Some(pb::Contract {
            opportunity_id: opportunity.into(),
            annual_service_fee: cny(fee),
            term_months: 12,
            start_date: next_year(),
            instalments: schedule(parts),
            ..Default::default()
        }),
    }
}

#[tokio::test]
async fn a_signed_contract_makes_the_customer_signed_and_vip_and_is_paid_to_its_balance() {
    use crm_proto::customers::v1 as cpb;
    let p = Platform::start().await;
    let customer = p.running.customer("杭州远景科技有限公司", "华东").await;
    let mut rep = p.client("rep.east").await;
    let mut finance = p.client("finance").await;
    let opportunity = won(&mut rep, &customer, 600_000).await;

    // the schedule must add up to the amount; an open opportunity is not signed
    let short = rep
        .sign_contract(terms(&opportunity, 12_000, &[300_000, 200_000]))
        .await
        .unwrap_err();
    assert_eq!(fields(&short), ["contract.instalments"]);
    let contract = rep
        .sign_contract(terms(&opportunity, 12_000, &[300_000, 300_000]))
        .await
        .unwrap()
        .into_inner()
        .contract
        .unwrap();
    let year = time::OffsetDateTime::now_utc().year();
    assert!(
        contract.number.starts_with(&format!("HT-{year}-")),
        "{}",
        contract.number
    );
    assert_eq!(contract.balance.as_ref().unwrap().units, 600_000);
    let twice = rep
        .sign_contract(terms(&opportunity, 12_000, &[300_000, 300_000]))
        .await
        .unwrap_err();
    assert_eq!(twice.code(), Code::AlreadyExists);

    // the customers service hears of it: signed, investment and fee set, VIP, visits due
    let customers = p.running.customers_admin().await;
    let fetch = || fetch_customer(&customers, &customer);
    testing::wait_until(
        "the customer is signed",
        std::time::Duration::from_secs(30),
        || async { fetch().await.stage == cpb::Stage::Signed as i32 },
    )
    .await;
    let signed = fetch().await;
    assert_eq!(
        (
            signed.investment_cny,
            signed.annual_service_fee_cny,
            signed.tier
        ),
        (600_000, 12_000, cpb::Tier::Vip as i32)
    );
    p.told("rep.east", &format!("合同已签订：{}", contract.number))
        .await;
    let visits = customers
        .clone()
        .list_return_visits(cpb::ListReturnVisitsRequest {
            customer_id: customer.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .visits;
    assert!(!visits.is_empty(), "the return visit is scheduled");

    // payments: a rep does not record them; finance does, never above the balance
    let pay = |units: i64| pb::RecordPaymentRequest {
        request_id: rid(),
        payment: Some(pb::Payment {
            contract_id: contract.id.clone(),
            amount: cny(units),
            paid_on: next_year(),
            reference: "银行回单".into(),
            ..Default::default()
        }),
    };
    assert_eq!(
        rep.record_payment(pay(1)).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let first = finance
        .record_payment(pay(200_000))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.contract.unwrap().balance.unwrap().units, 400_000);
    let over = finance.record_payment(pay(400_001)).await.unwrap_err();
    assert_eq!(over.code(), Code::FailedPrecondition);
    let voided = finance
        .void_payment(pb::VoidPaymentRequest {
            request_id: rid(),
            id: first.payment.unwrap().id,
            reason: "重复入账".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(voided.contract.unwrap().balance.unwrap().units, 600_000);
    // two at once are both recorded
    let (mut f1, mut f2) = (finance.clone(), finance.clone());
    let (a, b) = tokio::join!(
        f1.record_payment(pay(100_000)),
        f2.record_payment(pay(150_000))
    );
    a.unwrap();
    b.unwrap();
    let after = rep
        .get_contract(pb::GetContractRequest {
            id: contract.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .contract
        .unwrap();
    assert_eq!(
        (after.paid.unwrap().units, after.balance.unwrap().units),
        (250_000, 350_000)
    );

    // an amendment is a new version, the first kept; the customer's investment follows
    let amended = rep
        .amend_contract(pb::AmendContractRequest {
            request_id: rid(),
            id: contract.id.clone(),
            version: 1,
            contract: Some(pb::Contract {
                amount: cny(650_000),
                annual_service_fee: cny(12_000),
                term_months: 12,
                start_date: next_year(),
                instalments: schedule(&[300_000, 350_000]),
                ..Default::default()
            }),
            reason: "增加培训服务".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .contract
        .unwrap();
    assert_eq!(
        (amended.version, amended.balance.unwrap().units),
        (2, 400_000)
    );
    let versions = rep
        .list_contract_versions(pb::ListContractVersionsRequest {
            id: contract.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .versions;
    assert_eq!(versions.len(), 2);
    assert_eq!(
        versions[0]
            .contract
            .as_ref()
            .unwrap()
            .amount
            .as_ref()
            .unwrap()
            .units,
        600_000
    );
    testing::wait_until(
        "the amendment reaches the customer",
        std::time::Duration::from_secs(30),
        || async { fetch().await.investment_cny == 650_000 },
    )
    .await;
}

#[tokio::test]
async fn a_hundred_signings_at_once_take_a_hundred_consecutive_numbers() {
    let p = Platform::start().await;
    let customer = p.running.customer("南京云帆信息有限公司", "华东").await;
    let rep = p.client("rep.east").await;
    let mut opportunities = Vec::new();
    for _ in 0..100 {
        opportunities.push(won(&mut rep.clone(), &customer, 10_000).await);
    }
    let signings = opportunities.into_iter().map(|o| {
        let mut rep = rep.clone();
        tokio::spawn(async move {
            rep.sign_contract(terms(&o, 0, &[10_000]))
                .await
                .map(|r| r.into_inner().contract.unwrap().number)
        })
    });
    let mut numbers: Vec<i64> = Vec::new();
    for s in signings {
        let number = s.await.unwrap().expect("signed");
        numbers.push(number.rsplit('-').next().unwrap().parse().unwrap());
    }
    numbers.sort_unstable();
    let first = numbers[0];
    assert_eq!(
        numbers,
        (first..first + 100).collect::<Vec<_>>(),
        "consecutive, none twice"
    );
}

#[tokio::test]
async fn the_report_adds_up_from_the_opportunities_by_rep_and_by_region() {
    let p = Platform::start().await;
    let east_customer = p.running.customer("常州精密机械有限公司", "华东").await;
    let north_customer = p.running.customer("天津港务数据有限公司", "华北").await;
    let mut east = p.client("rep.east").await;
    let mut north = p.client("rep.north").await;
    let mut admin = p.client("admin").await;
    let y = time::OffsetDateTime::now_utc().year() + 1;
    let open = |client: &mut Client, customer: &str, region: &str, amount: Money, day: i32| {
        let mut client = client.clone();
        let (customer, region) = (customer.to_string(), region.to_string());
        async move {
            client
                .create_opportunity(pb::CreateOpportunityRequest {
                    request_id: rid(),
                    opportunity: Some(pb::Opportunity {
                        name: "报表".into(),
                        r#type: OpportunityType::NewBusiness as i32,
                        customer_id: customer,
                        region,
                        amount: Some(amount),
                        expected_close_date: Some(Date {
                            year: y,
                            month: 6,
                            day,
                        }),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap()
                .into_inner()
                .opportunity
                .unwrap()
                .id
        }
    };
    let usd = |units| Money {
        currency_code: "USD".into(),
        units,
        nanos: 0,
    };
    let move_to = |client: &mut Client, id: &str, s: Stage, probability: i32| {
        let mut client = client.clone();
        let id = id.to_string();
        async move {
            client
                .move_opportunity_stage(pb::MoveOpportunityStageRequest {
                    request_id: rid(),
                    id,
                    stage: s as i32,
                    probability,
                    reason: "进展".into(),
                    ..Default::default()
                })
                .await
                .unwrap()
        }
    };
    // the east's rep: one at proposal (50 %), one in dollars at negotiation (80 %), one won
    let a = open(&mut east, &east_customer, "华东", cny(100_000).unwrap(), 30).await;
    move_to(&mut east, &a, Stage::Proposal, 0).await;
    let b = open(&mut east, &east_customer, "华东", usd(10_000), 15).await;
    move_to(&mut east, &b, Stage::Negotiation, 80).await;
    let c = open(&mut east, &east_customer, "华东", cny(50_000).unwrap(), 1).await;
    move_to(&mut east, &c, Stage::Won, 0).await;
    // the north's: one in qualification (10 %), one lost
    open(
        &mut north,
        &north_customer,
        "华北",
        cny(30_000).unwrap(),
        30,
    )
    .await;
    let e = open(
        &mut north,
        &north_customer,
        "华北",
        cny(20_000).unwrap(),
        30,
    )
    .await;
    move_to(&mut north, &e, Stage::Lost, 0).await;

    let today = time::OffsetDateTime::now_utc().date();
    let period = |grouping: pb::Grouping| pb::GetPipelineReportRequest {
        from: Some(crm_kit::convert::date(today - time::Duration::days(1))),
        to: Some(Date {
            year: y + 1,
            month: 1,
            day: 1,
        }),
        grouping: grouping as i32,
    };
    let yuan = |m: &Option<Money>| m.as_ref().map(|m| (m.units, m.nanos)).unwrap();
    let by_rep = admin
        .get_pipeline_report(period(pb::Grouping::Rep))
        .await
        .unwrap()
        .into_inner();
    let rep_east = &p.ids["rep.east"];
    let june: Vec<_> = by_rep
        .forecast
        .iter()
        .filter(|l| &l.group == rep_east && l.year == y && l.month == 6)
        .collect();
    assert_eq!(june.len(), 1, "{:?}", by_rep.forecast);
    // open: 100000 + 10000 × 7.1; weighted: 100000 × 50 % + 71000 × 80 %
    assert_eq!(june[0].open, 2);
    assert_eq!(yuan(&june[0].pipeline), (171_000, 0));
    assert_eq!(yuan(&june[0].weighted), (106_800, 0));
    let won_now: i64 = by_rep
        .forecast
        .iter()
        .filter(|l| &l.group == rep_east)
        .map(|l| l.won.as_ref().unwrap().units)
        .sum();
    assert_eq!(won_now, 50_000, "won closes today");
    let funnel = |report: &pb::GetPipelineReportResponse, group: &str, s: Stage| {
        report
            .funnel
            .iter()
            .find(|l| l.group == group && l.stage == s as i32)
            .map(|l| (l.opportunities, l.amount.as_ref().unwrap().units))
    };
    assert_eq!(
        funnel(&by_rep, rep_east, Stage::Negotiation),
        Some((1, 71_000))
    );
    assert_eq!(
        funnel(&by_rep, &p.ids["rep.north"], Stage::Lost),
        Some((1, 20_000))
    );
    // conversion from the stage history: A reached proposal, B negotiation, C won
    let conv: Vec<(i32, i32)> = by_rep
        .conversion
        .iter()
        .filter(|l| &l.group == rep_east)
        .map(|l| (l.reached_from, l.reached_to))
        .collect();
    assert_eq!(conv, [(3, 3), (3, 3), (3, 2), (2, 1)]);

    // streamed: the same lines, in chunks
    let mut stream = admin
        .stream_pipeline_report({
            let r = period(pb::Grouping::Rep);
            pb::StreamPipelineReportRequest {
                from: r.from,
                to: r.to,
                grouping: r.grouping,
            }
        })
        .await
        .unwrap()
        .into_inner();
    let mut streamed = pb::GetPipelineReportResponse::default();
    while let Some(chunk) = stream.message().await.unwrap() {
        streamed.funnel.extend(chunk.funnel);
        streamed.conversion.extend(chunk.conversion);
        streamed.forecast.extend(chunk.forecast);
    }
    assert_eq!(streamed, by_rep);
    // by region: the same rows, other groups; the totals match
    let by_region = admin
        .get_pipeline_report(period(pb::Grouping::Region))
        .await
        .unwrap()
        .into_inner();
    let total = |r: &pb::GetPipelineReportResponse| -> (i64, i64, i64) {
        r.forecast.iter().fold((0, 0, 0), |t, l| {
            (
                t.0 + l.pipeline.as_ref().unwrap().units,
                t.1 + l.weighted.as_ref().unwrap().units,
                t.2 + l.won.as_ref().unwrap().units,
            )
        })
    };
    // open 171000 + 30000; weighted 106800 + 3000; won 50000
    assert_eq!(total(&by_rep), (201_000, 109_800, 50_000));
    assert_eq!(total(&by_region), total(&by_rep));
    assert_eq!(
        funnel(&by_region, "华北", Stage::Qualification),
        Some((1, 30_000))
    );
    // a rep's report holds only their own
    let own = east
        .get_pipeline_report(period(pb::Grouping::Rep))
        .await
        .unwrap()
        .into_inner();
    assert!(own.forecast.iter().all(|l| &l.group == rep_east));
    assert_eq!(total(&own), (171_000, 106_800, 50_000));
    let bad = admin
        .get_pipeline_report(pb::GetPipelineReportRequest::default())
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["from", "to"]);
}

#[tokio::test]
async fn the_pipeline_demo_loads_twice_alike_with_every_stage() {
    let env = testing::test_env().await;
    let running = crm_tests::start(env.settings, Clock::system())
        .await
        .expect("platform starts");
    let settings = &running.settings;
    let users = crm::demo::load_users(settings).await.expect("demo users");
    let customers = crm::demo::load(settings, &users)
        .await
        .expect("demo customers");
    let first = crm::demo::pipeline::load(settings, &users, &customers)
        .await
        .expect("demo");
    let again = crm::demo::pipeline::load(settings, &users, &customers)
        .await
        .expect("demo again");
    assert_eq!(
        (
            first.leads,
            first.opportunities,
            again.leads,
            again.opportunities
        ),
        (3, 6, 3, 6)
    );
    let gateway = running.channel("gateway").await;
    let token = AuthServiceClient::new(gateway.clone())
        .login(gw::LoginRequest {
            username: "manager".into(),
            password: crm::demo::DEMO_PASSWORD.into(),
        })
        .await
        .expect("the demo's sales manager logs in")
        .into_inner()
        .access_token;
    let mut manager =
        PipelineServiceClient::with_interceptor(gateway, testing::Bearer::new(&token));
    let all = manager
        .list_opportunities(pb::ListOpportunitiesRequest {
            stages: (1..=6).collect(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    let mut stages: Vec<i32> = all.iter().map(|o| o.stage).collect();
    stages.sort_unstable();
    assert_eq!(stages, (1..=6).collect::<Vec<i32>>(), "one in every stage");
}

#[tokio::test]
async fn a_reps_month_sets_the_target_the_kept_forecast_and_what_was_won_side_by_side() {
    let p = Platform::start().await;
    let customer = p.running.customer("扬州新能源有限公司", "华东").await;
    let mut rep = p.client("rep.east").await;
    let mut manager = p.client("manager.east").await;
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .date();
    let (year, month) = (today.year(), i32::from(u8::from(today.month())));
    let target = pb::SetTargetRequest {
        request_id: rid(),
        target: Some(pb::Target {
            owner_id: p.ids["rep.east"].clone(),
            region: "华东".into(),
            year,
            month,
            amount: cny(100_000),
            ..Default::default()
        }),
    };
    assert_eq!(
        rep.set_target(target.clone()).await.unwrap_err().code(),
        Code::PermissionDenied,
        "a rep does not set targets"
    );
    manager.set_target(target).await.unwrap();
    // an opportunity expected this month at 50 %: the snapshot keeps 40000 of its 80000
    let o = rep
        .create_opportunity(pb::CreateOpportunityRequest {
            request_id: rid(),
            opportunity: Some(pb::Opportunity {
                name: "储能监控".into(),
                r#type: OpportunityType::NewBusiness as i32,
                customer_id: customer,
                region: "华东".into(),
                amount: cny(80_000),
                expected_close_date: Some(crm_kit::convert::date(today)),
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    stage(&mut rep, &o.id, Stage::Proposal, "方案")
        .await
        .unwrap();
    let snapshot = manager
        .take_forecast_snapshot(pb::TakeForecastSnapshotRequest { request_id: rid() })
        .await
        .unwrap()
        .into_inner();
    assert!(snapshot.lines >= 1);
    stage(&mut rep, &o.id, Stage::Won, "签约").await.unwrap();
    let report = rep
        .report_attainment(pb::ReportAttainmentRequest {
            year,
            month,
            snapshot_on: snapshot.taken_on,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(report.lines.len(), 1, "a rep sees their own line");
    let line = &report.lines[0];
    let units = |m: &Option<Money>| m.as_ref().unwrap().units;
    assert_eq!(
        (units(&line.target), units(&line.won), units(&line.forecast)),
        (100_000, 80_000, 40_000)
    );
    assert!((line.attainment - 0.8).abs() < 1e-9);
    let bad = manager
        .report_attainment(pb::ReportAttainmentRequest {
            year,
            month: 13,
            snapshot_on: None,
        })
        .await
        .unwrap_err();
    assert_eq!(fields(&bad), ["month"]);
}
