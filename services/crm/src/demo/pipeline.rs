//! The pipeline demo (issue 18): leads new, qualified (and converted) and disqualified; the
//! demo rep `rep.zhang`'s opportunities in every stage on their own customers, a quote whose
//! discount awaits the sales manager, and a won opportunity with a signed contract and a
//! payment recorded by finance. The close dates count from the first load, so a second load
//! finds the demo there and changes nothing.

use std::{collections::BTreeMap, sync::Arc};

use crm_kit::{
    Clock, Settings, auth::Principal, context::Call, convert, idempotency::RequestKey,
    paging::Pager,
};
use crm_pipeline::{
    Pipeline,
    opportunities::rules::{NewOpportunity, StageMove},
    quotes::QuoteStep,
    rules::PipelineSettings,
};
use crm_proto::{
    common::v1::Money,
    pipeline::v1::{self as pb, LeadSource, LeadTransition, OpportunityType, Stage},
};

const SERVICE: &str = "crm.pipeline.v1.PipelineService";

/// The demo leads' names; the first marks the demo as loaded.
const LEADS: [(&str, LeadSource); 3] = [
    ("宁波海天模具有限公司", LeadSource::Campaign),
    ("绍兴纺织集团", LeadSource::ServiceFollowUp),
    ("个人咨询", LeadSource::Hotline),
];

fn call(subject: &str, roles: &[&str], method: &str) -> Call {
    Call {
        principal: Principal {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Principal::system(subject)
        },
        ..Call::system(subject, &format!("{SERVICE}/{method}"))
    }
}

fn key<M: prost::Message>(method: &str, id: &str, r: &M) -> anyhow::Result<RequestKey> {
    Ok(RequestKey::new(&format!("{SERVICE}/{method}"), id, r)?)
}

fn cny(units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        units,
        nanos: 0,
    })
}

/// What the pipeline demo holds.
pub struct Loaded {
    /// Leads.
    pub leads: usize,
    /// Opportunities.
    pub opportunities: usize,
}

/// Loads the pipeline demo on the demo `customers` (`users`: the demo users' ids by name).
pub async fn load(
    settings: &Settings,
    users: &BTreeMap<String, String>,
    customers: &[super::DemoCustomer],
) -> anyhow::Result<Loaded> {
    let id_of = |name: &str| users.get(name).cloned().unwrap_or_else(|| name.to_string());
    let rep = id_of("rep.zhang");
    let finance = id_of("finance");
    let pool = crm_kit::db::connect(&settings.database, crm_pipeline::NAME).await?;
    let clock = Clock::system();
    let service = Pipeline::new(
        pool,
        clock.clone(),
        Pager::new(&settings.paging),
        Arc::new(PipelineSettings::from_settings(settings)?),
        Arc::new(crm_kit::calendar::Calendar::new(&settings.calendar)?),
        crm_kit::timers::Timers::connect(&settings.redis, crm_pipeline::NAME).await?,
    );
    let as_rep = |m: &str| call(&rep, &["sales_rep"], m);
    let admin = Principal::system("demo");
    let listed = service
        .list_leads(&pb::ListLeadsRequest::default(), &admin)
        .await?
        .leads;
    let opportunities = service
        .list_opportunities(
            &pb::ListOpportunitiesRequest {
                stages: (1..=6).collect(),
                ..Default::default()
            },
            &admin,
        )
        .await?
        .opportunities;
    if listed.iter().any(|l| l.name == LEADS[0].0) {
        return Ok(Loaded {
            leads: listed.len(),
            opportunities: opportunities.len(),
        });
    }
    let own: Vec<&super::DemoCustomer> = customers
        .iter()
        .filter(|c| c.owner == "rep.zhang")
        .collect();
    anyhow::ensure!(!own.is_empty(), "the demo rep has no demo customers");
    let today = clock.today();
    let close = |days: i64| Some(convert::date(today + time::Duration::days(days)));

    // leads: one converted on the rep's first customer, one new, one disqualified
    let mut lead_ids = Vec::new();
    for (i, (name, source)) in LEADS.iter().enumerate() {
        let r = pb::CreateLeadRequest {
            request_id: format!("demo-lead-{i}"),
            lead: Some(pb::Lead {
                name: (*name).into(),
                contact_name: "周先生".into(),
                contact_phone: "+86 137 0000 0000".into(),
                source: *source as i32,
                region: "华东".into(),
                interest: "客服热线、工单与回访".into(),
                ..Default::default()
            }),
        };
        let lead = crm_pipeline::leads::rules::parse_new(&r)?;
        let made = service
            .create_lead(
                key("CreateLead", &r.request_id, &r)?,
                lead,
                &as_rep("CreateLead"),
            )
            .await?;
        lead_ids.push(made.lead.unwrap_or_default().id);
    }
    for (i, (transition, reason)) in [
        (LeadTransition::Qualify, ""),
        (LeadTransition::Unspecified, ""),
        (LeadTransition::Disqualify, "个人用户，非目标客户"),
    ]
    .iter()
    .enumerate()
    {
        if *transition == LeadTransition::Unspecified {
            continue;
        }
        let r = pb::TransitionLeadRequest {
            request_id: format!("demo-lead-step-{i}"),
            id: lead_ids[i].clone(),
            transition: *transition as i32,
            reason: (*reason).into(),
            ..Default::default()
        };
        service
            .transition_lead(
                key("TransitionLead", &r.request_id, &r)?,
                &r,
                &as_rep("TransitionLead"),
            )
            .await?;
    }
    let r = pb::ConvertLeadRequest {
        request_id: "demo-lead-convert".into(),
        id: lead_ids[0].clone(),
        customer_id: own[0].id.clone(),
        opportunity: Some(pb::Opportunity {
            r#type: OpportunityType::NewBusiness as i32,
            amount: cny(80_000),
            expected_close_date: close(60),
            ..Default::default()
        }),
    };
    service
        .convert_lead(
            key("ConvertLead", &r.request_id, &r)?,
            &r,
            None,
            &as_rep("ConvertLead"),
        )
        .await?;

    // opportunities in the other stages
    let plan: [(&str, OpportunityType, i64, Stage); 5] = [
        (
            "二期扩容",
            OpportunityType::Upgrade,
            150_000,
            Stage::NeedsAnalysis,
        ),
        (
            "年度服务续约",
            OpportunityType::ServiceRenewal,
            36_000,
            Stage::Proposal,
        ),
        (
            "分支机构推广",
            OpportunityType::Repeat,
            220_000,
            Stage::Negotiation,
        ),
        (
            "呼叫中心建设",
            OpportunityType::NewBusiness,
            600_000,
            Stage::Won,
        ),
        ("数据迁移服务", OpportunityType::Repeat, 45_000, Stage::Lost),
    ];
    let mut made = 1;
    for (i, (name, kind, amount, stage)) in plan.iter().enumerate() {
        let customer = own[i % own.len()];
        let o = pb::Opportunity {
            name: format!("{}：{name}", customer.name),
            r#type: *kind as i32,
            customer_id: customer.id.clone(),
            region: customer.region.clone(),
            amount: cny(*amount),
            expected_close_date: close(30 + 15 * i as i64),
            ..Default::default()
        };
        let r = pb::CreateOpportunityRequest {
            request_id: format!("demo-opportunity-{i}"),
            opportunity: Some(o.clone()),
        };
        let created = service
            .create_opportunity(
                key("CreateOpportunity", &r.request_id, &r)?,
                NewOpportunity::parse("opportunity", &o, false)?,
                &as_rep("CreateOpportunity"),
            )
            .await?
            .opportunity
            .unwrap_or_default();
        made += 1;
        if *stage == Stage::Proposal {
            // a 15 % discount: above the limit, waiting for the sales manager
            let r = pb::SaveQuoteRequest {
                request_id: format!("demo-quote-{i}"),
                quote: Some(pb::Quote {
                    opportunity_id: created.id.clone(),
                    lines: vec![pb::QuoteLine {
                        product: "年度服务".into(),
                        quantity: 1,
                        unit_price: cny(*amount),
                        discount_bp: 1500,
                    }],
                    ..Default::default()
                }),
                version: 0,
            };
            let quote = service
                .save_quote(
                    key("SaveQuote", &r.request_id, &r)?,
                    &r,
                    &as_rep("SaveQuote"),
                )
                .await?
                .quote
                .unwrap_or_default();
            let r = pb::RequestDiscountApprovalRequest {
                request_id: format!("demo-quote-request-{i}"),
                id: quote.id.clone(),
                version: 0,
                reason: "客户今年预算有限，续约需要优惠".into(),
            };
            service
                .step_quote(
                    key("RequestDiscountApproval", &r.request_id, &r)?,
                    (
                        convert::parse_id(&quote.id).map_err(anyhow::Error::msg)?,
                        0,
                        r.reason.clone(),
                    ),
                    QuoteStep::Request,
                    &as_rep("RequestDiscountApproval"),
                )
                .await?;
        }
        let m = pb::MoveOpportunityStageRequest {
            request_id: format!("demo-opportunity-stage-{i}"),
            id: created.id.clone(),
            stage: *stage as i32,
            reason: if *stage == Stage::Lost {
                "客户选择了自建方案".into()
            } else {
                "跟进推进".into()
            },
            ..Default::default()
        };
        service
            .move_stage(
                key("MoveOpportunityStage", &m.request_id, &m)?,
                StageMove::parse(&m)?,
                &as_rep("MoveOpportunityStage"),
            )
            .await?;
        if *stage == Stage::Won {
            let half = amount / 2;
            let due = |days: i64| Some(convert::date(today + time::Duration::days(days)));
            let r = pb::SignContractRequest {
                request_id: format!("demo-contract-{i}"),
                contract: Some(pb::Contract {
                    opportunity_id: created.id.clone(),
                    annual_service_fee: cny(12_000),
                    term_months: 12,
                    start_date: due(7),
                    instalments: vec![
                        pb::Instalment {
                            due_date: due(30),
                            amount: cny(half),
                        },
                        pb::Instalment {
                            due_date: due(120),
                            amount: cny(amount - half),
                        },
                    ],
                    ..Default::default()
                }),
            };
            let contract = service
                .sign_contract(
                    key("SignContract", &r.request_id, &r)?,
                    &r,
                    &as_rep("SignContract"),
                )
                .await?
                .contract
                .unwrap_or_default();
            let r = pb::RecordPaymentRequest {
                request_id: format!("demo-payment-{i}"),
                payment: Some(pb::Payment {
                    contract_id: contract.id.clone(),
                    amount: cny(half),
                    paid_on: Some(convert::date(today)),
                    reference: "首付款".into(),
                    ..Default::default()
                }),
            };
            service
                .record_payment(
                    key("RecordPayment", &r.request_id, &r)?,
                    &r,
                    &call(&finance, &["finance"], "RecordPayment"),
                )
                .await?;
        }
    }
    Ok(Loaded {
        leads: LEADS.len(),
        opportunities: made,
    })
}
