//! The kinds of message (N-3): what triggers each and the variables its templates may use.

use crate::rules::MANUAL;

/// One kind of message: what triggers it and the variables its templates may use.
#[derive(Debug, Clone, Copy)]
pub struct Kind {
    /// The event type, schedule, or `manual`.
    pub name: &'static str,
    /// What it is.
    pub description: &'static str,
    /// The variables it provides.
    pub variables: &'static [&'static str],
}

/// A kind about a customer: the variables every such message provides, and its own.
macro_rules! customer_kind {
    ($name:literal, $description:literal, [$($extra:literal),*]) => {
        Kind {
            name: $name,
            description: $description,
            variables: &[
                "recipient_name", "customer_id", "customer_name", "region", "tier", "stage",
                "owner_name", "partner_name", "actor_name" $(, $extra)*
            ],
        }
    };
}

/// A tickets event's kind: every ticket variable (the latest breach, the latest escalation).
macro_rules! ticket_kind {
    ($name:literal, $description:literal) => {
        Kind {
            name: $name,
            description: $description,
            variables: &[
                "recipient_name",
                "ticket_id",
                "customer_id",
                "region",
                "tier",
                "priority",
                "state",
                "deadline",
                "deadline_zh",
                "state_zh",
                "priority_zh",
                "tier_zh",
                "due_time",
                "product_model",
                "symptom",
                "contact_name",
                "contact_phone",
                "ticket_number",
                "contact_due",
                "engineer_name",
                "escalation_kind",
                "escalation_state",
                "escalation_note",
                "escalation_due",
                "routed_to",
            ],
        }
    };
}

/// A repairs event's kind: the centre's and the event's variables.
macro_rules! repair_kind {
    ($name:literal, $description:literal, [$($extra:literal),*]) => {
        Kind {
            name: $name,
            description: $description,
            variables: &["recipient_name", "centre_code", "centre_name" $(, $extra)*],
        }
    };
}

/// The variables of a repair order's events.
macro_rules! order_kind {
    ($name:literal, $description:literal) => {
        repair_kind!(
            $name,
            $description,
            [
                "order_number",
                "order_kind",
                "order_state",
                "order_state_zh",
                "step",
                "contact_name",
                "product_model",
                "serial_number",
                "due_time",
                "priority"
            ]
        )
    };
}

/// A complaints event's kind: the complaint's variables (Q-1 … Q-5).
macro_rules! complaint_kind {
    ($name:literal, $description:literal) => {
        Kind {
            name: $name,
            description: $description,
            variables: &[
                "recipient_name",
                "complaint_number",
                "complaint_kind",
                "complaint_kind_zh",
                "state",
                "state_zh",
                "contact_name",
                "committed_due",
                "plan",
                "compensation",
                "deadline",
                "deadline_zh",
                "reason",
                "content",
            ],
        }
    };
}

/// A pipeline event's kind (P-3 … P-5): the sale's owner and the event's variables.
macro_rules! pipeline_kind {
    ($name:literal, $description:literal, [$($extra:literal),*]) => {
        Kind {
            name: $name,
            description: $description,
            variables: &["recipient_name", "owner_name" $(, $extra)*],
        }
    };
}

/// Every kind of message.
pub const KINDS: &[Kind] = &[
    pipeline_kind!(
        "pipeline.discount_requested",
        "a quote's discount above the limit awaits the sales manager (P-3)",
        [
            "opportunity_name",
            "quote_total",
            "discount_percent",
            "reason",
            "requester_name"
        ]
    ),
    pipeline_kind!(
        "pipeline.discount_decided",
        "the sales manager approved or rejected a discount (P-3): the requester hears of it",
        [
            "opportunity_name",
            "quote_total",
            "discount_percent",
            "decision",
            "decision_zh",
            "decision_reason",
            "requester_name"
        ]
    ),
    pipeline_kind!(
        "pipeline.contract_signed",
        "a contract was signed (P-4)",
        ["contract_number", "contract_amount", "contract_version"]
    ),
    pipeline_kind!(
        "pipeline.instalment_overdue",
        "an instalment's due date passed with less paid than the schedule asked (P-5)",
        [
            "contract_number",
            "contract_amount",
            "overdue",
            "due_date",
            "balance"
        ]
    ),
    pipeline_kind!(
        "pipeline.payment_recorded",
        "finance recorded a payment against a contract (P-5)",
        [
            "contract_number",
            "contract_amount",
            "payment_amount",
            "balance"
        ]
    ),
    complaint_kind!(
        "complaints.received",
        "a complaint was taken in (Q-1): the customer's acknowledgement with the committed deadline"
    ),
    complaint_kind!(
        "complaints.plan_approved",
        "the CRM lead approved a resolution plan (Q-4): it is told to the customer"
    ),
    complaint_kind!(
        "complaints.deadline_moved",
        "the committed processing deadline moved, with the reason (Q-1): the customer is told"
    ),
    complaint_kind!(
        "complaints.routed_to_department",
        "a product complaint was fed back to the product department (Q-2): its people are told"
    ),
    complaint_kind!(
        "complaints.routed_to_supervisor",
        "a staff complaint went to the staff member's supervisors and the person responsible (Q-2)"
    ),
    complaint_kind!("complaints.changed", "a complaint took a step (Q-2 … Q-5)"),
    complaint_kind!(
        "complaints.deadline_breached",
        "a complaint missed its committed, plan-approval or resolution deadline (Q-1)"
    ),
    repair_kind!(
        "repairs.stock_low",
        "a centre's available stock of a part fell below its minimum (R-3); told once per fall",
        ["part_number", "available", "minimum", "on_hand", "reserved"]
    ),
    order_kind!(
        "repairs.order_changed",
        "a repair order was registered or took a step (R-2): the centre (a partner by webhook) \
         follows its orders"
    ),
    repair_kind!(
        "repairs.rma_changed",
        "a return/exchange request was made or took a step (R-4): the requester hears of each \
         decision, a partner centre by webhook",
        [
            "serial_number",
            "rma_state",
            "rma_state_zh",
            "outcome",
            "outcome_zh",
            "decision_reason",
            "step"
        ]
    ),
    order_kind!(
        "repairs.turnaround_breached",
        "a repair order missed its turnaround deadline (R-5): the centre's supervisor is told"
    ),
    Kind {
        name: MANUAL,
        description: "sent with SendNotification; its template declares its variables",
        variables: &["recipient_name"],
    },
    customer_kind!(
        "customers.stage_changed",
        "a customer moved to another maturity stage (C-4)",
        ["from_stage", "to_stage", "reason"]
    ),
    customer_kind!(
        "customers.partner_change_requested",
        "a tech-support partner was asked for: the first is set at once (decision \"initial\"), \
         a change awaits a sales manager's decision (\"pending\") (C-5)",
        [
            "current_partner_name",
            "proposed_partner_name",
            "reason",
            "decision"
        ]
    ),
    customer_kind!(
        "customers.partner_change_decided",
        "a partner change was approved, rejected or set as the first partner (C-5)",
        [
            "current_partner_name",
            "proposed_partner_name",
            "reason",
            "decision",
            "decision_reason"
        ]
    ),
    customer_kind!(
        "customers.care_due",
        "the customer's fortnightly care message is due (温馨速递, N-5)",
        []
    ),
    ticket_kind!(
        "tickets.created",
        "a ticket was opened (T-1): the contact is told its number"
    ),
    ticket_kind!(
        "tickets.dispatched",
        "a ticket was dispatched to an engineer (T-6): the engineer gets the work, the contact \
         is told who comes and when to expect the call (contact_due)"
    ),
    ticket_kind!(
        "tickets.resolved",
        "a ticket was resolved (T-7): the contact is told, and how the result is confirmed"
    ),
    ticket_kind!(
        "tickets.sla_breached",
        "a ticket missed an SLA deadline: response, hand-off, resolution or escalation (T-5)"
    ),
    ticket_kind!(
        "tickets.record_due",
        "work started on a ticket today has no service record at the day's close (T-9)"
    ),
    ticket_kind!(
        "tickets.escalation_requested",
        "an engineer applied to escalate a hard problem; the hotline engineer filters it (T-8)"
    ),
    ticket_kind!(
        "tickets.escalation_rejected",
        "the hotline engineer rejected an escalation, with the reason (T-8)"
    ),
    ticket_kind!(
        "tickets.escalation_routed",
        "an escalation was routed to its department: quality, QA with the product department, or the tech supervisor (T-8)"
    ),
    ticket_kind!(
        "tickets.escalation_changed",
        "an escalation was routed, progressed or resolved: the customer is kept informed (T-8)"
    ),
    Kind {
        name: "customers.import_done",
        description: "an import finished: new, unassigned customers of a region (one message per region, C-3)",
        variables: &[
            "recipient_name",
            "import_id",
            "file_name",
            "region",
            "accepted_in_region",
            "rows",
            "accepted",
            "rejected",
            "duplicates",
        ],
    },
    customer_kind!(
        "customers.service_overdue",
        "a signed customer's service plan lags: visits behind the tier's quota or the service report overdue (C-8)",
        []
    ),
    customer_kind!(
        "customers.next_contact_overdue",
        "the customer's next contact date has passed with no contact (C-6, N-5)",
        ["next_contact_date"]
    ),
];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}
