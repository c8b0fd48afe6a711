//! Visits after signing and the service policy (C-8, C-9).

use super::*;

#[tokio::test]
async fn signing_schedules_the_visits_and_the_share_done_on_time_is_reported() {
    use pb::VisitKind::{Return, Satisfaction};
    let mut app = spawn_app().await; // the clock: 2026-03-02 09:00 UTC
    let c1 = app.create(sample("签约客户一")).await;
    let mut other = sample("签约客户二");
    other.owner_id = "rep.wu".into();
    other.region = "华北".into();
    let c2 = app.create(other).await;
    for c in [&c1, &c2] {
        change_stage(&mut app, &c.id, pb::Stage::Signed)
            .await
            .unwrap();
    }
    let visits = |app: &mut App, id: String| {
        let mut client = app.client.clone();
        async move {
            client
                .list_return_visits(pb::ListReturnVisitsRequest {
                    customer_id: id,
                    page: None,
                })
                .await
                .unwrap()
                .into_inner()
                .visits
        }
    };
    let v1 = visits(&mut app, c1.id.clone()).await;
    let due: Vec<(pb::VisitKind, Date, &str)> = v1
        .iter()
        .map(|v| (v.kind(), v.due_date.unwrap(), v.owner_id.as_str()))
        .collect();
    let date = |year, month, day| Date { year, month, day };
    assert_eq!(
        due,
        [
            (Return, date(2026, 3, 9), "rep.zhang"),
            (Satisfaction, date(2026, 5, 2), "rep.zhang"),
        ]
    );
    // the results: a score in time, bad results refused, a result only once
    let record = |visit: &str, score: i32, refusal: &str| pb::RecordReturnVisitRequest {
        request_id: rid(),
        visit_id: visit.into(),
        score,
        refusal_reason: refusal.into(),
        comments: "工程师响应及时".into(),
    };
    let e = app
        .client
        .record_return_visit(record(&v1[0].id, 0, ""))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["score"]);
    let e = app
        .client
        .record_return_visit(record(&v1[0].id, 6, ""))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["score"]);
    app.clock.advance(time::Duration::days(3));
    let done = app
        .client
        .record_return_visit(record(&v1[0].id, 5, ""))
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    assert!(done.done && done.on_time);
    assert_eq!(done.score, 5);
    let e = app
        .client
        .record_return_visit(record(&v1[0].id, 4, ""))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    // the other customer's return visit is late, and refused
    app.clock.advance(time::Duration::days(7)); // 2026-03-12
    let v2 = visits(&mut app, c2.id.clone()).await;
    let late = app
        .client
        .record_return_visit(record(&v2[0].id, 0, "客户表示不需要回访"))
        .await
        .unwrap()
        .into_inner()
        .visit
        .unwrap();
    assert!(late.done && !late.on_time);
    assert_eq!(late.refusal_reason, "客户表示不需要回访");
    // the share done on time, per rep and per region: the satisfaction visits are not due yet
    let report = |group: pb::VisitReportGrouping| pb::ReportReturnVisitsRequest {
        group_by: group.into(),
        from: Some(date(2026, 3, 1)),
        to: Some(date(2026, 12, 31)),
    };
    let rows = app
        .client
        .report_return_visits(report(pb::VisitReportGrouping::Owner))
        .await
        .unwrap()
        .into_inner()
        .rows;
    let seen: Vec<(&str, i64, i64, i64, i64, f64)> = rows
        .iter()
        .map(|r| {
            (
                r.key.as_str(),
                r.due,
                r.on_time,
                r.late,
                r.open,
                r.on_time_fraction,
            )
        })
        .collect();
    assert_eq!(
        seen,
        [("rep.wu", 1, 0, 1, 0, 0.0), ("rep.zhang", 1, 1, 0, 0, 1.0)]
    );
    let regions: Vec<String> = app
        .client
        .report_return_visits(report(pb::VisitReportGrouping::Region))
        .await
        .unwrap()
        .into_inner()
        .rows
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(regions, ["华东", "华北"]);
    let e = app
        .client
        .report_return_visits(pb::ReportReturnVisitsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["group_by", "from", "to"]);
}

#[tokio::test]
async fn the_tier_policy_in_force_shows_whether_visits_and_reports_are_on_track() {
    let mut app = spawn_app().await; // 2026-03-02
    let mut vip = sample("战略客户");
    vip.reference_account = true;
    let c = app.create(vip).await;
    let log = |app: &mut App, kind: pb::CommunicationKind| {
        let mut client = app.client.clone();
        let id = c.id.clone();
        let next = app.clock.now().date() + time::Duration::days(30);
        async move {
            client
                .create_communication(pb::CreateCommunicationRequest {
                    request_id: rid(),
                    customer_id: id,
                    communication: Some(pb::Communication {
                        kind: kind.into(),
                        summary: "季度服务".into(),
                        next_contact_date: Some(Date {
                            year: next.year(),
                            month: i32::from(next.month() as u8),
                            day: i32::from(next.day()),
                        }),
                        ..Default::default()
                    }),
                })
                .await
                .unwrap();
        }
    };
    let status = |app: &mut App| {
        let mut client = app.client.clone();
        let id = c.id.clone();
        async move {
            client
                .get_service_policy(pb::GetServicePolicyRequest { customer_id: id })
                .await
                .unwrap()
                .into_inner()
                .status
                .unwrap()
        }
    };
    // VIP (C-8): 2 h response, 4 visits a year, a report every quarter, a dedicated engineer
    let s = status(&mut app).await;
    let p = s.policy.unwrap();
    assert_eq!(
        (
            p.tier(),
            p.response_minutes,
            p.visits_per_year,
            p.report_every_months,
            p.dedicated_engineer
        ),
        (pb::Tier::Vip, 120, 4, 3, true)
    );
    assert!(s.visits_on_track && s.reports_on_track);
    assert_eq!(
        s.next_report_due,
        Some(Date {
            year: 2026,
            month: 6,
            day: 2
        })
    );
    // a visit and a report in the first weeks, then half a year of nothing
    app.clock.advance(time::Duration::days(10));
    log(&mut app, pb::CommunicationKind::Visit).await;
    log(&mut app, pb::CommunicationKind::ServiceReport).await;
    app.clock.advance(time::Duration::days(173)); // 2026-09-01
    let s = status(&mut app).await;
    assert_eq!((s.visits_last_year, s.visits_due), (1, 2));
    assert!(!s.visits_on_track);
    assert_eq!(
        s.last_report_date,
        Some(Date {
            year: 2026,
            month: 3,
            day: 12
        })
    );
    assert_eq!(
        s.next_report_due,
        Some(Date {
            year: 2026,
            month: 6,
            day: 12
        })
    );
    assert!(!s.reports_on_track, "the quarterly report is overdue");
    // caught up
    log(&mut app, pb::CommunicationKind::Visit).await;
    log(&mut app, pb::CommunicationKind::ServiceReport).await;
    let s = status(&mut app).await;
    assert!(s.visits_on_track && s.reports_on_track);
    assert_eq!(
        s.next_report_due,
        Some(Date {
            year: 2026,
            month: 12,
            day: 1
        })
    );
}

#[tokio::test]
async fn a_lagging_service_plan_reminds_the_owner_once_a_month_at_most() {
    let mut app = spawn_app().await; // 2026-03-02 09:00
    let mut vip = sample("服务落后客户");
    vip.reference_account = true;
    let c = app.create(vip).await;
    change_stage(&mut app, &c.id, pb::Stage::Signed)
        .await
        .unwrap();
    let reminders = |pool: PgPool, id: String| async move {
        published(&pool)
            .await
            .into_iter()
            .filter(|(t, c)| t == "customers.service_overdue" && *c == id)
            .count()
    };
    // 100 days on: no visit (one due) and the quarterly report overdue — the owner is told
    app.clock.advance(time::Duration::days(100));
    let (pool, id) = (app.pool.clone(), c.id.clone());
    testing::wait_until("the reminder", std::time::Duration::from_secs(10), || {
        let (pool, id) = (pool.clone(), id.clone());
        async move { reminders(pool, id).await == 1 }
    })
    .await;
    // the next day's check finds it still lagging, but reminded days ago: quiet
    let runs = job_runs(&app.pool).await;
    app.clock.advance(time::Duration::days(1));
    let pool = app.pool.clone();
    testing::wait_until("the next check", std::time::Duration::from_secs(10), || {
        let pool = pool.clone();
        async move { job_runs(&pool).await >= runs + 3 }
    })
    .await;
    assert_eq!(reminders(app.pool.clone(), c.id.clone()).await, 1);
    // a month after the reminder, still lagging: told again
    app.clock.advance(time::Duration::days(30));
    let (pool, id) = (app.pool.clone(), c.id.clone());
    testing::wait_until(
        "the second reminder",
        std::time::Duration::from_secs(10),
        || {
            let (pool, id) = (pool.clone(), id.clone());
            async move { reminders(pool, id).await == 2 }
        },
    )
    .await;
}
