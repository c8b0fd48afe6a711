//! The ticket rules, with no I/O: intake checks (T-1), the lifecycle state machine (T-3), what
//! must be complete before a ticket is handed on, the service level by tier (T-2, C-8) and
//! which SLA deadlines run in which state (T-4, T-5).

use crm_kit::{
    Error, Role, Violations,
    service_policy::{ServicePolicies, TierPolicy},
    text::{self, Lines},
};
use crm_proto::tickets::v1::{
    self as pb, Deadline, ServiceMode, TicketState, Transition, Warranty,
};
use serde::Deserialize;

/// The `[tickets]` settings, with the tier policy (`[service_policy]`, C-8) they apply.
#[derive(Debug, Clone)]
pub struct TicketSettings {
    /// Minutes within which a ticket must be handed on (T-4).
    pub handoff_minutes: i64,
    /// The fraction of a deadline after which a warning fires (e.g. 0.8).
    pub warning_at: f64,
    /// Service level, and dedicated engineer, per tier.
    pub policies: ServicePolicies,
    /// How long CreateTicket waits for a customer it does not know yet to arrive from the
    /// customers service's events (one created a moment ago) before refusing the ticket.
    pub customer_wait: std::time::Duration,
    /// Business minutes after a dispatch within which the engineer is expected to contact the
    /// customer (the time the customer is told).
    pub contact_minutes: i64,
}

/// A tier's policy (response and resolution times, dedicated engineer).
pub type Sla = TierPolicy;

impl TicketSettings {
    /// The sections from the loaded configuration, checked.
    pub fn from_settings(settings: &crm_kit::Settings) -> anyhow::Result<Self> {
        #[derive(Deserialize)]
        struct Section {
            handoff_minutes: i64,
            warning_at: f64,
            customer_wait_ms: u64,
            contact_minutes: i64,
        }
        let s: Section = settings.section("tickets")?;
        if s.handoff_minutes < 1 || !(0.0..1.0).contains(&s.warning_at) {
            anyhow::bail!("tickets.handoff_minutes must be positive and warning_at in [0, 1)");
        }
        if s.contact_minutes < 1 {
            anyhow::bail!("tickets.contact_minutes must be positive");
        }
        Ok(Self {
            handoff_minutes: s.handoff_minutes,
            warning_at: s.warning_at,
            policies: ServicePolicies::from_settings(settings)?,
            customer_wait: std::time::Duration::from_millis(s.customer_wait_ms),
            contact_minutes: s.contact_minutes,
        })
    }

    /// The policy of `tier` (the ordinary one for a tier not known).
    pub fn sla(&self, tier: &str) -> Sla {
        self.policies.of(tier)
    }
}

/// The tiers, as customers' tiers are named here.
pub use crm_kit::service_policy::TIERS;

/// The states in which a ticket is open (in some queue).
pub const OPEN: &[TicketState] = &[
    TicketState::New,
    TicketState::WithHotlineEngineer,
    TicketState::Dispatched,
    TicketState::Accepted,
    TicketState::InProgress,
    TicketState::WaitingForCustomer,
    TicketState::Resolved,
    TicketState::SolvedByPhone,
];

/// Where `transition` takes a ticket in `from`, or FAILED_PRECONDITION.
pub fn next_state(from: TicketState, transition: Transition) -> Result<TicketState, Error> {
    use TicketState as S;
    use Transition as T;
    let to = match (from, transition) {
        (S::New, T::SolveByPhone) => S::SolvedByPhone,
        (S::New, T::HandToHotlineEngineer) => S::WithHotlineEngineer,
        (S::New | S::WithHotlineEngineer, T::Dispatch) => S::Dispatched,
        (S::Dispatched, T::Accept) => S::Accepted,
        (S::Accepted, T::StartWork) => S::InProgress,
        (S::InProgress, T::WaitForCustomer) => S::WaitingForCustomer,
        (S::WaitingForCustomer, T::Resume) => S::InProgress,
        (S::InProgress, T::Resolve) => S::Resolved,
        (S::InProgress, T::RecordUnfinishedVisit | T::RecordArrival) => S::InProgress,
        (S::Resolved | S::SolvedByPhone, T::Close) => S::Closed,
        _ => {
            return Err(Error::precondition(
                "TRANSITION_FORBIDDEN",
                format!(
                    "{} is not allowed from {}",
                    transition.as_str_name(),
                    from.as_str_name()
                ),
            ));
        }
    };
    Ok(to)
}

/// Whether `transition` hands the ticket on (and so needs complete information, T-1).
pub fn hands_on(transition: Transition) -> bool {
    matches!(
        transition,
        Transition::HandToHotlineEngineer | Transition::Dispatch
    )
}

/// The states in which a ticket is the assigned engineer's work: they count as the engineer's
/// load when dispatching by load.
pub const WORKING: &[TicketState] = &[
    TicketState::Dispatched,
    TicketState::Accepted,
    TicketState::InProgress,
    TicketState::WaitingForCustomer,
];

/// The engineer's own steps: only the assignee (or a supervising role) takes them.
pub fn engineer_step(transition: Transition) -> bool {
    matches!(
        transition,
        Transition::Accept
            | Transition::StartWork
            | Transition::RecordArrival
            | Transition::Resolve
            | Transition::RecordUnfinishedVisit
    )
}

/// Whether resolving needs the arrival recorded: the engineer goes on site or the product
/// comes to the workshop (T-6).
pub fn needs_arrival(service_mode: i32) -> bool {
    matches!(
        ServiceMode::try_from(service_mode),
        Ok(ServiceMode::OnSite | ServiceMode::CarryIn | ServiceMode::MailIn)
    )
}

/// The states of each role's own work queue (T-4, T-6): agents take new tickets, hotline
/// engineers the hand-offs to them, coordinators the hand-offs to forward and the dispatches
/// not yet accepted, engineers their assigned work. `None` for a caller whose roles have no
/// queue of their own (they see every open ticket).
pub fn role_queue(roles: &[String]) -> Option<Vec<TicketState>> {
    use TicketState as S;
    let mut out: Vec<TicketState> = Vec::new();
    for role in roles {
        let states: &[TicketState] = match Role::parse(role) {
            Some(Role::HotlineAgent) => &[S::New],
            Some(Role::HotlineEngineer) => &[S::WithHotlineEngineer],
            Some(Role::Coordinator) => &[S::WithHotlineEngineer, S::Dispatched],
            Some(Role::Engineer) => WORKING,
            _ => return None,
        };
        for s in states {
            if !out.contains(s) {
                out.push(*s);
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The required fields a ticket still lacks (T-1, T-2: paid service needs the price policy told
/// and the accepted quote).
pub fn missing(t: &pb::Ticket) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (field, empty) in [
        ("contact_name", t.contact_name.trim().is_empty()),
        ("contact_phone", t.contact_phone.trim().is_empty()),
        ("product_model", t.product_model.trim().is_empty()),
        ("serial_number", t.serial_number.trim().is_empty()),
        ("symptom", t.symptom.trim().is_empty()),
        ("warranty", t.warranty == Warranty::Unspecified as i32),
        (
            "service_mode",
            t.service_mode == ServiceMode::Unspecified as i32,
        ),
    ] {
        if empty {
            out.push(field);
        }
    }
    if t.service_mode == ServiceMode::Paid as i32 {
        if !t.price_policy_told {
            out.push("price_policy_told");
        }
        if t.accepted_quote
            .as_ref()
            .is_none_or(|m| m.units <= 0 && m.nanos <= 0)
        {
            out.push("accepted_quote");
        }
    }
    out
}

/// The deadlines that stop running when a ticket enters `to`.
pub fn deadlines_ended_by(to: TicketState) -> &'static [Deadline] {
    use TicketState as S;
    match to {
        // the first response is given and the agent's hand-off done; a new hand-off runs
        S::WithHotlineEngineer => &[Deadline::Response, Deadline::Handoff],
        S::Dispatched => &[Deadline::Response, Deadline::Handoff],
        S::SolvedByPhone => &[Deadline::Response, Deadline::Handoff, Deadline::Resolution],
        S::WaitingForCustomer | S::Resolved | S::Closed => &[Deadline::Resolution],
        _ => &[],
    }
}

/// The timer kind of a deadline, and of its warning.
pub fn timer_kind(deadline: Deadline, warning: bool) -> &'static str {
    match (deadline, warning) {
        (Deadline::Response, false) => "tickets.response",
        (Deadline::Response, true) => "tickets.response.warning",
        (Deadline::Handoff, false) => "tickets.handoff",
        (Deadline::Handoff, true) => "tickets.handoff.warning",
        (Deadline::Resolution, false) => "tickets.resolution",
        (Deadline::Resolution, true) => "tickets.resolution.warning",
        (Deadline::Escalation, false) => "tickets.escalation",
        (Deadline::Escalation, true) => "tickets.escalation.warning",
        (Deadline::Unspecified, _) => "tickets.unspecified",
    }
}

/// The deadline and warning flag of a timer kind.
pub fn parse_timer_kind(kind: &str) -> Option<(Deadline, bool)> {
    [
        Deadline::Response,
        Deadline::Handoff,
        Deadline::Resolution,
        Deadline::Escalation,
    ]
    .into_iter()
    .flat_map(|d| [(d, false), (d, true)])
    .find(|(d, w)| timer_kind(*d, *w) == kind)
}

/// The priority after a breach: one step up, at most URGENT.
pub fn raised(p: i32) -> pb::Priority {
    match pb::Priority::try_from(p).unwrap_or(pb::Priority::Normal) {
        pb::Priority::Unspecified | pb::Priority::Normal => pb::Priority::High,
        pb::Priority::High | pb::Priority::Urgent => pb::Priority::Urgent,
    }
}

/// A checked CreateTicket.
pub fn parse_new(r: &pb::CreateTicketRequest) -> Result<pb::Ticket, Error> {
    let t = r.ticket.clone().unwrap_or_default();
    let mut v = Violations::new();
    if pb::Channel::try_from(t.channel).is_err() || t.channel == 0 {
        v.add(
            "ticket.channel",
            "must be HOTLINE, EMAIL, WEB, PARTNER or ON_SITE",
        );
    }
    if uuid::Uuid::parse_str(&t.customer_id).is_err() {
        v.add("ticket.customer_id", "must be a customer id");
    }
    text::require(&mut v, "ticket.region", &t.region, 50, Lines::One);
    check_fields(&mut v, &t);
    v.finish()?;
    Ok(t)
}

/// Field checks shared by create and update.
pub fn check_fields(v: &mut Violations, t: &pb::Ticket) {
    for (field, value, max, lines) in [
        ("ticket.contact_name", &t.contact_name, 100, Lines::One),
        ("ticket.product_model", &t.product_model, 100, Lines::One),
        ("ticket.serial_number", &t.serial_number, 100, Lines::One),
        ("ticket.symptom", &t.symptom, 4000, Lines::Many),
    ] {
        text::check(v, field, value, max, lines);
    }
    crm_kit::phone::check(v, "ticket.contact_phone", &t.contact_phone);
    if !matches!(t.contact_language.as_str(), "" | "zh" | "en") {
        v.add("ticket.contact_language", "must be \"zh\", \"en\" or empty");
    }
    if Warranty::try_from(t.warranty).is_err() {
        v.add("ticket.warranty", "is not a warranty status");
    }
    if ServiceMode::try_from(t.service_mode).is_err() {
        v.add("ticket.service_mode", "is not a service mode");
    }
    if let Some(q) = &t.accepted_quote
        && (q.currency_code.len() != 3 || q.units < 0 || q.nanos < 0)
    {
        v.add(
            "ticket.accepted_quote",
            "must be a non-negative amount with a 3-letter currency",
        );
    }
}

/// A checked SetUsualEngineer: the customer's id.
pub fn parse_usual_engineer(r: &pb::SetUsualEngineerRequest) -> Result<uuid::Uuid, Error> {
    let mut v = Violations::new();
    let customer = uuid::Uuid::parse_str(&r.customer_id);
    if customer.is_err() {
        v.add("customer_id", "must be a customer id");
    }
    text::check(&mut v, "engineer_id", &r.engineer_id, 200, Lines::One);
    v.finish()?;
    Ok(customer.unwrap_or_default())
}

/// The intake fields UpdateTicket may change.
pub const UPDATABLE: &[&str] = &[
    "contact_name",
    "contact_phone",
    "product_model",
    "serial_number",
    "symptom",
    "warranty",
    "service_mode",
    "price_policy_told",
    "accepted_quote",
    "contact_language",
];

/// Applies the masked fields of `patch` to `current`.
pub fn apply_update(
    current: &mut pb::Ticket,
    patch: &pb::Ticket,
    mask: &[String],
) -> Result<(), Error> {
    let mut v = Violations::new();
    let fields = crm_kit::mask::Mask {
        updatable: UPDATABLE,
        elsewhere: &[],
    };
    fields.apply(&mut v, mask, |path| match path {
        "contact_name" => current.contact_name.clone_from(&patch.contact_name),
        "contact_phone" => current.contact_phone.clone_from(&patch.contact_phone),
        "product_model" => current.product_model.clone_from(&patch.product_model),
        "serial_number" => current.serial_number.clone_from(&patch.serial_number),
        "symptom" => current.symptom.clone_from(&patch.symptom),
        "warranty" => current.warranty = patch.warranty,
        "service_mode" => current.service_mode = patch.service_mode,
        "price_policy_told" => current.price_policy_told = patch.price_policy_told,
        "accepted_quote" => current.accepted_quote.clone_from(&patch.accepted_quote),
        "contact_language" => current.contact_language.clone_from(&patch.contact_language),
        _ => unreachable!("every updatable field is copied"),
    });
    check_fields(&mut v, current);
    v.finish()
}

/// A checked TransitionTicket.
#[derive(Debug, Clone)]
pub struct TransitionInput {
    /// The ticket.
    pub id: uuid::Uuid,
    /// The transition.
    pub transition: Transition,
    /// The version read (0: no check).
    pub version: i64,
    /// Why.
    pub reason: String,
    /// For dispatch.
    pub assignee_id: String,
    /// For close: 1–5, or 0 with a reason.
    pub satisfaction: i32,
    /// For resolve (finished) and an unfinished visit: the service record, checked.
    pub record: Option<pb::ServiceRecord>,
    /// For dispatch: the spare parts to prepare, checked.
    pub parts_to_prepare: Vec<pb::PartUsed>,
}

/// Checks a list of parts: numbers of 1 to 100 characters, quantities of at least 1.
fn check_parts(v: &mut Violations, field: &str, parts: &[pb::PartUsed]) {
    if parts.len() > 100 {
        v.add(field, "must list at most 100 parts");
    }
    for (i, p) in parts.iter().enumerate() {
        text::require(
            v,
            &format!("{field}[{i}].part_number"),
            &p.part_number,
            100,
            Lines::One,
        );
        if p.quantity < 1 {
            v.add(format!("{field}[{i}].quantity"), "must be at least 1");
        }
    }
}

/// Checks a service record (T-7): work done and diagnosis, parts with quantities; a finished
/// visit needs the customer's confirmation (a signature by name and time, or an image
/// reference); an unfinished one its reason and the booked second visit.
fn check_record(
    v: &mut Violations,
    r: Option<&pb::ServiceRecord>,
    finished: bool,
) -> Option<pb::ServiceRecord> {
    let Some(r) = r else {
        v.add("service_record", "is required: what the visit did");
        return None;
    };
    let f = |name: &str| format!("service_record.{name}");
    for (name, value, max) in [
        ("work_done", &r.work_done, 4000),
        ("diagnosis", &r.diagnosis, 4000),
    ] {
        text::require(v, &f(name), value, max, Lines::Many);
    }
    check_parts(v, &f("parts_used"), &r.parts_used);
    text::check(
        v,
        &f("unfinished_reason"),
        &r.unfinished_reason,
        1000,
        Lines::Many,
    );
    match r.confirmation.as_ref().and_then(|c| c.proof.as_ref()) {
        Some(pb::confirmation::Proof::Signature(s)) => {
            text::check(
                v,
                &f("confirmation.signature.name"),
                &s.name,
                100,
                Lines::One,
            );
        }
        Some(pb::confirmation::Proof::ImageRef(i)) => {
            text::check(v, &f("confirmation.image_ref"), i, 500, Lines::One);
        }
        None => {}
    }
    if finished {
        use pb::confirmation::Proof;
        match r.confirmation.as_ref().and_then(|c| c.proof.as_ref()) {
            Some(Proof::Signature(s)) if !s.name.trim().is_empty() && s.time.is_some() => {}
            Some(Proof::ImageRef(i)) if !i.trim().is_empty() && i.chars().count() <= 500 => {}
            _ => v.add(
                f("confirmation"),
                "the customer's confirmation is required: a signature (name and time) or an image reference",
            ),
        }
    } else {
        if r.unfinished_reason.trim().is_empty() {
            v.add(
                f("unfinished_reason"),
                "is required for an unfinished visit",
            );
        }
        if r.second_visit_time.is_none() {
            v.add(f("second_visit_time"), "is required: book the second visit");
        }
    }
    let mut record = r.clone();
    record.finished = finished;
    Some(record)
}

impl TransitionInput {
    /// Checks the request's shape (the state rules are checked against the stored ticket).
    pub fn parse(r: &pb::TransitionTicketRequest) -> Result<Self, Error> {
        let mut v = Violations::new();
        let id = v.check(
            "id",
            uuid::Uuid::parse_str(&r.id).map_err(|_| "is not a valid id"),
        );
        let transition = match Transition::try_from(r.transition) {
            Ok(Transition::Unspecified) | Err(_) => {
                v.add("transition", "must name a transition");
                None
            }
            Ok(t) => Some(t),
        };
        text::check(&mut v, "reason", &r.reason, 1000, Lines::Many);
        text::check(&mut v, "assignee_id", &r.assignee_id, 100, Lines::One);
        match transition {
            Some(Transition::WaitForCustomer) if r.reason.trim().is_empty() => {
                v.add("reason", "is required: what the customer is to do")
            }
            Some(Transition::Close) => {
                if !(0..=5).contains(&r.satisfaction) {
                    v.add("satisfaction", "must be 1 to 5, or 0 with a refusal reason");
                } else if r.satisfaction == 0 && r.reason.trim().is_empty() {
                    v.add(
                        "satisfaction",
                        "closing needs the satisfaction result, or a reason why there is none",
                    );
                }
            }
            _ => {}
        }
        if r.version < 0 {
            v.add("version", "must not be negative");
        }
        let record = match transition {
            Some(Transition::Resolve) => check_record(&mut v, r.service_record.as_ref(), true),
            Some(Transition::RecordUnfinishedVisit) => {
                check_record(&mut v, r.service_record.as_ref(), false)
            }
            _ => None,
        };
        if !r.parts_to_prepare.is_empty() {
            if transition == Some(Transition::Dispatch) {
                check_parts(&mut v, "parts_to_prepare", &r.parts_to_prepare);
            } else {
                v.add("parts_to_prepare", "is for DISPATCH only");
            }
        }
        v.finish()?;
        Ok(Self {
            record,
            parts_to_prepare: r.parts_to_prepare.clone(),
            id: id.expect("checked"),
            transition: transition.expect("checked"),
            version: r.version,
            reason: r.reason.trim().to_string(),
            assignee_id: r.assignee_id.trim().to_string(),
            satisfaction: r.satisfaction,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> pb::Ticket {
        pb::Ticket {
            contact_name: "王晓明".into(),
            contact_phone: "+86 138 0013 8000".into(),
            product_model: "X200".into(),
            serial_number: "SN-001".into(),
            symptom: "不开机".into(),
            warranty: Warranty::InWarranty as i32,
            service_mode: ServiceMode::OnSite as i32,
            ..Default::default()
        }
    }

    #[test]
    fn every_updatable_field_is_copied() {
        let paths: Vec<String> = UPDATABLE.iter().map(ToString::to_string).collect();
        let mut current = pb::Ticket::default();
        let patch = pb::Ticket {
            symptom: "x".into(),
            ..Default::default()
        };
        apply_update(&mut current, &patch, &paths).unwrap();
        assert_eq!(current.symptom, "x");
        assert!(apply_update(&mut current, &patch, &[]).is_err());
    }

    #[test]
    fn the_lifecycle_allows_its_paths_only() {
        use TicketState as S;
        use Transition as T;
        let path = [
            (S::New, T::HandToHotlineEngineer, S::WithHotlineEngineer),
            (S::WithHotlineEngineer, T::Dispatch, S::Dispatched),
            (S::Dispatched, T::Accept, S::Accepted),
            (S::Accepted, T::StartWork, S::InProgress),
            (S::InProgress, T::WaitForCustomer, S::WaitingForCustomer),
            (S::WaitingForCustomer, T::Resume, S::InProgress),
            (S::InProgress, T::Resolve, S::Resolved),
            (S::Resolved, T::Close, S::Closed),
            (S::New, T::SolveByPhone, S::SolvedByPhone),
            (S::SolvedByPhone, T::Close, S::Closed),
        ];
        for (from, t, to) in path {
            assert_eq!(next_state(from, t).unwrap(), to);
        }
        for (from, t) in [
            (S::New, T::Resolve),
            (S::Closed, T::Resume),
            (S::Dispatched, T::Close),
            (S::InProgress, T::Dispatch),
        ] {
            let e = next_state(from, t).unwrap_err();
            assert_eq!(e.code(), tonic::Code::FailedPrecondition);
        }
    }

    #[test]
    fn completeness_and_paid_service() {
        assert!(missing(&complete()).is_empty());
        let mut t = complete();
        t.serial_number.clear();
        t.warranty = 0;
        assert_eq!(missing(&t), vec!["serial_number", "warranty"]);
        let mut paid = complete();
        paid.service_mode = ServiceMode::Paid as i32;
        assert_eq!(missing(&paid), vec!["price_policy_told", "accepted_quote"]);
        paid.price_policy_told = true;
        paid.accepted_quote = Some(crm_proto::common::v1::Money {
            currency_code: "CNY".into(),
            units: 800,
            nanos: 0,
        });
        assert!(missing(&paid).is_empty());
    }

    #[test]
    fn timer_kinds_round_trip_and_breaches_raise_priority() {
        for d in [
            Deadline::Response,
            Deadline::Handoff,
            Deadline::Resolution,
            Deadline::Escalation,
        ] {
            for w in [false, true] {
                assert_eq!(parse_timer_kind(timer_kind(d, w)), Some((d, w)));
            }
        }
        assert_eq!(raised(pb::Priority::Normal as i32), pb::Priority::High);
        assert_eq!(raised(pb::Priority::High as i32), pb::Priority::Urgent);
        assert_eq!(raised(pb::Priority::Urgent as i32), pb::Priority::Urgent);
    }

    #[test]
    fn the_default_service_levels_follow_c8() {
        let settings = crm_kit::Settings::load(None).unwrap();
        let t = TicketSettings::from_settings(&settings).unwrap();
        assert_eq!(t.sla("vip").response_minutes, 120);
        assert_eq!(t.sla("core").response_minutes, 240);
        assert_eq!(t.sla("potential").response_minutes, 480);
        assert_eq!(t.sla("unknown"), t.sla("ordinary"));
        assert_eq!(t.handoff_minutes, 15);
    }

    #[test]
    fn each_role_has_its_queue() {
        let roles = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            role_queue(&roles(&["hotline_agent"])),
            Some(vec![TicketState::New])
        );
        assert_eq!(
            role_queue(&roles(&["coordinator", "hotline_engineer"])),
            Some(vec![
                TicketState::WithHotlineEngineer,
                TicketState::Dispatched
            ])
        );
        assert_eq!(role_queue(&roles(&["engineer"])).unwrap().len(), 4);
        assert_eq!(role_queue(&roles(&["engineer", "supervisor"])), None);
    }

    #[test]
    fn close_needs_satisfaction_or_a_refusal() {
        let r = |satisfaction, reason: &str| pb::TransitionTicketRequest {
            request_id: "r".into(),
            id: uuid::Uuid::now_v7().to_string(),
            transition: Transition::Close as i32,
            satisfaction,
            reason: reason.into(),
            ..Default::default()
        };
        assert!(TransitionInput::parse(&r(4, "")).is_ok());
        assert!(TransitionInput::parse(&r(0, "customer declined the survey")).is_ok());
        assert!(TransitionInput::parse(&r(0, "")).is_err());
        assert!(TransitionInput::parse(&r(6, "")).is_err());
    }

    #[test]
    fn a_service_record_needs_its_parts_confirmation_or_second_visit() {
        let record = pb::ServiceRecord {
            work_done: "更换主板".into(),
            diagnosis: "主板电源模块损坏".into(),
            parts_used: vec![pb::PartUsed {
                part_number: "MB-200".into(),
                quantity: 1,
            }],
            ..Default::default()
        };
        let r = |t: Transition, record: pb::ServiceRecord| pb::TransitionTicketRequest {
            request_id: "r".into(),
            id: uuid::Uuid::now_v7().to_string(),
            transition: t as i32,
            service_record: Some(record),
            ..Default::default()
        };
        let fields = |e: Error| match e {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect::<Vec<_>>(),
            other => panic!("{other}"),
        };
        assert_eq!(
            fields(TransitionInput::parse(&r(Transition::Resolve, record.clone())).unwrap_err()),
            ["service_record.confirmation"]
        );
        let mut signed = record.clone();
        signed.confirmation = Some(pb::Confirmation {
            proof: Some(pb::confirmation::Proof::Signature(pb::Signature {
                name: "王晓明".into(),
                time: Some(prost_types::Timestamp::default()),
            })),
        });
        let ok = TransitionInput::parse(&r(Transition::Resolve, signed)).unwrap();
        assert!(ok.record.unwrap().finished);
        assert_eq!(
            fields(
                TransitionInput::parse(&r(Transition::RecordUnfinishedVisit, record.clone()))
                    .unwrap_err()
            ),
            [
                "service_record.unfinished_reason",
                "service_record.second_visit_time"
            ]
        );
        let mut bad = record;
        bad.parts_used[0].quantity = 0;
        bad.work_done.clear();
        assert_eq!(
            fields(TransitionInput::parse(&r(Transition::Resolve, bad)).unwrap_err()),
            [
                "service_record.work_done",
                "service_record.parts_used[0].quantity",
                "service_record.confirmation"
            ]
        );
    }
}
