//! Complaint statistics: counts and durations by kind, responsible department and
//! outcome over the cycles received in a period, the on-time rate against the committed
//! deadline and the reopen rate — computed from the rows in one grouped query, in the
//! caller's scope, so every figure can be checked against the cases behind it.

mod store;

use crm_kit::{Error, Result, auth::Principal, convert};
use crm_proto::complaints::v1::{self as pb, ComplaintKind, Outcome};

use crate::service::{Complaints, scope};

/// A share of `part` in `whole`, 0 when there is none.
fn share(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

impl Complaints {
    /// The statistics of the cycles received in the request's period.
    pub async fn statistics(
        &self,
        r: &pb::GetComplaintStatisticsRequest,
        caller: &Principal,
    ) -> Result<pb::GetComplaintStatisticsResponse> {
        let mut v = crm_kit::Violations::new();
        let mut time = |field: &str, t: Option<&prost_types::Timestamp>| match t
            .map(convert::from_timestamp)
        {
            Some(Ok(t)) => Some(t),
            _ => {
                v.add(field, "is required");
                None
            }
        };
        let (from, to) = (time("from", r.from.as_ref()), time("to", r.to.as_ref()));
        if let (Some(f), Some(t)) = (from, to)
            && t <= f
        {
            v.add("to", "must be after from");
        }
        v.finish()?;
        let (Some(from), Some(to)) = (from, to) else {
            return Err(Error::invalid("from", "is required"));
        };
        let unit = match pb::Period::try_from(r.period) {
            Ok(pb::Period::Unspecified) => None,
            Ok(pb::Period::Day) => Some("day"),
            Ok(pb::Period::Week) => Some("week"),
            Ok(pb::Period::Month) => Some("month"),
            Err(_) => return Err(Error::invalid("period", "is not a period")),
        };
        let offset = self.calendar.offset().whole_seconds();
        let mut conn = self.pool.acquire().await?;
        let lines = store::lines(&mut conn, &scope(caller), (from, to), unit, offset).await?;
        let total: i64 = lines.iter().map(|l| l.complaints).sum();
        let confirmed: i64 = lines
            .iter()
            .filter(|l| l.outcome != "OPEN")
            .map(|l| l.complaints)
            .sum();
        let on_time: i64 = lines.iter().map(|l| l.on_time).sum();
        let followed_up: i64 = lines.iter().map(|l| l.followed_up).sum();
        let reopened: i64 = lines
            .iter()
            .filter(|l| l.outcome == "REOPENED")
            .map(|l| l.complaints)
            .sum();
        Ok(pb::GetComplaintStatisticsResponse {
            lines: lines
                .into_iter()
                .map(|l| pb::StatisticsLine {
                    period_start: Some(convert::timestamp(l.period_start)),
                    kind: ComplaintKind::from_str_name(&format!("COMPLAINT_KIND_{}", l.kind))
                        .map_or(0, |k| k as i32),
                    department: l.department,
                    outcome: Outcome::from_str_name(&format!("OUTCOME_{}", l.outcome))
                        .map_or(0, |o| o as i32),
                    complaints: l.complaints as i32,
                    on_time: l.on_time as i32,
                    mean_resolution_seconds: l.mean_resolution_seconds,
                    committed_breaches: l.committed_breaches as i32,
                })
                .collect(),
            complaints: total as i32,
            on_time_rate: share(on_time, confirmed),
            reopen_rate: share(reopened, followed_up),
        })
    }
}
