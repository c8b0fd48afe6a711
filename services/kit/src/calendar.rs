//! Business time (T-5 and the other SLAs): a working calendar from configuration — working
//! hours in a fixed UTC offset, working weekdays, holidays, and the make-up working days of
//! the Chinese holiday schedule (调休). A deadline counted in business hours skips nights,
//! weekends and holidays; the business time between two instants is what a paused clock
//! subtracts.

use std::collections::BTreeSet;

use serde::Deserialize;
use time::{Date, Duration, OffsetDateTime, Time, UtcOffset, macros::format_description};

/// The `[calendar]` settings.
#[derive(Debug, Clone, Deserialize)]
pub struct CalendarSettings {
    /// Hours east of UTC of the working day's clock (8 for China).
    pub utc_offset_hours: i8,
    /// When the working day starts, `HH:MM`.
    pub day_start: String,
    /// When it ends, `HH:MM`.
    pub day_end: String,
    /// Working weekdays, 1 = Monday … 7 = Sunday.
    pub weekdays: Vec<u8>,
    /// Days off, `YYYY-MM-DD`.
    pub holidays: Vec<String>,
    /// Weekend days worked instead (调休), `YYYY-MM-DD`.
    pub extra_workdays: Vec<String>,
}

/// A checked working calendar.
#[derive(Debug, Clone)]
pub struct Calendar {
    offset: UtcOffset,
    start: Time,
    end: Time,
    weekdays: [bool; 7],
    holidays: BTreeSet<Date>,
    extra: BTreeSet<Date>,
}

/// How far ahead a deadline may be looked for before the calendar is declared unworkable.
const MAX_DAYS: usize = 3660;

impl Calendar {
    /// Checks the settings.
    pub fn new(s: &CalendarSettings) -> anyhow::Result<Self> {
        let hm = format_description!("[hour]:[minute]");
        let ymd = format_description!("[year]-[month]-[day]");
        let offset = UtcOffset::from_hms(s.utc_offset_hours, 0, 0)
            .map_err(|e| anyhow::anyhow!("calendar.utc_offset_hours: {e}"))?;
        let start = Time::parse(&s.day_start, hm)
            .map_err(|e| anyhow::anyhow!("calendar.day_start {:?}: {e}", s.day_start))?;
        let end = Time::parse(&s.day_end, hm)
            .map_err(|e| anyhow::anyhow!("calendar.day_end {:?}: {e}", s.day_end))?;
        if end <= start {
            anyhow::bail!("calendar.day_end must be after calendar.day_start");
        }
        let mut weekdays = [false; 7];
        for d in &s.weekdays {
            if !(1..=7).contains(d) {
                anyhow::bail!("calendar.weekdays: {d} is not 1 (Monday) to 7 (Sunday)");
            }
            weekdays[usize::from(d - 1)] = true;
        }
        let dates = |field: &str, values: &[String]| -> anyhow::Result<BTreeSet<Date>> {
            values
                .iter()
                .map(|v| {
                    Date::parse(v, ymd).map_err(|e| anyhow::anyhow!("calendar.{field} {v:?}: {e}"))
                })
                .collect()
        };
        let calendar = Self {
            offset,
            start,
            end,
            weekdays,
            holidays: dates("holidays", &s.holidays)?,
            extra: dates("extra_workdays", &s.extra_workdays)?,
        };
        if !weekdays.iter().any(|w| *w) && calendar.extra.is_empty() {
            anyhow::bail!("calendar: no working days at all");
        }
        Ok(calendar)
    }

    /// The offset from UTC of the working day's clock.
    pub fn offset(&self) -> UtcOffset {
        self.offset
    }

    /// Whether `day` is worked.
    pub fn is_working_day(&self, day: Date) -> bool {
        if self.extra.contains(&day) {
            return true;
        }
        let index = usize::from(day.weekday().number_from_monday() - 1);
        self.weekdays[index] && !self.holidays.contains(&day)
    }

    fn at(&self, day: Date, t: Time) -> OffsetDateTime {
        day.with_time(t).assume_offset(self.offset)
    }

    /// The working span `[from, to)` of the working day `day`.
    fn span(&self, day: Date) -> (OffsetDateTime, OffsetDateTime) {
        (self.at(day, self.start), self.at(day, self.end))
    }

    /// The instant `business` working time after `from`.
    pub fn add(&self, from: OffsetDateTime, business: Duration) -> OffsetDateTime {
        let mut left = business.max(Duration::ZERO);
        let mut day = from.to_offset(self.offset).date();
        let mut cursor = from.to_offset(self.offset);
        for _ in 0..MAX_DAYS {
            if self.is_working_day(day) {
                let (open, close) = self.span(day);
                let from_here = cursor.max(open);
                if from_here < close {
                    let room = close - from_here;
                    if left <= room {
                        return (from_here + left).to_offset(from.offset());
                    }
                    left -= room;
                }
            }
            day = day.next_day().expect("within the calendar's range");
            cursor = self.at(day, Time::MIDNIGHT);
        }
        panic!("no deadline within {MAX_DAYS} days: the calendar has almost no working time")
    }

    /// The end of the working day `at` falls in, or, outside working time, of the next
    /// working day: by when work taken at `at` must be recorded (T-9).
    pub fn closing(&self, at: OffsetDateTime) -> OffsetDateTime {
        let local = at.to_offset(self.offset);
        let mut day = local.date();
        for _ in 0..MAX_DAYS {
            if self.is_working_day(day) {
                let (_, close) = self.span(day);
                if close > at {
                    return close.to_offset(at.offset());
                }
            }
            day = day.next_day().expect("within the calendar's range");
        }
        panic!("no working day within {MAX_DAYS} days")
    }

    /// The moment `fraction` of the way from `from` to `due`: in business time when `business`
    /// (a warning at 80 % of a deadline counted in working hours), else in wall-clock time.
    pub fn fraction(
        &self,
        from: OffsetDateTime,
        due: OffsetDateTime,
        fraction: f64,
        business: bool,
    ) -> OffsetDateTime {
        let scaled = |d: Duration| Duration::seconds_f64(d.as_seconds_f64() * fraction);
        if business {
            self.add(from, scaled(self.between(from, due)))
        } else {
            from + scaled(due - from)
        }
    }

    /// The working time between `from` and `to` (zero if `to` is not after `from`).
    pub fn between(&self, from: OffsetDateTime, to: OffsetDateTime) -> Duration {
        if to <= from {
            return Duration::ZERO;
        }
        let mut total = Duration::ZERO;
        let mut day = from.to_offset(self.offset).date();
        let last = to.to_offset(self.offset).date();
        while day <= last {
            if self.is_working_day(day) {
                let (open, close) = self.span(day);
                let a = from.max(open);
                let b = to.min(close);
                if b > a {
                    total += b - a;
                }
            }
            day = match day.next_day() {
                Some(d) => d,
                None => break,
            };
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn china() -> Calendar {
        Calendar::new(&CalendarSettings {
            utc_offset_hours: 8,
            day_start: "09:00".into(),
            day_end: "18:00".into(),
            weekdays: vec![1, 2, 3, 4, 5],
            // National Day week 2026: 1–7 October off; Saturday 10 October worked
            holidays: (1..=7).map(|d| format!("2026-10-{d:02}")).collect(),
            extra_workdays: vec!["2026-10-10".into()],
        })
        .unwrap()
    }

    #[test]
    fn a_deadline_runs_over_the_weekend() {
        let c = china();
        // Friday 2026-11-20 17:00 +08:00, four business hours: Monday 12:00
        let from = datetime!(2026-11-20 17:00 +8);
        assert_eq!(
            c.add(from, Duration::hours(4)),
            datetime!(2026-11-23 12:00 +8)
        );
        // given in UTC, answered in UTC
        let utc = datetime!(2026-11-20 09:00 UTC);
        assert_eq!(
            c.add(utc, Duration::hours(4)),
            datetime!(2026-11-23 04:00 UTC)
        );
        assert!(!c.is_working_day(time::macros::date!(2026 - 11 - 21)));
    }

    #[test]
    fn a_deadline_skips_holidays_and_counts_make_up_days() {
        let c = china();
        // Wednesday 30 September 16:00, 4 hours: 2 that day, then 1–7 October off, then
        // Thursday 8 October 09:00 + 2h
        let from = datetime!(2026-09-30 16:00 +8);
        assert_eq!(
            c.add(from, Duration::hours(4)),
            datetime!(2026-10-08 11:00 +8)
        );
        // Friday 9 October 17:00 + 3h: 1h Friday, Saturday 10 October is worked
        let from = datetime!(2026-10-09 17:00 +8);
        assert_eq!(
            c.add(from, Duration::hours(3)),
            datetime!(2026-10-10 11:00 +8)
        );
        assert!(!c.is_working_day(time::macros::date!(2026 - 10 - 05)));
        assert!(c.is_working_day(time::macros::date!(2026 - 10 - 10)));
    }

    #[test]
    fn before_opening_and_after_closing() {
        let c = china();
        assert_eq!(
            c.add(datetime!(2026-11-23 07:30 +8), Duration::minutes(30)),
            datetime!(2026-11-23 09:30 +8)
        );
        assert_eq!(
            c.add(datetime!(2026-11-23 20:00 +8), Duration::minutes(30)),
            datetime!(2026-11-24 09:30 +8)
        );
        // exactly the rest of the day ends at closing time
        assert_eq!(
            c.add(datetime!(2026-11-23 17:00 +8), Duration::hours(1)),
            datetime!(2026-11-23 18:00 +8)
        );
    }

    #[test]
    fn business_time_between_two_instants() {
        let c = china();
        // Friday 17:00 to Monday 10:00: one hour Friday, one Monday
        assert_eq!(
            c.between(
                datetime!(2026-11-20 17:00 +8),
                datetime!(2026-11-23 10:00 +8)
            ),
            Duration::hours(2)
        );
        assert_eq!(
            c.between(
                datetime!(2026-11-23 10:00 +8),
                datetime!(2026-11-20 17:00 +8)
            ),
            Duration::ZERO
        );
        // add and between agree
        let from = datetime!(2026-09-29 11:15 +8);
        let to = c.add(from, Duration::hours(13));
        assert_eq!(c.between(from, to), Duration::hours(13));
    }

    #[test]
    fn closing_time_of_the_working_day() {
        let c = china();
        assert_eq!(
            c.closing(datetime!(2026-11-23 10:00 +8)),
            datetime!(2026-11-23 18:00 +8)
        );
        // after closing on Friday: Monday's closing
        assert_eq!(
            c.closing(datetime!(2026-11-20 19:00 +8)),
            datetime!(2026-11-23 18:00 +8)
        );
    }

    #[test]
    fn the_default_calendar_loads() {
        let settings = crate::Settings::load(None).unwrap();
        let c = Calendar::new(&settings.calendar).unwrap();
        assert!(c.is_working_day(time::macros::date!(2026 - 11 - 23)));
        assert!(!c.is_working_day(time::macros::date!(2026 - 11 - 22)));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut s = CalendarSettings {
            utc_offset_hours: 8,
            day_start: "18:00".into(),
            day_end: "09:00".into(),
            weekdays: vec![1],
            holidays: vec![],
            extra_workdays: vec![],
        };
        assert!(Calendar::new(&s).is_err());
        s.day_start = "09:00".into();
        s.day_end = "18:00".into();
        s.weekdays = vec![8];
        assert!(Calendar::new(&s).is_err());
        s.weekdays = vec![1];
        s.holidays = vec!["2026-13-01".into()];
        assert!(Calendar::new(&s).is_err());
    }
}
