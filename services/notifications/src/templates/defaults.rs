//! The templates the default rules use, in Chinese and English. `crm migrate` installs those
//! missing (it never replaces one an operator saved), so a fresh installation sends readable
//! messages from its first event.

use crm_kit::{Result, context::Call};
use crm_proto::notifications::v1 as pb;

use super::store;
use crate::{service::Notifications, templates::rules::TemplateInput};

/// (name, language, kind, subject, body) of each default template.
pub const DEFAULTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "repair_stock_low",
        "zh",
        "repairs.stock_low",
        "备件库存不足：{{ centre_name }} {{ part_number }}",
        "{{ recipient_name }} 您好：{{ centre_name }}（{{ centre_code }}）的备件 {{ part_number }} 可用库存 {{ available }}，低于最低库存 {{ minimum }}（在库 {{ on_hand }}，已预留 {{ reserved }}），请及时补货。",
    ),
    (
        "repair_stock_low",
        "en",
        "repairs.stock_low",
        "Low stock at {{ centre_name }}: {{ part_number }}",
        "Hello {{ recipient_name }}, {{ centre_name }} ({{ centre_code }}) has {{ available }} of {{ part_number }} available, below its minimum of {{ minimum }} ({{ on_hand }} on hand, {{ reserved }} reserved). Please reorder.",
    ),
    (
        "repair_order_changed",
        "zh",
        "repairs.order_changed",
        "维修单 {{ order_number }}：{{ order_state_zh }}",
        "{{ recipient_name }} 您好：{{ centre_name }} 的维修单 {{ order_number }}（{{ product_model }}，序列号 {{ serial_number }}，客户 {{ contact_name }}）现为「{{ order_state_zh }}」，完成时限 {{ due_time }}。",
    ),
    (
        "repair_order_changed",
        "en",
        "repairs.order_changed",
        "Repair order {{ order_number }}: {{ order_state }}",
        "Hello {{ recipient_name }}, repair order {{ order_number }} at {{ centre_name }} ({{ product_model }}, serial {{ serial_number }}, customer {{ contact_name }}) is now {{ order_state }}; it is due by {{ due_time }}.",
    ),
    (
        "repair_rma_changed",
        "zh",
        "repairs.rma_changed",
        "退换货申请 {{ serial_number }}：{{ rma_state_zh }}",
        "{{ recipient_name }} 您好：序列号 {{ serial_number }} 的退换货申请（{{ centre_name }}）现为「{{ rma_state_zh }}」{% if outcome %}，结论：{{ outcome_zh }}（{{ decision_reason }}）{% endif %}。",
    ),
    (
        "repair_rma_changed",
        "en",
        "repairs.rma_changed",
        "Return/exchange {{ serial_number }}: {{ rma_state }}",
        "Hello {{ recipient_name }}, the return/exchange request for serial {{ serial_number }} at {{ centre_name }} is now {{ rma_state }}{% if outcome %}; decision: {{ outcome }} ({{ decision_reason }}){% endif %}.",
    ),
    (
        "discount_requested",
        "zh",
        "pipeline.discount_requested",
        "折扣待审批：{{ opportunity_name }}（{{ discount_percent }}%）",
        "{{ recipient_name }} 您好：{{ requester_name }} 为商机「{{ opportunity_name }}」申请 {{ discount_percent }}% 的折扣，报价合计 {{ quote_total }}。理由：{{ reason }}。请在 CRM 中审批。",
    ),
    (
        "discount_requested",
        "en",
        "pipeline.discount_requested",
        "Discount to approve: {{ opportunity_name }} ({{ discount_percent }}%)",
        "Hello {{ recipient_name }}, {{ requester_name }} asks for a {{ discount_percent }}% discount on {{ opportunity_name }}, quote total {{ quote_total }}, because: {{ reason }}. Please decide in the CRM.",
    ),
    (
        "discount_decided",
        "zh",
        "pipeline.discount_decided",
        "折扣审批结果：{{ opportunity_name }} {{ decision_zh }}",
        "{{ recipient_name }} 您好：您为商机「{{ opportunity_name }}」申请的 {{ discount_percent }}% 折扣（报价 {{ quote_total }}）审批结果：{{ decision_zh }}。说明：{{ decision_reason }}。",
    ),
    (
        "discount_decided",
        "en",
        "pipeline.discount_decided",
        "Discount {{ decision }}: {{ opportunity_name }}",
        "Hello {{ recipient_name }}, the {{ discount_percent }}% discount you asked for on {{ opportunity_name }} (quote {{ quote_total }}) was {{ decision }}: {{ decision_reason }}.",
    ),
    (
        "contract_signed",
        "zh",
        "pipeline.contract_signed",
        "合同已签订：{{ contract_number }}",
        "{{ recipient_name }} 您好：合同 {{ contract_number }} 已签订，金额 {{ contract_amount }}。客户已转为签约客户，回访已安排。",
    ),
    (
        "contract_signed",
        "en",
        "pipeline.contract_signed",
        "Contract signed: {{ contract_number }}",
        "Hello {{ recipient_name }}, contract {{ contract_number }} for {{ contract_amount }} is signed. The customer is now signed and its return visit is scheduled.",
    ),
    (
        "instalment_overdue",
        "zh",
        "pipeline.instalment_overdue",
        "回款逾期：{{ contract_number }} {{ overdue }}",
        "{{ recipient_name }} 您好：合同 {{ contract_number }} 截至 {{ due_date }} 应收未收 {{ overdue }}，剩余应收 {{ balance }}。请跟进客户按时付款。",
    ),
    (
        "instalment_overdue",
        "en",
        "pipeline.instalment_overdue",
        "Payment overdue: {{ contract_number }} {{ overdue }}",
        "Hello {{ recipient_name }}, {{ overdue }} due on contract {{ contract_number }} by {{ due_date }} is unpaid; {{ balance }} is outstanding. Please follow up with the customer.",
    ),
    (
        "payment_recorded",
        "zh",
        "pipeline.payment_recorded",
        "回款到账：{{ contract_number }} {{ payment_amount }}",
        "{{ recipient_name }} 您好：合同 {{ contract_number }} 收到回款 {{ payment_amount }}，剩余应收 {{ balance }}。",
    ),
    (
        "payment_recorded",
        "en",
        "pipeline.payment_recorded",
        "Payment received: {{ contract_number }} {{ payment_amount }}",
        "Hello {{ recipient_name }}, {{ payment_amount }} was received on contract {{ contract_number }}; {{ balance }} is outstanding.",
    ),
    (
        "complaint_received",
        "zh",
        "complaints.received",
        "您的投诉已受理：{{ complaint_number }}",
        "{{ recipient_name }} 您好：非常抱歉给您带来不便。您的{{ complaint_kind_zh }}投诉（编号 {{ complaint_number }}）已受理，我们承诺在 {{ committed_due }} 前处理完毕，并会及时告知进展。",
    ),
    (
        "complaint_received",
        "en",
        "complaints.received",
        "Your complaint {{ complaint_number }} is being handled",
        "Dear {{ recipient_name }}, we are sorry for the trouble. Your {{ complaint_kind }} complaint ({{ complaint_number }}) has been received; we commit to resolving it by {{ committed_due }} and will keep you informed.",
    ),
    (
        "complaint_plan_approved",
        "zh",
        "complaints.plan_approved",
        "投诉 {{ complaint_number }} 的解决方案",
        "{{ recipient_name }} 您好：针对您的投诉（编号 {{ complaint_number }}），我们提出以下解决方案：{{ plan }}{% if compensation %}；补偿：{{ compensation }}{% endif %}。请告知您是否同意，我们将在您确认后执行。",
    ),
    (
        "complaint_plan_approved",
        "en",
        "complaints.plan_approved",
        "A resolution for your complaint {{ complaint_number }}",
        "Dear {{ recipient_name }}, for your complaint {{ complaint_number }} we propose: {{ plan }}{% if compensation %}; compensation: {{ compensation }}{% endif %}. Please tell us whether you agree; we carry it out once you confirm.",
    ),
    (
        "complaint_deadline_moved",
        "zh",
        "complaints.deadline_moved",
        "投诉 {{ complaint_number }} 处理时限调整",
        "{{ recipient_name }} 您好：您的投诉（编号 {{ complaint_number }}）的处理时限调整为 {{ committed_due }}，原因：{{ reason }}。给您带来不便，敬请谅解。",
    ),
    (
        "complaint_deadline_moved",
        "en",
        "complaints.deadline_moved",
        "New date for your complaint {{ complaint_number }}",
        "Dear {{ recipient_name }}, we now commit to resolving your complaint {{ complaint_number }} by {{ committed_due }}, because: {{ reason }}. We apologise for the delay.",
    ),
    (
        "complaint_routed_to_department",
        "zh",
        "complaints.routed_to_department",
        "产品投诉反馈：{{ complaint_number }}",
        "{{ recipient_name }} 您好：客户 {{ contact_name }} 的产品投诉（编号 {{ complaint_number }}）已反馈至贵部门：{{ content }}。承诺处理时限 {{ committed_due }}，请跟进调查。",
    ),
    (
        "complaint_routed_to_department",
        "en",
        "complaints.routed_to_department",
        "Product complaint {{ complaint_number }} for your department",
        "Hello {{ recipient_name }}, a product complaint from {{ contact_name }} ({{ complaint_number }}) was fed back to your department: {{ content }}. It is committed for {{ committed_due }}; please investigate.",
    ),
    (
        "complaint_routed_to_supervisor",
        "zh",
        "complaints.routed_to_supervisor",
        "服务人员投诉：{{ complaint_number }}",
        "{{ recipient_name }} 您好：客户 {{ contact_name }} 对服务人员的投诉（编号 {{ complaint_number }}）：{{ content }}。承诺处理时限 {{ committed_due }}，请相关主管及责任人跟进。",
    ),
    (
        "complaint_routed_to_supervisor",
        "en",
        "complaints.routed_to_supervisor",
        "Complaint {{ complaint_number }} about a staff member",
        "Hello {{ recipient_name }}, {{ contact_name }} complained about a staff member ({{ complaint_number }}): {{ content }}. It is committed for {{ committed_due }}; the supervisor and the person responsible follow it up.",
    ),
    (
        "complaint_deadline_breached",
        "zh",
        "complaints.deadline_breached",
        "投诉超时：{{ complaint_number }}（{{ deadline_zh }}）",
        "{{ recipient_name }} 您好：投诉 {{ complaint_number }}（{{ complaint_kind_zh }}，客户 {{ contact_name }}）已超过{{ deadline_zh }}，当前状态「{{ state_zh }}」。请督办。",
    ),
    (
        "complaint_deadline_breached",
        "en",
        "complaints.deadline_breached",
        "Complaint {{ complaint_number }} missed its {{ deadline }} deadline",
        "Hello {{ recipient_name }}, complaint {{ complaint_number }} ({{ complaint_kind }}, customer {{ contact_name }}) missed its {{ deadline }} deadline; it is {{ state }}. Please follow it up.",
    ),
    (
        "repair_turnaround_breached",
        "zh",
        "repairs.turnaround_breached",
        "维修超时：{{ centre_name }} 维修单 {{ order_number }}",
        "{{ recipient_name }} 您好：{{ centre_name }}（{{ centre_code }}）的维修单 {{ order_number }}（{{ product_model }}，客户 {{ contact_name }}）已超过完成时限 {{ due_time }}，当前状态「{{ order_state_zh }}」，优先级已提高。请督办。",
    ),
    (
        "repair_turnaround_breached",
        "en",
        "repairs.turnaround_breached",
        "Turnaround missed: repair order {{ order_number }} at {{ centre_name }}",
        "Hello {{ recipient_name }}, repair order {{ order_number }} at {{ centre_name }} ({{ centre_code }}; {{ product_model }}, customer {{ contact_name }}) missed its turnaround deadline of {{ due_time }}; it is {{ order_state }} and its priority was raised. Please follow it up.",
    ),
    (
        "partner_change_requested",
        "zh",
        "customers.partner_change_requested",
        "{{ '首位技术支持' if decision == 'initial' else '待审批：技术支持变更' }}：{{ customer_name }}",
        "{% if decision == 'initial' %}{{ recipient_name }} 您好：{{ actor_name }} 为客户 {{ customer_name }}（{{ region }}）设定了首位技术支持 {{ proposed_partner_name }}。理由：{{ reason }}。{% else %}{{ recipient_name }} 您好：{{ actor_name }} 申请将客户 {{ customer_name }}（{{ region }}）的技术支持由 {{ current_partner_name }} 改为 {{ proposed_partner_name }}。理由：{{ reason }}。请在 CRM 中审批。{% endif %}",
    ),
    (
        "partner_change_requested",
        "en",
        "customers.partner_change_requested",
        "{{ 'First tech-support partner' if decision == 'initial' else 'To approve: new tech-support partner' }} for {{ customer_name }}",
        "{% if decision == 'initial' %}Hello {{ recipient_name }}, {{ actor_name }} set {{ proposed_partner_name }} as the first tech-support partner of {{ customer_name }} ({{ region }}). Reason: {{ reason }}.{% else %}Hello {{ recipient_name }}, {{ actor_name }} asks to change the tech-support partner of {{ customer_name }} ({{ region }}) from {{ current_partner_name }} to {{ proposed_partner_name }}. Reason: {{ reason }}. Please decide in the CRM.{% endif %}",
    ),
    (
        "partner_change_decided",
        "zh",
        "customers.partner_change_decided",
        "技术支持变更{{ '已批准' if decision == 'approved' else '已驳回' if decision == 'rejected' else '已设定' }}：{{ customer_name }}",
        "{{ recipient_name }} 您好：客户 {{ customer_name }}（{{ tier }}，{{ region }}）的技术支持现为 {{ partner_name }}。{{ decision_reason }}",
    ),
    (
        "partner_change_decided",
        "en",
        "customers.partner_change_decided",
        "Tech-support partner {{ decision }}: {{ customer_name }}",
        "Hello {{ recipient_name }}, the tech-support partner of {{ customer_name }} ({{ tier }}, {{ region }}) is now {{ partner_name }}. {{ decision_reason }}",
    ),
    (
        "stage_changed",
        "zh",
        "customers.stage_changed",
        "{{ customer_name }}：{{ from_stage }} → {{ to_stage }}",
        "{{ recipient_name }} 您好：{{ actor_name }} 将客户 {{ customer_name }} 的成熟度由 {{ from_stage }} 调整为 {{ to_stage }}。理由：{{ reason }}。",
    ),
    (
        "stage_changed",
        "en",
        "customers.stage_changed",
        "{{ customer_name }}: {{ from_stage }} → {{ to_stage }}",
        "Hello {{ recipient_name }}, {{ actor_name }} moved {{ customer_name }} from {{ from_stage }} to {{ to_stage }}. Reason: {{ reason }}.",
    ),
    (
        "care_biweekly",
        "zh",
        "customers.care_due",
        "温馨速递 | {{ customer_name }}",
        "{{ recipient_name }} 您好：感谢 {{ customer_name }} 一直以来的信任。您的专属服务团队（销售 {{ owner_name }}，技术支持 {{ partner_name or '服务热线' }}）随时为您服务，如有任何问题请直接回复或致电服务热线。",
    ),
    (
        "care_biweekly",
        "en",
        "customers.care_due",
        "Keeping in touch | {{ customer_name }}",
        "Hello {{ recipient_name }}, thank you for your trust in us. Your service team ({{ owner_name }}, tech support {{ partner_name or 'the hotline' }}) is here for {{ customer_name }}; reply to this message or call the hotline any time.",
    ),
    (
        "next_contact_overdue",
        "zh",
        "customers.next_contact_overdue",
        "跟进逾期：{{ customer_name }}",
        "{{ recipient_name }} 您好：客户 {{ customer_name }}（{{ stage }}）的计划跟进日期 {{ next_contact_date }} 已过，请尽快联系并记录沟通。",
    ),
    (
        "next_contact_overdue",
        "en",
        "customers.next_contact_overdue",
        "Overdue follow-up: {{ customer_name }}",
        "Hello {{ recipient_name }}, the next contact with {{ customer_name }} ({{ stage }}) was due on {{ next_contact_date }}. Please get in touch and log it.",
    ),
    (
        "import_done",
        "zh",
        "customers.import_done",
        "导入完成：{{ region }} 新增 {{ accepted_in_region }} 个待分配客户",
        "{{ recipient_name }} 您好：文件 {{ file_name }} 已导入（共 {{ rows }} 行：成功 {{ accepted }}，重复 {{ duplicates }}，拒绝 {{ rejected }}）。{{ region }} 有 {{ accepted_in_region }} 个新客户待分配给销售代表，请在 CRM 中分配。",
    ),
    (
        "import_done",
        "en",
        "customers.import_done",
        "Import done: {{ accepted_in_region }} new customers in {{ region }} to assign",
        "Hello {{ recipient_name }}, the file {{ file_name }} was imported ({{ rows }} rows: {{ accepted }} accepted, {{ duplicates }} duplicates, {{ rejected }} rejected). {{ accepted_in_region }} new customers in {{ region }} wait to be assigned to sales reps.",
    ),
    (
        "service_overdue",
        "zh",
        "customers.service_overdue",
        "服务计划落后：{{ customer_name }}",
        "{{ recipient_name }} 您好：{{ tier }} 客户 {{ customer_name }}（{{ region }}）的上门服务次数低于服务政策要求，或服务报告已逾期。请尽快安排回访或提交服务报告，并在 CRM 中记录。",
    ),
    (
        "service_overdue",
        "en",
        "customers.service_overdue",
        "Service plan behind: {{ customer_name }}",
        "Hello {{ recipient_name }}, the {{ tier }} customer {{ customer_name }} ({{ region }}) has had fewer visits than its service policy asks, or its service report is overdue. Please arrange a visit or send the report, and log it in the CRM.",
    ),
    (
        "ticket_created",
        "zh",
        "tickets.created",
        "服务请求已受理：工单号 {{ ticket_number }}",
        "{{ recipient_name }} 您好：您关于 {{ product_model }} 的服务请求已受理，工单号 {{ ticket_number }}。查询进度或补充情况请致电服务热线并提供工单号。",
    ),
    (
        "ticket_created",
        "en",
        "tickets.created",
        "Service request received: ticket {{ ticket_number }}",
        "Hello {{ recipient_name }}, we have received your service request about your {{ product_model }}; its ticket number is {{ ticket_number }}. Quote it when you call the hotline about it.",
    ),
    (
        "ticket_dispatched",
        "zh",
        "tickets.dispatched",
        "工单 {{ ticket_number }} 已派工程师 {{ engineer_name }}",
        "{{ recipient_name }} 您好：您的工单 {{ ticket_number }}（{{ product_model }}）已安排工程师 {{ engineer_name }} 处理，工程师将于 {{ contact_due }} 前与您联系。",
    ),
    (
        "ticket_dispatched",
        "en",
        "tickets.dispatched",
        "Ticket {{ ticket_number }}: engineer {{ engineer_name }} is on it",
        "Hello {{ recipient_name }}, engineer {{ engineer_name }} will handle your ticket {{ ticket_number }} ({{ product_model }}) and will contact you by {{ contact_due }}.",
    ),
    (
        "ticket_assigned",
        "zh",
        "tickets.dispatched",
        "新派工：工单 {{ ticket_number }}（{{ priority_zh }}）",
        "{{ recipient_name }} 您好：工单 {{ ticket_number }}（{{ region }}，{{ tier_zh }}客户，{{ product_model }}，{{ symptom }}）已派给您。请接单，并于 {{ contact_due }} 前联系 {{ contact_name }}（{{ contact_phone }}）。",
    ),
    (
        "ticket_assigned",
        "en",
        "tickets.dispatched",
        "Dispatched to you: ticket {{ ticket_number }} ({{ priority }})",
        "Hello {{ recipient_name }}, ticket {{ ticket_number }} ({{ region }}, {{ tier }} customer, {{ product_model }}: {{ symptom }}) is dispatched to you. Please accept it and contact {{ contact_name }} ({{ contact_phone }}) by {{ contact_due }}.",
    ),
    (
        "ticket_resolved",
        "zh",
        "tickets.resolved",
        "工单 {{ ticket_number }} 已处理完毕",
        "{{ recipient_name }} 您好：您的工单 {{ ticket_number }}（{{ product_model }}）已处理完毕。我们将回访您确认处理结果并请您评价；如问题仍未解决，请致电服务热线并提供工单号 {{ ticket_number }}，我们将继续为您处理。",
    ),
    (
        "ticket_resolved",
        "en",
        "tickets.resolved",
        "Ticket {{ ticket_number }} is resolved",
        "Hello {{ recipient_name }}, your ticket {{ ticket_number }} ({{ product_model }}) is resolved. We will call you to confirm the result and ask for your rating; if the problem is not solved, call the hotline with ticket number {{ ticket_number }} and we will carry on.",
    ),
    (
        "sla_breached",
        "zh",
        "tickets.sla_breached",
        "【超时】工单 {{ ticket_id }}：{{ deadline_zh }}时限已过",
        "{{ recipient_name }} 您好：{{ region }} 的工单 {{ ticket_id }}（{{ tier_zh }}客户，{{ product_model }}，{{ symptom }}）的{{ deadline_zh }}时限 {{ due_time }} 已过，当前状态：{{ state_zh }}，优先级已升为{{ priority_zh }}。请立即处理。",
    ),
    (
        "sla_breached",
        "en",
        "tickets.sla_breached",
        "[SLA breach] ticket {{ ticket_id }}: {{ deadline }} deadline missed",
        "Hello {{ recipient_name }}, ticket {{ ticket_id }} in {{ region }} ({{ tier }} customer, {{ product_model }}: {{ symptom }}) missed its {{ deadline }} deadline of {{ due_time }}; it is {{ state }} and now {{ priority }} priority. Please act now.",
    ),
    (
        "record_due",
        "zh",
        "tickets.record_due",
        "请填写今日服务单：工单 {{ ticket_id }}",
        "{{ recipient_name }} 您好：工单 {{ ticket_id }}（{{ product_model }}，{{ symptom }}）今天开始的工作尚未填写服务单。请在今天内记录，以便安排回访。",
    ),
    (
        "record_due",
        "en",
        "tickets.record_due",
        "Record today's work: ticket {{ ticket_id }}",
        "Hello {{ recipient_name }}, the work started today on ticket {{ ticket_id }} ({{ product_model }}: {{ symptom }}) has no service record yet. Please record it today so the return visit can be arranged.",
    ),
    (
        "escalation_requested",
        "zh",
        "tickets.escalation_requested",
        "待审核：工单 {{ ticket_id }} 申请升级（{{ escalation_kind }}）",
        "{{ recipient_name }} 您好：{{ region }} 的工单 {{ ticket_id }}（{{ product_model }}，{{ symptom }}）申请疑难问题升级，类型 {{ escalation_kind }}，时限 {{ escalation_due }}。请审核。",
    ),
    (
        "escalation_requested",
        "en",
        "tickets.escalation_requested",
        "To review: escalation of ticket {{ ticket_id }} ({{ escalation_kind }})",
        "Hello {{ recipient_name }}, ticket {{ ticket_id }} in {{ region }} ({{ product_model }}: {{ symptom }}) asks for a {{ escalation_kind }} escalation, due by {{ escalation_due }}. Please review it.",
    ),
    (
        "escalation_rejected",
        "zh",
        "tickets.escalation_rejected",
        "升级申请未通过：工单 {{ ticket_id }}",
        "{{ recipient_name }} 您好：工单 {{ ticket_id }} 的升级申请未通过。理由：{{ escalation_note }}。请继续处理。",
    ),
    (
        "escalation_rejected",
        "en",
        "tickets.escalation_rejected",
        "Escalation not approved: ticket {{ ticket_id }}",
        "Hello {{ recipient_name }}, the escalation of ticket {{ ticket_id }} was not approved: {{ escalation_note }}. Please carry on with the ticket.",
    ),
    (
        "escalation_routed",
        "zh",
        "tickets.escalation_routed",
        "疑难问题升级（{{ escalation_kind }}）：工单 {{ ticket_id }}",
        "{{ recipient_name }} 您好：工单 {{ ticket_id }}（{{ region }}，{{ tier }} 客户，{{ product_model }}，{{ symptom }}）已升级至 {{ routed_to }}，请在 {{ escalation_due }} 前处理并记录进展。",
    ),
    (
        "escalation_routed",
        "en",
        "tickets.escalation_routed",
        "Escalated ({{ escalation_kind }}): ticket {{ ticket_id }}",
        "Hello {{ recipient_name }}, ticket {{ ticket_id }} ({{ region }}, {{ tier }} customer, {{ product_model }}: {{ symptom }}) was escalated to {{ routed_to }}. Please resolve it by {{ escalation_due }} and record the progress.",
    ),
    (
        "escalation_changed",
        "zh",
        "tickets.escalation_changed",
        "您的服务请求进展：{{ ticket_id }}",
        "{{ recipient_name }} 您好：您关于 {{ product_model }} 的问题已由专家团队跟进（{{ '已解决' if escalation_state == 'resolved' else '处理中' }}）。{{ escalation_note }}",
    ),
    (
        "escalation_changed",
        "en",
        "tickets.escalation_changed",
        "Progress on your service request {{ ticket_id }}",
        "Hello {{ recipient_name }}, our specialists are on your {{ product_model }} problem ({{ 'resolved' if escalation_state == 'resolved' else 'in progress' }}). {{ escalation_note }}",
    ),
];

/// Saves each default template that is not stored yet; returns how many it saved.
pub async fn install_defaults(service: &Notifications, call: &Call) -> Result<usize> {
    let mut saved = 0;
    for (name, language, kind, subject, body) in DEFAULTS {
        let mut conn = service.pool().acquire().await?;
        if store::get_template(&mut conn, name, language)
            .await?
            .is_some()
        {
            continue;
        }
        drop(conn);
        let input = TemplateInput::parse(&pb::SaveTemplateRequest {
            template: Some(pb::Template {
                name: (*name).into(),
                language: (*language).into(),
                kind: (*kind).into(),
                subject: (*subject).into(),
                body: (*body).into(),
                ..Default::default()
            }),
            version: 0,
        })?;
        service.save_template(input, call).await?;
        saved += 1;
    }
    Ok(saved)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{kinds, templates::rules::render};

    #[test]
    fn every_default_template_is_valid_and_renders() {
        for (name, language, kind, subject, body) in DEFAULTS {
            let parsed = TemplateInput::parse(&pb::SaveTemplateRequest {
                template: Some(pb::Template {
                    name: (*name).into(),
                    language: (*language).into(),
                    kind: (*kind).into(),
                    subject: (*subject).into(),
                    body: (*body).into(),
                    ..Default::default()
                }),
                version: 0,
            });
            assert!(parsed.is_ok(), "{name}/{language}: {parsed:?}");
            let vars: BTreeMap<String, String> = kinds::kind(kind)
                .unwrap()
                .variables
                .iter()
                .map(|v| (v.to_string(), format!("<{v}>")))
                .collect();
            render(subject, body, &vars).unwrap();
        }
    }

    #[test]
    fn every_default_rule_has_its_templates_in_both_languages() {
        let settings = crm_kit::Settings::load(None).unwrap();
        let rules = crate::NotificationSettings::from_settings(&settings)
            .unwrap()
            .checked_rules()
            .unwrap();
        for rule in rules {
            for language in ["zh", "en"] {
                assert!(
                    DEFAULTS.iter().any(|(n, l, k, _, _)| *n == rule.template
                        && *l == language
                        && *k == rule.event),
                    "no default {language} template {} for {}",
                    rule.template,
                    rule.event
                );
            }
        }
    }
}
