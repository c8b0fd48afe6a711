//! Conversions between protobuf well-known / common types and the time crate.

use crm_proto::common::v1 as common;
use time::{Date, Month, OffsetDateTime};

/// A timestamp as `google.protobuf.Timestamp`.
pub fn timestamp(t: OffsetDateTime) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.unix_timestamp(),
        nanos: t.nanosecond() as i32,
    }
}

/// A `google.protobuf.Timestamp` as a time, or a description of what is wrong with it.
pub fn from_timestamp(t: &prost_types::Timestamp) -> Result<OffsetDateTime, String> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err("nanos must be between 0 and 999,999,999".into());
    }
    OffsetDateTime::from_unix_timestamp(t.seconds)
        .map(|at| at + time::Duration::nanoseconds(i64::from(t.nanos)))
        .map_err(|_| "is out of range".into())
}

/// A date as `crm.common.v1.Date`.
pub fn date(d: Date) -> common::Date {
    common::Date {
        year: d.year(),
        month: i32::from(u8::from(d.month())),
        day: i32::from(d.day()),
    }
}

/// A `crm.common.v1.Date` as a date, or a description of what is wrong with it.
pub fn from_date(d: &common::Date) -> Result<Date, String> {
    if !(1..=9999).contains(&d.year) {
        return Err("year must be between 1 and 9999".into());
    }
    let month = u8::try_from(d.month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| "month must be between 1 and 12".to_string())?;
    let day = u8::try_from(d.day).map_err(|_| "day is out of range".to_string())?;
    Date::from_calendar_date(d.year, month, day).map_err(|_| "is not a valid calendar date".into())
}

/// Who did something and when, as `crm.common.v1.AuditStamp`.
pub fn stamp(time: OffsetDateTime, actor: &str) -> common::AuditStamp {
    common::AuditStamp {
        time: Some(timestamp(time)),
        actor: actor.to_string(),
    }
}

/// Parses a resource id (a UUID): what is wrong with it, as a field violation's description.
pub fn parse_id(value: &str) -> Result<uuid::Uuid, String> {
    if value.is_empty() {
        return Err("is required".into());
    }
    uuid::Uuid::parse_str(value).map_err(|_| "is not a valid id".into())
}

/// Parses the resource id in `field`: `INVALID_ARGUMENT` naming the field when it is missing or
/// not an id. Every service's adapter reads ids with it.
pub fn id(field: &str, value: &str) -> Result<uuid::Uuid, crate::Error> {
    parse_id(value).map_err(|e| crate::Error::invalid(field, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn dates_round_trip_and_bad_ones_fail() {
        assert_eq!(
            from_date(&date(date!(2026 - 02 - 28))).unwrap(),
            date!(2026 - 02 - 28)
        );
        assert!(
            from_date(&common::Date {
                year: 2026,
                month: 2,
                day: 30
            })
            .is_err()
        );
        assert!(
            from_date(&common::Date {
                year: 2026,
                month: 13,
                day: 1
            })
            .is_err()
        );
    }

    #[test]
    fn timestamps_round_trip() {
        let at = datetime!(2026-03-01 10:00:00.123456 UTC);
        assert_eq!(from_timestamp(&timestamp(at)).unwrap(), at);
    }
}
