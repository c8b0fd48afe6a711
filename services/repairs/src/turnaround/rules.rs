//! The rules of turnaround: the timers' kinds, and the figures of the report.

use crm_kit::{Result, Violations, convert};
use crm_proto::repairs::v1 as pb;
use time::OffsetDateTime;

/// The timer kind of a turnaround warning.
pub const WARNING: &str = "repairs.turnaround_warning";
/// The timer kind of a turnaround breach.
pub const BREACH: &str = "repairs.turnaround_breach";

/// The on-time share: on time over on time and breached; 0 when neither.
pub fn on_time_share(on_time: i64, breached: i64) -> f64 {
    if on_time + breached == 0 {
        0.0
    } else {
        on_time as f64 / (on_time + breached) as f64
    }
}

/// Checks ReportTurnaround's period: both ends given, the end after the start.
pub fn period(r: &pb::ReportTurnaroundRequest) -> Result<(OffsetDateTime, OffsetDateTime)> {
    let mut v = Violations::new();
    let end = |v: &mut Violations, field: &str, t: Option<&prost_types::Timestamp>| match t {
        None => {
            v.add(field, "is required");
            None
        }
        Some(t) => v.check(field, convert::from_timestamp(t)),
    };
    let from = end(&mut v, "from_time", r.from_time.as_ref());
    let to = end(&mut v, "to_time", r.to_time.as_ref());
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        v.add("to_time", "must be after from_time");
    }
    v.finish()?;
    Ok((
        from.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        to.unwrap_or(OffsetDateTime::UNIX_EPOCH),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_counts_closed_on_time_against_breached() {
        assert_eq!(on_time_share(3, 1), 0.75);
        assert_eq!(on_time_share(0, 0), 0.0);
        assert_eq!(on_time_share(0, 2), 0.0);
    }

    #[test]
    fn a_period_has_two_ends_in_order() {
        let t = |s| {
            Some(prost_types::Timestamp {
                seconds: s,
                nanos: 0,
            })
        };
        let ok = pb::ReportTurnaroundRequest {
            from_time: t(100),
            to_time: t(200),
        };
        assert!(period(&ok).is_ok());
        for bad in [
            pb::ReportTurnaroundRequest {
                from_time: t(200),
                to_time: t(100),
            },
            pb::ReportTurnaroundRequest::default(),
        ] {
            assert!(period(&bad).is_err());
        }
    }
}
