//! The variables of the complaints' and the pipeline's events (Q-1 … Q-5, P-3 … P-5): the
//! complaint's number, state and deadlines; a sale's quote, contract, payment or overdue
//! instalment, with its owner, region and requester.

use std::collections::BTreeMap;

use crm_kit::Error;
use crm_proto::{complaints::v1 as complaints, events::v1::Event, pipeline::v1 as pipeline};
use sqlx::PgConnection;

use super::variables::{local_time, name_of};

/// The variables a complaints event gives its templates; times on the clock of `offset`.
pub(super) fn complaint_variables(
    e: &complaints::ComplaintEvent,
    offset: time::UtcOffset,
) -> BTreeMap<String, String> {
    let c = e.complaint.clone().unwrap_or_default();
    let name = |s: &str, prefix: &str| s.trim_start_matches(prefix).to_lowercase();
    let kind = complaints::ComplaintKind::try_from(c.kind)
        .map(|k| name(k.as_str_name(), "COMPLAINT_KIND_"))
        .unwrap_or_default();
    let state = complaints::ComplaintState::try_from(c.state)
        .map(|s| name(s.as_str_name(), "COMPLAINT_STATE_"))
        .unwrap_or_default();
    let deadline = complaints::Deadline::try_from(e.deadline)
        .ok()
        .filter(|d| *d != complaints::Deadline::Unspecified)
        .map(|d| name(d.as_str_name(), "DEADLINE_"))
        .unwrap_or_default();
    let compensation = c
        .compensation
        .as_ref()
        .map(|k| {
            let m = k.amount.clone().unwrap_or_default();
            let cents = m.nanos / 10_000_000;
            format!("{} {} {}.{cents:02}", k.kind, m.currency_code, m.units)
        })
        .unwrap_or_default();
    let zh_of = |word: &str| -> &'static str {
        match word {
            "product" => "产品",
            "service" => "服务",
            "staff" => "服务人员",
            "received" => "已受理",
            "investigating" => "调查中",
            "planning" => "制定方案中",
            "awaiting_approval" => "方案审核中",
            "plan_approved" => "方案已审核",
            "accepted" => "方案执行中",
            "executed" => "已处理，待确认",
            "resolved" => "已解决",
            "closed" => "已结案",
            "reopened" => "重新处理",
            "committed" => "承诺处理时限",
            "plan_approval" => "方案审核时限",
            "resolution" => "解决时限",
            _ => "",
        }
    };
    [
        ("complaint_number", c.number.clone()),
        ("complaint_kind_zh", zh_of(&kind).to_string()),
        ("complaint_kind", kind),
        ("state_zh", zh_of(&state).to_string()),
        ("state", state),
        ("contact_name", c.contact_name.clone()),
        (
            "committed_due",
            c.committed_due
                .as_ref()
                .map(|t| local_time(t, offset))
                .unwrap_or_default(),
        ),
        ("plan", c.plan.clone()),
        ("compensation", compensation),
        ("deadline_zh", zh_of(&deadline).to_string()),
        ("deadline", deadline),
        ("reason", e.reason.clone()),
        ("content", c.content.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The owner, region and requester a pipeline event is about, and its templates' variables:
/// a quote's discount request or decision, a signed contract, a recorded payment.
pub(super) async fn pipeline_variables(
    tx: &mut PgConnection,
    event: &Event,
) -> Result<(String, String, String, BTreeMap<String, String>), Error> {
    let amount = |m: Option<&crm_proto::common::v1::Money>| {
        m.map(crm_kit::money::display).unwrap_or_default()
    };
    let mut v: Vec<(&str, String)> = Vec::new();
    let (owner, region, requester) = match event.r#type.as_str() {
        "pipeline.discount_requested" | "pipeline.discount_decided" => {
            let e: pipeline::QuoteEvent = crm_kit::events::decode(event)?;
            let q = e.quote.unwrap_or_default();
            let o = e.opportunity.unwrap_or_default();
            let approved = q.state == pipeline::QuoteState::Approved as i32;
            v.extend([
                ("opportunity_name", o.name.clone()),
                ("quote_total", amount(q.total.as_ref())),
                (
                    "discount_percent",
                    format!("{:.2}", f64::from(q.max_discount_bp) / 100.0),
                ),
                ("reason", q.request_reason.clone()),
                (
                    "decision",
                    if approved { "approved" } else { "rejected" }.to_string(),
                ),
                (
                    "decision_zh",
                    if approved { "同意" } else { "不同意" }.to_string(),
                ),
                ("decision_reason", q.decision_reason.clone()),
                ("requester_name", name_of(tx, &q.requested_by).await?),
            ]);
            (o.owner_id, o.region, q.requested_by)
        }
        "pipeline.contract_signed" | "pipeline.contract_amended" => {
            let e: pipeline::ContractEvent = crm_kit::events::decode(event)?;
            let c = e.contract.unwrap_or_default();
            v.extend([
                ("contract_number", c.number.clone()),
                ("contract_amount", amount(c.amount.as_ref())),
                ("contract_version", c.version.to_string()),
            ]);
            (c.owner_id, c.region, String::new())
        }
        "pipeline.instalment_overdue" => {
            let e: pipeline::InstalmentEvent = crm_kit::events::decode(event)?;
            let c = e.contract.unwrap_or_default();
            let due = e
                .due_date
                .map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
                .unwrap_or_default();
            v.extend([
                ("contract_number", c.number.clone()),
                ("contract_amount", amount(c.amount.as_ref())),
                ("overdue", amount(e.overdue.as_ref())),
                ("due_date", due),
                ("balance", amount(c.balance.as_ref())),
            ]);
            (c.owner_id, c.region, String::new())
        }
        _ => {
            let e: pipeline::PaymentEvent = crm_kit::events::decode(event)?;
            let c = e.contract.unwrap_or_default();
            let p = e.payment.unwrap_or_default();
            v.extend([
                ("contract_number", c.number.clone()),
                ("contract_amount", amount(c.amount.as_ref())),
                ("payment_amount", amount(p.amount.as_ref())),
                ("balance", amount(c.balance.as_ref())),
            ]);
            (c.owner_id, c.region, String::new())
        }
    };
    let mut out: BTreeMap<String, String> =
        v.into_iter().map(|(k, x)| (k.to_string(), x)).collect();
    out.insert("owner_name".into(), name_of(tx, &owner).await?);
    Ok((owner, region, requester, out))
}
