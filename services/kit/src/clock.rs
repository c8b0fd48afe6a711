//! A clock the tests can control. Every timestamp a service writes comes from its [`Clock`],
//! never from the database's `now()`, so time-dependent rules are testable.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// The source of "now": the system clock, or a manual one that only moves when told.
#[derive(Clone, Debug)]
pub struct Clock {
    manual: Option<Arc<Mutex<OffsetDateTime>>>,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A manual clock standing at `at`.
    pub fn manual(at: OffsetDateTime) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(at))),
        }
    }

    /// The current time, truncated to microseconds (what Postgres stores).
    pub fn now(&self) -> OffsetDateTime {
        let now = match &self.manual {
            Some(at) => *at.lock().expect("clock lock"),
            None => OffsetDateTime::now_utc(),
        };
        now.replace_nanosecond(now.nanosecond() / 1000 * 1000)
            .expect("valid nanosecond")
    }

    /// Today's date in UTC.
    pub fn today(&self) -> time::Date {
        self.now().date()
    }

    /// Moves a manual clock forward; panics on the system clock (a test bug).
    pub fn advance(&self, by: Duration) {
        let at = self
            .manual
            .as_ref()
            .expect("advance() needs a manual clock");
        *at.lock().expect("clock lock") += by;
    }

    /// Sets a manual clock; panics on the system clock (a test bug).
    pub fn set(&self, to: OffsetDateTime) {
        let at = self.manual.as_ref().expect("set() needs a manual clock");
        *at.lock().expect("clock lock") = to;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = Clock::manual(datetime!(2026-01-01 08:00 UTC));
        let copy = clock.clone();
        assert_eq!(clock.now(), datetime!(2026-01-01 08:00 UTC));
        copy.advance(Duration::hours(2));
        assert_eq!(clock.now(), datetime!(2026-01-01 10:00 UTC));
    }
}
