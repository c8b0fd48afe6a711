//! The complaints demo (issue 17): a few complaints about the demo customers in different
//! states — just taken in, routed back into the service flow, a plan awaiting the CRM lead,
//! a staff complaint resolved, and one reopened after a dissatisfied follow-up. The steps are
//! taken as the demo's complaint officer, CRM lead and tech centre. The committed deadlines
//! count from the first load, so a second load finds the demo there and changes nothing.

use std::{collections::BTreeMap, sync::Arc};

use crm_complaints::{
    Complaints, handling::rules::Step, intake::rules::NewComplaint, rules::ComplaintSettings,
};
use crm_kit::{
    Clock, Settings, auth::Principal, calendar::Calendar, context::Call, idempotency::RequestKey,
    paging::Pager, timers::Timers,
};
use crm_proto::{
    common::v1::Money,
    complaints::v1::{self as pb, ComplaintChannel, ComplaintKind as K, ComplaintTransition as T},
};

const SERVICE: &str = "crm.complaints.v1.ComplaintService";

/// The demo complaints: (kind, content, the steps taken).
const COMPLAINTS: &[(K, &str, &[T])] = &[
    (K::Product, "新购设备三天内两次死机，要求尽快处理", &[]),
    (
        K::Service,
        "报修后两天无人联系，工程师迟迟未上门",
        &[T::Judge],
    ),
    (
        K::Product,
        "打印模块批量出现卡纸",
        &[T::Judge, T::RecordFindings, T::SubmitPlan],
    ),
    (
        K::Staff,
        "上门工程师态度冷淡，未解释收费标准",
        &[
            T::Judge,
            T::RecordFindings,
            T::SubmitPlan,
            T::ApprovePlan,
            T::CustomerAccepts,
            T::Execute,
            T::CustomerConfirms,
        ],
    ),
    (
        K::Product,
        "更换主板后问题依旧",
        &[
            T::Judge,
            T::RecordFindings,
            T::SubmitPlan,
            T::ApprovePlan,
            T::CustomerAccepts,
            T::Execute,
            T::CustomerConfirms,
            T::FollowUp,
        ],
    ),
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

/// Loads the complaints demo about the demo `customers`; how many complaint cycles there are.
/// `users`: the demo users' ids by name.
pub async fn load(
    settings: &Settings,
    users: &BTreeMap<String, String>,
    customers: &[super::DemoCustomer],
) -> anyhow::Result<usize> {
    anyhow::ensure!(!customers.is_empty(), "load the demo customers first");
    let id_of = |name: &str| users.get(name).cloned().unwrap_or_else(|| name.to_string());
    let pool = crm_kit::db::connect(&settings.database, crm_complaints::NAME).await?;
    let clock = Clock::system();
    let service = Complaints::new(
        pool,
        clock.clone(),
        Pager::new(&settings.paging),
        Arc::new(ComplaintSettings::from_settings(settings)?),
        Arc::new(Calendar::new(&settings.calendar)?),
        Timers::connect(&settings.redis, crm_complaints::NAME).await?,
    );
    // loaded before (its deadlines counted from then): nothing to do
    let every_state: Vec<i32> = (1..=10).collect();
    let admin = Principal::system("demo");
    let listed = service
        .list_complaints(
            &pb::ListComplaintsRequest {
                states: every_state,
                ..Default::default()
            },
            &admin,
        )
        .await?
        .complaints;
    if listed.iter().any(|c| c.content == COMPLAINTS[0].1) {
        return Ok(listed.len());
    }
    let officer = id_of("complaints");
    let lead = id_of("crm.lead");
    // the responsible departments' people: the tech centre for the product, the service
    // supervisor for the service
    let product_member = id_of("tech.center");
    let service_member = id_of("supervisor");
    let engineer = id_of("engineer");
    let now = clock.now();
    for (i, (kind, content, steps)) in COMPLAINTS.iter().enumerate() {
        let customer = &customers[i % customers.len()];
        let r = pb::CreateComplaintRequest {
            request_id: format!("demo-complaint-{i}"),
            complaint: Some(pb::Complaint {
                kind: *kind as i32,
                channel: ComplaintChannel::Hotline as i32,
                customer_id: customer.id.clone(),
                contact_name: customer.contact.clone(),
                contact_phone: "+86 138 0013 8000".into(),
                contact_language: "zh".into(),
                content: (*content).into(),
                apology: "电话中向客户诚恳致歉".into(),
                staff_id: if *kind == K::Staff {
                    engineer.clone()
                } else {
                    String::new()
                },
                committed_due: Some(crm_kit::convert::timestamp(
                    now + time::Duration::days(3 + i as i64),
                )),
                ..Default::default()
            }),
        };
        let created = service
            .create_complaint(
                key("CreateComplaint", &r.request_id, &r)?,
                NewComplaint::parse(&r)?,
                &call(&officer, &["complaint_officer"], "CreateComplaint"),
            )
            .await?
            .complaint
            .unwrap_or_default();
        for (j, transition) in steps.iter().enumerate() {
            let (department, member, member_roles): (&str, &str, &[&str]) = if *kind == K::Staff {
                ("service", &service_member, &["supervisor"])
            } else {
                ("product", &product_member, &["tech_center"])
            };
            let mut r = pb::TransitionComplaintRequest {
                request_id: format!("demo-complaint-{i}-{j}"),
                id: created.id.clone(),
                transition: *transition as i32,
                ..Default::default()
            };
            let (who, roles): (&str, &[&str]) = match transition {
                T::Judge => {
                    r.policy_judgement = "按服务与保修政策判定属实".into();
                    r.policy_explanation = "已向客户详细解释保修政策".into();
                    (&officer, &["complaint_officer"])
                }
                T::RecordFindings => {
                    r.cause = if *kind == K::Staff {
                        "服务规范执行不到位"
                    } else {
                        "主板批次缺陷"
                    }
                    .into();
                    r.department = department.into();
                    (&officer, &["complaint_officer"])
                }
                T::SubmitPlan => {
                    r.plan = "上门更换并赔偿服务费".into();
                    r.compensation = Some(pb::Compensation {
                        kind: "refund".into(),
                        amount: Some(Money {
                            currency_code: "CNY".into(),
                            units: 300,
                            nanos: 0,
                        }),
                    });
                    (member, member_roles)
                }
                T::ApprovePlan => (&lead, &["crm_lead"]),
                T::Execute => {
                    r.note = "已按方案处理完毕".into();
                    (member, member_roles)
                }
                T::FollowUp => {
                    r.satisfaction = 2;
                    r.note = "客户对处理结果仍不满意".into();
                    r.new_committed_due =
                        Some(crm_kit::convert::timestamp(now + time::Duration::days(7)));
                    (&officer, &["complaint_officer"])
                }
                _ => (&officer, &["complaint_officer"]),
            };
            let method = "TransitionComplaint";
            service
                .transition_complaint(
                    key(method, &r.request_id, &r)?,
                    Step::parse(&r)?,
                    &call(who, roles, method),
                )
                .await?;
        }
    }
    // the reopened complaint's second cycle counts too
    Ok(COMPLAINTS.len() + 1)
}
