//! The ticket rules every capability shares, with no I/O: the settings, the lifecycle state
//! machine (T-3), each role's queue, what must be complete before a ticket is handed on, and
//! the service level by tier (T-2, C-8). Each capability's own checks are in its folder's
//! `rules.rs`.

use crm_kit::{
    Error, Role,
    service_policy::{ServicePolicies, TierPolicy},
};
use crm_proto::tickets::v1::{self as pb, ServiceMode, TicketState, Transition, Warranty};
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
}
