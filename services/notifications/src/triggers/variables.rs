//! The variables a template of each kind is given (N-3), from the event's payload: names in
//! Chinese for a Chinese message, times on the working clock.

use std::collections::BTreeMap;

use crm_kit::{Clock, Error, convert};
use crm_proto::{
    customers::v1 as customers, events::v1::Event, repairs::v1 as repairs, tickets::v1 as tickets,
};
use sqlx::PgConnection;

use crate::store;

/// An import finished (one event per region with new customers).
pub(super) const IMPORT_DONE: &str = "customers.import_done";

/// The variables of `customers.import_done`.
pub(super) fn import_variables(e: &customers::ImportEvent) -> BTreeMap<String, String> {
    let import = e.import.clone().unwrap_or_default();
    [
        ("import_id", import.id),
        ("file_name", import.file_name),
        ("region", e.region.clone()),
        ("accepted_in_region", e.accepted_in_region.to_string()),
        ("rows", import.rows.to_string()),
        ("accepted", import.accepted.to_string()),
        ("rejected", import.rejected.to_string()),
        ("duplicates", import.duplicates.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub(super) fn stage_name(value: i32) -> String {
    customers::Stage::try_from(value)
        .map(|s| s.as_str_name().trim_start_matches("STAGE_").to_lowercase())
        .unwrap_or_default()
}

pub(super) fn tier_name(value: i32) -> String {
    customers::Tier::try_from(value)
        .map(|s| s.as_str_name().trim_start_matches("TIER_").to_lowercase())
        .unwrap_or_default()
}

pub(super) async fn name_of(tx: &mut PgConnection, user_id: &str) -> Result<String, Error> {
    if user_id.is_empty() {
        return Ok(String::new());
    }
    Ok(store::get_user(tx, user_id)
        .await?
        .map_or_else(|| user_id.to_string(), |u| u.display_name))
}

pub(super) fn event_time(event: &Event, clock: &Clock) -> time::OffsetDateTime {
    event
        .time
        .as_ref()
        .and_then(|t| convert::from_timestamp(t).ok())
        .unwrap_or_else(|| clock.now())
}

/// A time as people read it: on the clock of the working calendar (`calendar.utc_offset_hours`,
/// the recipients' working time zone), to the minute, with the offset, e.g.
/// `2026-11-23 17:00 UTC+08:00`.
pub(super) fn local_time(t: &prost_types::Timestamp, offset: time::UtcOffset) -> String {
    let Ok(t) = convert::from_timestamp(t) else {
        return String::new();
    };
    let t = t.to_offset(offset);
    let (h, m, _) = offset.as_hms();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC{}{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        if h < 0 || m < 0 { '-' } else { '+' },
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

/// The Chinese word of a deadline, state, priority or tier name (as the variables give them).
pub(super) fn zh(word: &str) -> &str {
    match word {
        "response" => "响应",
        "handoff" => "转交",
        "resolution" => "解决",
        "escalation" => "升级处理",
        "new" => "新建",
        "solved_by_phone" => "电话解决",
        "with_hotline_engineer" => "热线工程师处理中",
        "dispatched" => "已派工",
        "accepted" => "已接单",
        "in_progress" => "处理中",
        "waiting_for_customer" => "等待客户",
        "resolved" => "已解决",
        "closed" => "已关闭",
        "low" => "低",
        "normal" => "普通",
        "high" => "高",
        "urgent" => "紧急",
        "vip" => "VIP",
        "core" => "核心",
        "potential" => "潜在",
        "ordinary" => "普通",
        other => other,
    }
}

/// The variables a tickets event gives its templates; times on the clock of `offset`.
pub(super) fn ticket_variables(
    t: &tickets::Ticket,
    offset: time::UtcOffset,
) -> BTreeMap<String, String> {
    let name = |s: &str, prefix: &str| s.trim_start_matches(prefix).to_lowercase();
    let last = t.breaches.last();
    let deadline = last
        .and_then(|b| tickets::Deadline::try_from(b.deadline).ok())
        .map(|d| name(d.as_str_name(), "DEADLINE_"))
        .unwrap_or_default();
    let due = last
        .and_then(|b| b.due_time.as_ref())
        .map(|t| local_time(t, offset))
        .unwrap_or_default();
    let escalation = t.escalation.as_ref();
    // the latest word on the escalation: its resolution, last progress, or review note
    let escalation_note = escalation
        .map(|e| {
            if !e.resolution.is_empty() {
                e.resolution.clone()
            } else if let Some(p) = e.progress.last() {
                p.note.clone()
            } else {
                e.review_note.clone()
            }
        })
        .unwrap_or_default();
    let mut variables = [
        ("ticket_id", t.id.clone()),
        ("customer_id", t.customer_id.clone()),
        ("region", t.region.clone()),
        ("tier", t.tier.clone()),
        (
            "priority",
            tickets::Priority::try_from(t.priority)
                .map(|p| name(p.as_str_name(), "PRIORITY_"))
                .unwrap_or_default(),
        ),
        (
            "state",
            tickets::TicketState::try_from(t.state)
                .map(|s| name(s.as_str_name(), "TICKET_STATE_"))
                .unwrap_or_default(),
        ),
        ("deadline", deadline),
        ("due_time", due),
        ("product_model", t.product_model.clone()),
        ("symptom", t.symptom.clone()),
        ("contact_name", t.contact_name.clone()),
        ("contact_phone", t.contact_phone.clone()),
        ("ticket_number", t.number.clone()),
        (
            "contact_due",
            t.contact_due
                .as_ref()
                .map(|t| local_time(t, offset))
                .unwrap_or_default(),
        ),
        (
            "escalation_kind",
            escalation
                .and_then(|e| tickets::EscalationKind::try_from(e.kind).ok())
                .map(|k| name(k.as_str_name(), "ESCALATION_KIND_"))
                .unwrap_or_default(),
        ),
        (
            "escalation_state",
            escalation
                .and_then(|e| tickets::EscalationState::try_from(e.state).ok())
                .map(|k| name(k.as_str_name(), "ESCALATION_STATE_"))
                .unwrap_or_default(),
        ),
        ("escalation_note", escalation_note),
        (
            "escalation_due",
            escalation
                .and_then(|e| e.due_time.as_ref())
                .map(|t| local_time(t, offset))
                .unwrap_or_default(),
        ),
        (
            "routed_to",
            escalation.map(|e| e.routed_to.clone()).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect::<BTreeMap<_, _>>();
    // the Chinese words of the named values, so a Chinese template says 转交, not "handoff"
    for name in ["deadline", "state", "priority", "tier"] {
        let word = zh(&variables[name]).to_string();
        variables.insert(format!("{name}_zh"), word);
    }
    variables
}

/// The variables a customers event gives its templates.
pub(super) async fn customer_variables(
    tx: &mut PgConnection,
    event: &Event,
    e: &customers::CustomerEvent,
) -> Result<BTreeMap<String, String>, Error> {
    let c = e.customer.clone().unwrap_or_default();
    let mut v = BTreeMap::new();
    v.insert("customer_id".into(), c.id.clone());
    v.insert("customer_name".into(), c.display_name.clone());
    v.insert("region".into(), c.region.clone());
    v.insert("tier".into(), tier_name(c.tier));
    v.insert("stage".into(), stage_name(c.stage));
    v.insert("owner_name".into(), name_of(tx, &c.owner_id).await?);
    v.insert(
        "partner_name".into(),
        name_of(tx, &c.tech_partner_id).await?,
    );
    v.insert("actor_name".into(), name_of(tx, &event.actor).await?);
    if let Some(s) = &e.stage_change {
        v.insert("from_stage".into(), stage_name(s.from_stage));
        v.insert("to_stage".into(), stage_name(s.to_stage));
        v.insert("reason".into(), s.reason.clone());
    }
    if let Some(p) = &e.partner_change {
        v.insert(
            "current_partner_name".into(),
            name_of(tx, &p.current_partner_id).await?,
        );
        v.insert(
            "proposed_partner_name".into(),
            name_of(tx, &p.proposed_partner_id).await?,
        );
        v.insert("reason".into(), p.reason.clone());
        let decision = customers::PartnerChangeState::try_from(p.state)
            .map(|s| {
                s.as_str_name()
                    .trim_start_matches("PARTNER_CHANGE_STATE_")
                    .to_lowercase()
            })
            .unwrap_or_default();
        v.insert("decision".into(), decision);
        v.insert("decision_reason".into(), p.decision_reason.clone());
    }
    if let Some(d) = &c.next_contact_date {
        v.insert(
            "next_contact_date".into(),
            format!("{:04}-{:02}-{:02}", d.year, d.month, d.day),
        );
    } else {
        v.insert("next_contact_date".into(), String::new());
    }
    Ok(v)
}

/// The Chinese name of a repair order's state.
fn order_state_zh(state: &str) -> &'static str {
    match state {
        "awaiting_arrival" => "待收件",
        "received" => "已接收",
        "inspected" => "已检测",
        "customer_contacted" => "已联系客户",
        "quoted" => "待客户确认报价",
        "quote_accepted" => "报价已确认",
        "in_repair" => "维修中",
        "repaired" => "已修复",
        "ready" => "待取机/待寄回",
        "completed" => "已取机",
        "shipped" => "已寄回",
        _ => "",
    }
}

/// The centre of a repairs event, its requester (a return/exchange request's) and the variables
/// its templates get; times on the clock of `offset`.
pub(super) fn repair_variables(
    event: &Event,
    offset: time::UtcOffset,
) -> Result<(repairs::Centre, String, BTreeMap<String, String>), Error> {
    if event.r#type == "repairs.rma_changed" {
        let e: repairs::RmaEvent = crm_kit::events::decode(event)?;
        let a = e.rma.unwrap_or_default();
        let centre = e.centre.unwrap_or_default();
        let name = |s: &str, prefix: &str| s.trim_start_matches(prefix).to_lowercase();
        let state = repairs::RmaState::try_from(a.state)
            .map(|s| name(s.as_str_name(), "RMA_STATE_"))
            .unwrap_or_default();
        let outcome = repairs::RmaOutcome::try_from(a.outcome)
            .map(|o| name(o.as_str_name(), "RMA_OUTCOME_"))
            .unwrap_or_default();
        let requester = a
            .requested
            .as_ref()
            .map(|r| r.actor.clone())
            .unwrap_or_default();
        let state_zh = match state.as_str() {
            "requested" => "已受理",
            "diagnosed" => "已诊断",
            "judged" => "技术判定完成",
            "return_approved" => "已批准退货",
            "exchange_approved" => "已批准换货",
            "awaiting_return" => "换货已发出，待退回故障机",
            "closed" => "已完结",
            _ => "",
        };
        let outcome_zh = match outcome.as_str() {
            "return" => "退货",
            "exchange" => "换货",
            "reject" => "不予退换",
            _ => "",
        };
        let vars = [
            ("centre_code", centre.code.clone()),
            ("centre_name", centre.name.clone()),
            ("serial_number", a.serial_number),
            ("rma_state_zh", state_zh.to_string()),
            ("outcome_zh", outcome_zh.to_string()),
            ("rma_state", state),
            ("outcome", outcome),
            ("decision_reason", a.decision_reason),
            (
                "step",
                repairs::RmaStep::try_from(e.step)
                    .map(|s| name(s.as_str_name(), "RMA_STEP_"))
                    .unwrap_or_default(),
            ),
        ];
        return Ok((
            centre,
            requester,
            vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        ));
    }
    let name = |s: &str, prefix: &str| s.trim_start_matches(prefix).to_lowercase();
    let (centre, mut vars): (Option<repairs::Centre>, Vec<(&str, String)>) =
        if event.r#type == "repairs.stock_low" {
            let e: repairs::StockEvent = crm_kit::events::decode(event)?;
            let s = e.stock.unwrap_or_default();
            (
                e.centre,
                vec![
                    ("part_number", s.part_number),
                    ("available", s.available.to_string()),
                    ("minimum", s.minimum.to_string()),
                    ("on_hand", s.on_hand.to_string()),
                    ("reserved", s.reserved.to_string()),
                ],
            )
        } else {
            let (order, centre, step) = if event.r#type == "repairs.order_changed" {
                let e: repairs::OrderEvent = crm_kit::events::decode(event)?;
                let step = repairs::OrderTransition::try_from(e.transition)
                    .map(|t| name(t.as_str_name(), "ORDER_TRANSITION_"))
                    .unwrap_or_default();
                (e.repair_order, e.centre, step)
            } else {
                let e: repairs::TurnaroundEvent = crm_kit::events::decode(event)?;
                (e.repair_order, e.centre, "turnaround".to_string())
            };
            let o = order.unwrap_or_default();
            let state = repairs::OrderState::try_from(o.state)
                .map(|s| name(s.as_str_name(), "ORDER_STATE_"))
                .unwrap_or_default();
            (
                centre,
                vec![
                    ("order_number", o.number),
                    (
                        "order_kind",
                        repairs::OrderKind::try_from(o.kind)
                            .map(|k| name(k.as_str_name(), "ORDER_KIND_"))
                            .unwrap_or_default(),
                    ),
                    ("order_state_zh", order_state_zh(&state).to_string()),
                    ("order_state", state),
                    ("step", step),
                    ("contact_name", o.contact_name),
                    ("product_model", o.product_model),
                    ("serial_number", o.serial_number),
                    (
                        "due_time",
                        o.due_time
                            .as_ref()
                            .map(|t| local_time(t, offset))
                            .unwrap_or_default(),
                    ),
                    (
                        "priority",
                        repairs::OrderPriority::try_from(o.priority)
                            .map(|p| name(p.as_str_name(), "ORDER_PRIORITY_"))
                            .unwrap_or_default(),
                    ),
                ],
            )
        };
    let centre = centre.unwrap_or_default();
    vars.push(("centre_code", centre.code.clone()));
    vars.push(("centre_name", centre.name.clone()));
    Ok((
        centre,
        String::new(),
        vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    ))
}

#[cfg(test)]
mod zh_tests {
    use super::*;

    #[test]
    fn a_chinese_breach_message_speaks_chinese_on_the_working_clock() {
        let ticket = tickets::Ticket {
            id: "t1".into(),
            region: "华东".into(),
            tier: "vip".into(),
            state: tickets::TicketState::WithHotlineEngineer as i32,
            priority: tickets::Priority::Urgent as i32,
            breaches: vec![tickets::Breach {
                deadline: tickets::Deadline::Handoff as i32,
                due_time: Some(prost_types::Timestamp {
                    seconds: 1_795_424_400, // 2026-11-23 09:00 UTC
                    nanos: 0,
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let offset = time::UtcOffset::from_hms(8, 0, 0).unwrap();
        let mut variables = ticket_variables(&ticket, offset);
        variables.insert("recipient_name".into(), "张主管".into());
        assert_eq!(variables["due_time"], "2026-11-23 17:00 UTC+08:00");
        let (_, _, _, subject, body) = crate::templates::defaults::DEFAULTS
            .iter()
            .find(|(name, language, ..)| *name == "sla_breached" && *language == "zh")
            .unwrap();
        let (subject, body) = crate::templates::rules::render(subject, body, &variables).unwrap();
        for text in [&subject, &body] {
            assert!(!text.contains("handoff"), "{text}");
            assert!(!text.contains("+00:00"), "{text}");
        }
        assert!(subject.contains("转交"), "{subject}");
        assert!(body.contains("17:00"), "{body}");
        assert!(
            body.contains("紧急") && body.contains("热线工程师处理中"),
            "{body}"
        );
    }
}
