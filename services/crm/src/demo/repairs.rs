//! The repairs demo (issue 16): the headquarters repair centre, a branch centre, the demo
//! partner's authorised repair centre and an agent, a few parts with stock, part requests and
//! repair orders in different states, and a swap. Every write carries a fixed request id, so a
//! second run changes nothing.

use std::sync::Arc;

use crm_kit::{
    Clock, Settings, calendar::Calendar, context::Call, idempotency::RequestKey, paging::Pager,
    timers::Timers,
};
use crm_proto::repairs::v1::{
    self as pb, CentreKind, OrderKind, OrderTransition as T, TransitionRepairOrderRequest,
};
use crm_repairs::{
    Repairs,
    centres::rules::NewCentre,
    orders::{rules::NewOrder, steps::Step},
    part_requests::{
        StepInput,
        rules::{NewPartRequest, Step as RequestStep},
    },
    rules::RepairSettings,
    stock::Delivery,
    swaps::rules::NewSwap,
};

const SERVICE: &str = "crm.repairs.v1.RepairService";

/// The demo partner organisations: the partner user `partner.sz` belongs to the first.
pub const PARTNERS: [&str; 2] = ["partner.shenzhen", "partner.guangzhou"];

fn call(method: &str) -> Call {
    Call::system("demo", &format!("{SERVICE}/{method}"))
}

fn key<M: prost::Message>(method: &str, id: &str, r: &M) -> anyhow::Result<RequestKey> {
    Ok(RequestKey::new(&format!("{SERVICE}/{method}"), id, r)?)
}

/// What the repairs demo holds.
pub struct Loaded {
    /// Repair centres.
    pub centres: usize,
    /// Repair orders.
    pub orders: usize,
}

/// Loads the repairs demo.
pub async fn load(settings: &Settings) -> anyhow::Result<Loaded> {
    let pool = crm_kit::db::connect(&settings.database, crm_repairs::NAME).await?;
    let service = Repairs::new(
        pool,
        Clock::system(),
        Pager::new(&settings.paging),
        Arc::new(RepairSettings::from_settings(settings)?),
        Arc::new(Calendar::new(&settings.calendar)?),
        Timers::connect(&settings.redis, crm_repairs::NAME).await?,
    );
    let centres = [
        ("HQ-BJ", "北京维修中心", CentreKind::Hq, "华北", ""),
        ("SH-01", "上海分中心", CentreKind::Branch, "华东", ""),
        (
            "SZ-P1",
            "深圳授权维修站",
            CentreKind::Partner,
            "华南",
            PARTNERS[0],
        ),
        (
            "GZ-A1",
            "广州代理商",
            CentreKind::Agent,
            "华南",
            PARTNERS[1],
        ),
    ];
    let mut ids = Vec::new();
    for (code, name, kind, region, partner) in centres {
        let r = pb::CreateCentreRequest {
            request_id: format!("demo-centre-{code}"),
            centre: Some(pb::Centre {
                code: code.into(),
                name: name.into(),
                kind: kind as i32,
                region: region.into(),
                address: format!("{region} {name}，服务大厅一层"),
                opening_hours: "周一至周五 09:00–18:00，周六 09:00–12:00".into(),
                partner_id: partner.into(),
                ..Default::default()
            }),
        };
        let created = service
            .create_centre(
                key("CreateCentre", &r.request_id, &r)?,
                NewCentre::parse(&r)?,
                &call("CreateCentre"),
            )
            .await?;
        ids.push(created.centre.unwrap_or_default().id);
    }
    let parts = [
        ("PSU-500W", "电源 500W", true, 3),
        ("MB-X200", "X200 主板", true, 2),
        ("FAN-80", "散热风扇 80mm", false, 5),
        ("CABLE-USB", "USB 数据线", false, 10),
    ];
    let mut part_ids = Vec::new();
    for (number, name, serialised, minimum) in parts {
        let r = pb::CreatePartRequest {
            request_id: format!("demo-part-{number}"),
            part: Some(pb::Part {
                part_number: number.into(),
                name: name.into(),
                serialised,
                minimum_stock: minimum,
                ..Default::default()
            }),
        };
        let part = crm_repairs::catalogue::rules::parse_part(&r)?;
        let created = service
            .create_part(
                key("CreatePart", &r.request_id, &r)?,
                part,
                &call("CreatePart"),
            )
            .await?;
        part_ids.push(created.part.unwrap_or_default().id);
    }
    // stock: HQ holds the most; the agent runs low on fans
    for (c, centre) in ids.iter().enumerate() {
        for (p, part) in part_ids.iter().enumerate() {
            let quantity = [30, 12, 8, 4][c] + 2 * p as i32;
            let r = pb::ReceiveStockRequest {
                request_id: format!("demo-stock-{c}-{p}"),
                centre_id: centre.clone(),
                part_id: part.clone(),
                quantity,
                note: "首批备件 / first delivery".into(),
            };
            service
                .receive_stock(
                    key("ReceiveStock", &r.request_id, &r)?,
                    Delivery::parse(&r)?,
                    &call("ReceiveStock"),
                )
                .await?;
        }
    }
    // part requests: one reserved at the partner centre, one issued at the branch
    for (i, (centre, part, quantity, issue)) in [
        (2usize, 2usize, 2, false),
        (1, 0, 1, true),
        (3, 2, 3, false),
    ]
    .into_iter()
    .enumerate()
    {
        let r = pb::RequestPartsRequest {
            request_id: format!("demo-parts-{i}"),
            centre_id: ids[centre].clone(),
            part_id: part_ids[part].clone(),
            quantity,
            ticket_id: String::new(),
            note: "上门维修备件 / parts for an on-site job".into(),
        };
        let made = service
            .request_parts(
                key("RequestParts", &r.request_id, &r)?,
                NewPartRequest::parse(&r)?,
                &call("RequestParts"),
            )
            .await?;
        if issue {
            let id = made.part_request.unwrap_or_default().id;
            let r = pb::IssuePartRequestRequest {
                request_id: format!("demo-parts-issue-{i}"),
                id: id.clone(),
            };
            let input = StepInput::parse(&id, RequestStep::Issue, 0, 0, "")?;
            service
                .step_part_request(
                    key("IssuePartRequest", &r.request_id, &r)?,
                    input,
                    &call("IssuePartRequest"),
                    |part_request, stock| pb::IssuePartRequestResponse {
                        part_request: Some(part_request),
                        stock: Some(stock),
                    },
                )
                .await?;
        }
    }
    // repair orders in different states
    let orders: [(usize, OrderKind, &[T]); 4] = [
        (2, OrderKind::CarryIn, &[T::Inspect]),
        (2, OrderKind::MailIn, &[]),
        (
            0,
            OrderKind::MailIn,
            &[
                T::ReceiveShipment,
                T::Inspect,
                T::ContactCustomer,
                T::StartRepair,
            ],
        ),
        (
            1,
            OrderKind::CarryIn,
            &[T::Inspect, T::RepairWhileWaiting, T::HandOver],
        ),
    ];
    for (i, (centre, kind, steps)) in orders.iter().enumerate() {
        let r = pb::CreateRepairOrderRequest {
            request_id: format!("demo-order-{i}"),
            repair_order: Some(pb::RepairOrder {
                kind: *kind as i32,
                centre_id: ids[*centre].clone(),
                contact_name: ["王晓明", "李娜", "陈刚", "赵敏"][i].into(),
                contact_phone: format!("+86 138 0013 80{i:02}"),
                product_model: "X200".into(),
                serial_number: format!("X200-DEMO-{i:04}"),
                fault_description: ["无法开机", "屏幕闪烁", "电源无输出", "风扇异响"][i].into(),
                ..Default::default()
            }),
        };
        let order = service
            .create_repair_order(
                key("CreateRepairOrder", &r.request_id, &r)?,
                NewOrder::parse(&r)?,
                &call("CreateRepairOrder"),
            )
            .await?
            .repair_order
            .unwrap_or_default();
        for (n, t) in steps.iter().enumerate() {
            let r = TransitionRepairOrderRequest {
                request_id: format!("demo-order-{i}-{n}"),
                id: order.id.clone(),
                transition: *t as i32,
                note: "演示 / demo".into(),
                configuration: "16G / 512G SSD".into(),
                fault_reproduced: true,
                accessories: vec!["电源适配器".into()],
                customer_confirmed: true,
                service_record: "更换风扇，测试通过 / fan replaced, tested".into(),
                tested: true,
                signature: "赵敏".into(),
                carrier: "顺丰".into(),
                tracking_number: format!("SF10000000{i}"),
                ..Default::default()
            };
            service
                .transition_repair_order(
                    key("TransitionRepairOrder", &r.request_id, &r)?,
                    Step::parse(&r)?,
                    &call("TransitionRepairOrder"),
                )
                .await?;
        }
        // the power supply of the mail-in unit in repair at HQ was swapped
        if i == 2 {
            let r = pb::RecordSwapRequest {
                request_id: "demo-swap-0".into(),
                swap: Some(pb::Swap {
                    centre_id: ids[0].clone(),
                    part_id: part_ids[0].clone(),
                    order_id: order.id.clone(),
                    removed_serial: "PSU-DEMO-0001".into(),
                    fault: "无输出 / no output".into(),
                    installed_serial: "PSU-DEMO-0002".into(),
                    return_centre_id: ids[0].clone(),
                    ..Default::default()
                }),
            };
            service
                .record_swap(
                    key("RecordSwap", &r.request_id, &r)?,
                    NewSwap::parse(&r)?,
                    &call("RecordSwap"),
                )
                .await?;
        }
    }
    Ok(Loaded {
        centres: ids.len(),
        orders: orders.len(),
    })
}
