//! The visit and service-policy rules (C-8), with no I/O: a checked visit result and report
//! request, and a customer's policy in force with its progress.

use crm_kit::{Error, Violations, convert};
use crm_proto::{common::v1 as pb_common, customers::v1 as pb};
use time::Date;

use crate::rules::{add_months, known, text_lines};

/// A checked RecordReturnVisit: the visit, the score 1–5 or 0 with the refusal reason, the
/// comments.
pub fn parse_visit_result(
    r: &pb::RecordReturnVisitRequest,
) -> Result<(uuid::Uuid, i32, String, String), Error> {
    let mut v = Violations::new();
    let id = v.check(
        "visit_id",
        uuid::Uuid::parse_str(&r.visit_id).map_err(|_| "is not a valid id"),
    );
    let refusal = text_lines(&mut v, "refusal_reason", &r.refusal_reason, 0, 1000);
    let comments = text_lines(&mut v, "comments", &r.comments, 0, 2000);
    match r.score {
        1..=5 if refusal.is_empty() => {}
        1..=5 => v.add("refusal_reason", "must be empty when there is a score"),
        0 if refusal.is_empty() => v.add(
            "score",
            "is required (1 to 5), or 0 with refusal_reason saying why there is none",
        ),
        0 => {}
        _ => v.add("score", "must be 1 to 5, or 0 with refusal_reason"),
    }
    v.finish()?;
    Ok((id.expect("checked"), r.score, refusal, comments))
}

/// A checked ReportReturnVisits: grouping and the due-date range, its end at most `today`.
pub fn parse_visit_report(
    r: &pb::ReportReturnVisitsRequest,
    today: Date,
) -> Result<(pb::VisitReportGrouping, Date, Date), Error> {
    let mut v = Violations::new();
    let group: Option<pb::VisitReportGrouping> = known(&mut v, "group_by", r.group_by, true);
    let date = |v: &mut Violations, field: &str, d: Option<&pb_common::Date>| match d {
        None => {
            v.add(field, "is required");
            None
        }
        Some(d) => v.check(field, convert::from_date(d)),
    };
    let from = date(&mut v, "from", r.from.as_ref());
    let to = date(&mut v, "to", r.to.as_ref());
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        v.add("to", "must not be before from");
    }
    v.finish()?;
    Ok((
        group.expect("checked"),
        from.expect("checked"),
        to.expect("checked").min(today),
    ))
}

/// A customer's policy in force (C-8) and its progress: visits in the last year against the
/// yearly quota pro rata over its time with us (since `since`, at most a year), and the service
/// reports against their cadence (the next due a cadence after the last, or after `since`).
pub fn service_status(
    customer: &pb::Customer,
    usual_engineer: String,
    policy: crm_kit::service_policy::TierPolicy,
    since: Date,
    today: Date,
    visits_last_year: i64,
    last_report: Option<Date>,
) -> pb::ServicePolicyStatus {
    let days = (today - since).whole_days().clamp(0, 365);
    let visits_due = policy.visits_per_year * days / 365;
    let next_report = add_months(last_report.unwrap_or(since), policy.report_every_months);
    pb::ServicePolicyStatus {
        customer_id: customer.id.clone(),
        policy: Some(pb::ServicePolicy {
            tier: customer.tier,
            response_minutes: policy.response_minutes,
            resolution_hours: policy.resolution_hours,
            visits_per_year: policy.visits_per_year,
            report_every_months: policy.report_every_months,
            dedicated_engineer: policy.dedicated_engineer,
        }),
        usual_engineer_id: usual_engineer,
        visits_last_year,
        visits_due,
        visits_on_track: visits_last_year >= visits_due,
        last_report_date: last_report.map(convert::date),
        next_report_due: Some(convert::date(next_report)),
        reports_on_track: today <= next_report,
    }
}
