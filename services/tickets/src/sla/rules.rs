//! The SLA rules (T-4, T-5): which deadlines a state ends, how a deadline names its timer,
//! and the priority after a breach.

use crm_proto::tickets::v1::{self as pb, Deadline, TicketState};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
