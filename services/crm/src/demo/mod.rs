//! Demo data for `make run`: customers in several regions and tiers, with Chinese and English
//! names, contacts, stages, partners and communications. Every write carries a fixed request
//! id, so loading twice creates nothing new. The repairs demo is in `repairs`.

pub mod complaints;
pub mod pipeline;
pub mod repairs;

use std::collections::BTreeMap;

use crm_customers::{Customers, records, stages};
use crm_kit::{Clock, Settings, context::Call, idempotency::RequestKey, paging::Pager};
use crm_proto::{
    common::v1::Date,
    customers::v1::{self as pb, CommunicationKind, CreditRating, SourceChannel, Stage, Tier},
};

struct Demo {
    name: &'static str,
    industry: &'static str,
    region: &'static str,
    contact: &'static str,
    phone: &'static str,
    email: &'static str,
    tier: Tier,
    stage: Stage,
    owner: &'static str,
    partner: &'static str,
    tags: &'static [&'static str],
}

const CUSTOMERS: &[Demo] = &[
    Demo {
        name: "上海精工电子有限公司",
        industry: "electronics",
        region: "华东",
        contact: "王晓明",
        phone: "+86 138 0013 8000",
        email: "wangxm@jinggong.example.cn",
        tier: Tier::Vip,
        stage: Stage::Signed,
        owner: "rep.zhang",
        partner: "ts.li",
        tags: &["制造", "参考客户"],
    },
    Demo {
        name: "杭州云帆软件股份有限公司",
        industry: "software",
        region: "华东",
        contact: "陈丽",
        phone: "0571-8765 4321",
        email: "chenli@yunfan.example.cn",
        tier: Tier::Core,
        stage: Stage::Trial,
        owner: "rep.zhang",
        partner: "ts.li",
        tags: &["软件"],
    },
    Demo {
        name: "南京长江物流集团",
        industry: "logistics",
        region: "华东",
        contact: "刘强",
        phone: "139 5100 2233",
        email: "liuq@cjwl.example.cn",
        tier: Tier::Potential,
        stage: Stage::Target,
        owner: "rep.wu",
        partner: "",
        tags: &["物流"],
    },
    Demo {
        name: "苏州工业园区医疗器械有限公司",
        industry: "medical",
        region: "华东",
        contact: "赵敏",
        phone: "0512-6666 8888",
        email: "zhaomin@szmed.example.cn",
        tier: Tier::Ordinary,
        stage: Stage::InitialContact,
        owner: "rep.wu",
        partner: "",
        tags: &["医疗"],
    },
    Demo {
        name: "北京华夏能源科技有限公司",
        industry: "energy",
        region: "华北",
        contact: "孙伟",
        phone: "010-8888 6666",
        email: "sunwei@hxny.example.cn",
        tier: Tier::Vip,
        stage: Stage::Signed,
        owner: "rep.zhao",
        partner: "ts.wang",
        tags: &["能源", "战略客户"],
    },
    Demo {
        name: "天津港湾机械制造厂",
        industry: "machinery",
        region: "华北",
        contact: "周杰",
        phone: "022-2345 6789",
        email: "zhoujie@gwjx.example.cn",
        tier: Tier::Core,
        stage: Stage::Potential,
        owner: "rep.zhao",
        partner: "ts.wang",
        tags: &["制造"],
    },
    Demo {
        name: "石家庄康宁医药连锁",
        industry: "retail",
        region: "华北",
        contact: "吴芳",
        phone: "137 3111 0000",
        email: "wufang@kangning.example.cn",
        tier: Tier::Ordinary,
        stage: Stage::NonTarget,
        owner: "rep.zhao",
        partner: "",
        tags: &["零售"],
    },
    Demo {
        name: "深圳前海智能硬件有限公司",
        industry: "electronics",
        region: "华南",
        contact: "郑海",
        phone: "+86 135 1234 5678",
        email: "zhenghai@qhzn.example.cn",
        tier: Tier::Vip,
        stage: Stage::Trial,
        owner: "rep.huang",
        partner: "ts.chen",
        tags: &["硬件", "参考客户"],
    },
    Demo {
        name: "广州南方家电集团",
        industry: "appliances",
        region: "华南",
        contact: "冯军",
        phone: "020-3888 9999",
        email: "fengjun@nfjd.example.cn",
        tier: Tier::Core,
        stage: Stage::Signed,
        owner: "rep.huang",
        partner: "ts.chen",
        tags: &["家电"],
    },
    Demo {
        name: "Pearl River Trading Co., Ltd.",
        industry: "trading",
        region: "华南",
        contact: "Emily Chen",
        phone: "+86 20 8123 4567",
        email: "emily.chen@pearlriver.example.com",
        tier: Tier::Potential,
        stage: Stage::Potential,
        owner: "rep.huang",
        partner: "",
        tags: &["外贸"],
    },
    Demo {
        name: "成都天府信息技术有限公司",
        industry: "software",
        region: "西南",
        contact: "何静",
        phone: "028-8555 1234",
        email: "hejing@tfxx.example.cn",
        tier: Tier::Core,
        stage: Stage::Target,
        owner: "rep.luo",
        partner: "ts.zhou",
        tags: &["软件", "政府"],
    },
    Demo {
        name: "重庆山城汽车零部件有限公司",
        industry: "automotive",
        region: "西南",
        contact: "罗斌",
        phone: "023-6789 0000",
        email: "luobin@scqc.example.cn",
        tier: Tier::Ordinary,
        stage: Stage::InitialContact,
        owner: "rep.luo",
        partner: "",
        tags: &["汽车"],
    },
    Demo {
        name: "Northwind Medical Systems Inc.",
        industry: "medical",
        region: "north-america",
        contact: "James Miller",
        phone: "+1 415 555 0100",
        email: "j.miller@northwind.example.com",
        tier: Tier::Vip,
        stage: Stage::Signed,
        owner: "rep.smith",
        partner: "ts.jones",
        tags: &["medical", "reference"],
    },
    Demo {
        name: "Contoso Retail Group",
        industry: "retail",
        region: "north-america",
        contact: "Sarah Johnson",
        phone: "+1 212 555 0199",
        email: "sarah.johnson@contoso.example.com",
        tier: Tier::Ordinary,
        stage: Stage::Potential,
        owner: "rep.smith",
        partner: "",
        tags: &["retail"],
    },
    Demo {
        name: "Fabrikam Industrial GmbH",
        industry: "machinery",
        region: "europe",
        contact: "Lukas Schneider",
        phone: "+49 89 5555 0123",
        email: "l.schneider@fabrikam.example.de",
        tier: Tier::Core,
        stage: Stage::Trial,
        owner: "rep.muller",
        partner: "ts.jones",
        tags: &["manufacturing"],
    },
    Demo {
        name: "Adventure Works Logistics Ltd",
        industry: "logistics",
        region: "europe",
        contact: "Olivia Brown",
        phone: "+44 20 7946 0958",
        email: "olivia.brown@adventureworks.example.co.uk",
        tier: Tier::Potential,
        stage: Stage::NonTarget,
        owner: "rep.muller",
        partner: "",
        tags: &["logistics"],
    },
];

/// The password of every demo user (development only).
pub const DEMO_PASSWORD: &str = "crm-demo-2026";

/// One demo user per role: (user name, role, region, partner organisation).
pub const DEMO_USERS: &[(&str, &str, &str, &str)] = &[
    ("admin", "admin", "", ""),
    ("clerk", "data_clerk", "", ""),
    ("rep.east", "sales_rep", "华东", ""),
    ("manager", "sales_manager", "", ""),
    ("support", "tech_support", "", ""),
    ("agent", "hotline_agent", "", ""),
    ("hotline.engineer", "hotline_engineer", "", ""),
    ("coordinator", "coordinator", "", ""),
    ("engineer", "engineer", "", ""),
    ("tech.center", "tech_center", "", ""),
    ("complaints", "complaint_officer", "", ""),
    ("supervisor", "supervisor", "", ""),
    ("finance", "finance", "", ""),
    ("crm.lead", "crm_lead", "", ""),
    ("partner.sz", "partner", "", repairs::PARTNERS[0]),
];

/// The sales reps and tech-support partners the demo customers belong to, and the regions'
/// engineers: (user name, role, region, language).
const DEMO_STAFF: &[(&str, &str, &str, &str)] = &[
    ("rep.zhang", "sales_rep", "华东", "zh"),
    ("rep.wu", "sales_rep", "华东", "zh"),
    ("rep.zhao", "sales_rep", "华北", "zh"),
    ("rep.huang", "sales_rep", "华南", "zh"),
    ("rep.luo", "sales_rep", "西南", "zh"),
    ("rep.smith", "sales_rep", "north-america", "en"),
    ("rep.muller", "sales_rep", "europe", "en"),
    ("ts.li", "tech_support", "", "zh"),
    ("ts.wang", "tech_support", "", "zh"),
    ("ts.chen", "tech_support", "", "zh"),
    ("ts.zhou", "tech_support", "", "zh"),
    ("ts.jones", "tech_support", "", "en"),
    // field engineers by region: dispatch without a name picks the least loaded of the region
    ("eng.east", "engineer", "华东", "zh"),
    ("eng.east2", "engineer", "华东", "zh"),
    ("eng.north", "engineer", "华北", "zh"),
    ("eng.south", "engineer", "华南", "zh"),
];

/// Creates the demo users (idempotent) with an e-mail and, for tech support, a phone for
/// urgent messages; returns their ids by user name.
pub async fn load_users(settings: &Settings) -> anyhow::Result<BTreeMap<String, String>> {
    let identity = crate::admin::identity(settings).await?;
    let everyone = DEMO_USERS
        .iter()
        .map(|(u, r, g, p)| (*u, *r, *g, *p, "zh"))
        .chain(DEMO_STAFF.iter().map(|(u, r, g, l)| (*u, *r, *g, "", *l)));
    let mut ids = BTreeMap::new();
    for (i, (username, role, region, partner, language)) in everyone.enumerate() {
        let user = crm_proto::gateway::v1::User {
            username: username.to_string(),
            display_name: format!("Demo {username}"),
            roles: vec![role.to_string()],
            region: region.to_string(),
            partner_id: partner.to_string(),
            email: format!("{username}@demo.example.com"),
            phone: if role == "tech_support" {
                format!("+86 137 0000 {:04}", 1000 + i)
            } else {
                String::new()
            },
            language: language.to_string(),
            ..Default::default()
        };
        let created = crate::admin::create_user(
            &identity,
            &format!("demo-user-{username}"),
            user,
            DEMO_PASSWORD,
            "demo",
        )
        .await?;
        ids.insert(username.to_string(), created.id);
    }
    Ok(ids)
}

/// The stage path from initial contact to `to`.
fn path_to(to: Stage) -> &'static [Stage] {
    use Stage::*;
    match to {
        NonTarget => &[NonTarget],
        Potential => &[Potential],
        Target => &[Potential, Target],
        Trial => &[Potential, Target, Trial],
        Signed => &[Potential, Target, Trial, Signed],
        _ => &[],
    }
}

/// A demo customer as the other demos use it: its id and its first contact's name.
#[derive(Debug, Clone)]
pub struct DemoCustomer {
    /// The customers service id.
    pub id: String,
    /// The first contact's name.
    pub contact: String,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Its owner's user name.
    pub owner: String,
}

/// Loads the demo customers, owned and partnered by the demo staff (`users`: ids by user
/// name, from [`load_users`]), and returns them.
pub async fn load(
    settings: &Settings,
    users: &BTreeMap<String, String>,
) -> anyhow::Result<Vec<DemoCustomer>> {
    let id_of = |name: &str| -> anyhow::Result<String> {
        users
            .get(name)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no demo user {name}"))
    };
    let pool = crm_kit::db::connect(&settings.database, crm_customers::NAME).await?;
    let clock = Clock::system();
    let service = Customers::new(
        pool,
        clock.clone(),
        Pager::new(&settings.paging),
        crm_customers::rules::Policy::from_settings(settings)?,
    );
    let today = clock.today();
    let mut loaded = Vec::with_capacity(CUSTOMERS.len());
    for (i, d) in CUSTOMERS.iter().enumerate() {
        let owner_id = id_of(d.owner)?;
        let customer = pb::Customer {
            display_name: d.name.into(),
            industry: d.industry.into(),
            region: d.region.into(),
            address: String::new(),
            source_channel: if i % 3 == 0 {
                SourceChannel::Exhibition
            } else {
                SourceChannel::Import
            }
            .into(),
            contacts: vec![pb::Contact {
                name: d.contact.into(),
                phone: d.phone.into(),
                email: d.email.into(),
                role: "IT".into(),
            }],
            tags: d.tags.iter().map(|t| t.to_string()).collect(),
            owner_id: owner_id.clone(),
            // the tier follows from these (C-7): the demo's amounts put each customer in its tier
            investment_cny: match d.tier {
                Tier::Vip => 680_000,
                Tier::Core => 260_000,
                _ => 0,
            },
            annual_service_fee_cny: match d.tier {
                Tier::Vip => 12_000,
                Tier::Core => 6_000,
                _ => 0,
            },
            potential_flag: d.tier == Tier::Potential,
            credit_rating: [CreditRating::A, CreditRating::B, CreditRating::C][i % 3].into(),
            ..Default::default()
        };
        let request = pb::CreateCustomerRequest {
            request_id: format!("demo-customer-{i}"),
            customer: Some(customer),
        };
        let fields = records::rules::CustomerFields::parse(
            "customer",
            request.customer.as_ref().expect("set"),
        )?;
        let call = Call::system("demo", "crm.customers.v1.CustomerService/CreateCustomer");
        let key = RequestKey::of(&call, &request.request_id, &request)?;
        let created = service
            .create(key, fields, &call)
            .await?
            .customer
            .expect("created");
        loaded.push(DemoCustomer {
            id: created.id.clone(),
            contact: d.contact.to_string(),
            name: d.name.to_string(),
            region: d.region.to_string(),
            owner: d.owner.to_string(),
        });
        for (step, stage) in path_to(d.stage).iter().enumerate() {
            let r = pb::ChangeCustomerStageRequest {
                request_id: format!("demo-stage-{i}-{step}"),
                customer_id: created.id.clone(),
                stage: (*stage).into(),
                reason: "demo history".into(),
                version: 0,
            };
            let key = RequestKey::new(
                "crm.customers.v1.CustomerService/ChangeCustomerStage",
                &r.request_id,
                &r,
            )?;
            service
                .change_stage(
                    key,
                    stages::rules::StageChangeInput::parse(&r)?,
                    &Call::system(&owner_id, "demo-data"),
                )
                .await?;
        }
        if !d.partner.is_empty() {
            let r = pb::RequestPartnerChangeRequest {
                request_id: format!("demo-partner-{i}"),
                customer_id: created.id.clone(),
                proposed_partner_id: id_of(d.partner)?,
                reason: "first technical support request".into(),
            };
            let key = RequestKey::new(
                "crm.customers.v1.CustomerService/RequestPartnerChange",
                &r.request_id,
                &r,
            )?;
            service
                .request_partner(
                    key,
                    crm_customers::partners::PartnerRequestInput::parse(&r)?,
                    &Call::system(&owner_id, "demo-data"),
                )
                .await?;
        }
        // every third customer is overdue for its next contact
        let next = today + time::Duration::days(if i % 3 == 0 { -3 } else { 14 });
        let r = pb::CreateCommunicationRequest {
            request_id: format!("demo-communication-{i}-{today}"),
            customer_id: created.id.clone(),
            communication: Some(pb::Communication {
                kind: CommunicationKind::Call.into(),
                summary: "介绍产品与服务政策 / introduced the product and service policy".into(),
                needs: "remote support, on-site training".into(),
                concerns: "price of annual service".into(),
                next_contact_date: Some(Date {
                    year: next.year(),
                    month: i32::from(u8::from(next.month())),
                    day: i32::from(next.day()),
                }),
                care_plan_step: "care plan step 1".into(),
                ..Default::default()
            }),
        };
        let key = RequestKey::new(
            "crm.customers.v1.CustomerService/CreateCommunication",
            &r.request_id,
            &r,
        )?;
        service
            .create_communication(
                key,
                crm_customers::communications::CommunicationInput::parse(&r)?,
                &Call::system(&owner_id, "demo-data"),
            )
            .await?;
    }
    Ok(loaded)
}
