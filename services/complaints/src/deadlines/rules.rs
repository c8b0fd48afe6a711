//! The clocks' pure rules: timer kinds, and pausing and resuming the resolution clock in
//! business time (a resumed deadline is never earlier than before the pause).

use crm_kit::calendar::Calendar;
use crm_proto::complaints::v1::Deadline;
use time::{Duration, OffsetDateTime};

/// The timer kind of `deadline`'s warning or breach, e.g. `complaints.committed.breach`.
pub fn timer_kind(deadline: Deadline, warning: bool) -> &'static str {
    match (deadline, warning) {
        (Deadline::Committed, false) => "complaints.committed.breach",
        (Deadline::Committed, true) => "complaints.committed.warning",
        (Deadline::PlanApproval, false) => "complaints.approval.breach",
        (Deadline::PlanApproval, true) => "complaints.approval.warning",
        (Deadline::Resolution | Deadline::Unspecified, false) => "complaints.resolution.breach",
        (Deadline::Resolution | Deadline::Unspecified, true) => "complaints.resolution.warning",
    }
}

/// The deadline and whether it is the warning, of a timer kind.
pub fn of_timer_kind(kind: &str) -> Option<(Deadline, bool)> {
    [
        Deadline::Committed,
        Deadline::PlanApproval,
        Deadline::Resolution,
    ]
    .into_iter()
    .flat_map(|d| [(d, false), (d, true)])
    .find(|(d, w)| timer_kind(*d, *w) == kind)
}

/// The stored name of a deadline (`COMMITTED`, …).
pub fn stored(deadline: Deadline) -> &'static str {
    crate::rules::stored(deadline.as_str_name(), "DEADLINE_")
}

/// Pausing a clock due at `due` at `now`: the business time left (none once it is due).
pub fn pause(calendar: &Calendar, due: OffsetDateTime, now: OffsetDateTime) -> Duration {
    if due <= now {
        Duration::ZERO
    } else {
        calendar.between(now, due)
    }
}

/// Resuming a clock with `left` business time at `now`: its new due time.
pub fn resume(calendar: &Calendar, left: Duration, now: OffsetDateTime) -> OffsetDateTime {
    calendar.add(now, left.max(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn calendar() -> Calendar {
        let settings = crm_kit::Settings::load_with(None, &[]).unwrap();
        Calendar::new(&settings.calendar).unwrap()
    }

    #[test]
    fn every_timer_kind_names_its_deadline() {
        for d in [
            Deadline::Committed,
            Deadline::PlanApproval,
            Deadline::Resolution,
        ] {
            for w in [false, true] {
                assert_eq!(of_timer_kind(timer_kind(d, w)), Some((d, w)));
            }
        }
        assert_eq!(of_timer_kind("repairs.turnaround_breach"), None);
    }

    /// A small deterministic generator: the same sequences on every run, so a failure can be
    /// replayed.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, below: u64) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) % below
        }
    }

    #[test]
    fn a_resumed_deadline_never_comes_earlier_than_before_the_pause() {
        // random sequences of pause / resume / reopen over weeks, weekends and nights
        // included: after every resume the deadline is no earlier than it was when paused,
        // and the business time left is kept exactly when the pause began before the due time
        let cal = calendar();
        let mut rng = Lcg(0x5eed);
        for _ in 0..500 {
            let mut now =
                datetime!(2026-11-02 00:00 UTC) + Duration::minutes(rng.next(60 * 24 * 14) as i64);
            let mut due = cal.add(now, Duration::hours(1 + rng.next(120) as i64));
            for _ in 0..20 {
                now += Duration::minutes(rng.next(60 * 24 * 3) as i64);
                match rng.next(3) {
                    0 | 1 => {
                        let paused_at = now;
                        let left = pause(&cal, due, paused_at);
                        now += Duration::minutes(rng.next(60 * 24 * 5) as i64);
                        let resumed = resume(&cal, left, now);
                        assert!(
                            resumed >= due,
                            "paused at {paused_at} with {due} due, resumed at {now}: {resumed}"
                        );
                        if paused_at < due {
                            assert_eq!(cal.between(now, resumed), left);
                        }
                        due = resumed;
                    }
                    _ => {
                        // a reopening starts a new clock from now
                        let reopened = cal.add(now, Duration::hours(1 + rng.next(120) as i64));
                        assert!(reopened >= now);
                        due = reopened;
                    }
                }
            }
        }
    }
}
