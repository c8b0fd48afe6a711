//! The complaints service's clocks against the real Postgres and Redis, with a clock the test
//! moves: the committed deadline's breach is recorded once and published urgently, never
//! for a complaint resolved in time; the plan's approval has its own clock; a moved deadline
//! is audited and re-armed; the resolution clock pauses while the customer decides.

use std::time::Duration;

use crm_kit::{
    CancellationToken, Clock,
    auth::Security,
    testing::{self, Bearer, TestCaller},
};
use crm_proto::complaints::v1::{
    self as pb, ComplaintChannel, ComplaintKind, ComplaintTransition as T, Deadline,
    complaint_service_client::ComplaintServiceClient,
};
use time::{OffsetDateTime, macros::datetime};
use tonic::{Code, service::interceptor::InterceptedService, transport::Channel};

type Client = ComplaintServiceClient<InterceptedService<Channel, Bearer>>;

fn rid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn ts(t: OffsetDateTime) -> Option<prost_types::Timestamp> {
    Some(crm_kit::convert::timestamp(t))
}

/// The complaints server on the test's own database, with a clock the test moves (Monday
/// 2026-11-23 09:00 in China).
struct App {
    settings: crm_kit::Settings,
    clock: Clock,
    pool: sqlx::PgPool,
    channel: Channel,
    _stop: testing::StopOnDrop,
}

impl App {
    async fn start() -> Self {
        let mut env = testing::test_env().await;
        env.settings.timers.poll_ms = 20;
        crm_complaints::migrate(&env.settings)
            .await
            .expect("migrate");
        let clock = Clock::manual(datetime!(2026-11-23 01:00 UTC));
        let stop = CancellationToken::new();
        let security = Security::start(&env.settings.auth, &env.settings.redis, stop.clone())
            .expect("security");
        let app = crm_complaints::Application::build(&env.settings, clock.clone(), security)
            .await
            .expect("build");
        let pool = app.complaints().pool().clone();
        let channel = testing::serve(app, &stop).await;
        Self {
            settings: env.settings,
            clock,
            pool,
            channel,
            _stop: testing::StopOnDrop(stop),
        }
    }

    fn client(&self, subject: &str, roles: &[&str]) -> Client {
        ComplaintServiceClient::with_interceptor(
            self.channel.clone(),
            testing::bearer_as(
                &self.settings,
                &TestCaller {
                    subject,
                    roles,
                    ..Default::default()
                },
            ),
        )
    }

    /// A product complaint committed to be processed by `due`.
    async fn complaint(&self, client: &mut Client, due: OffsetDateTime) -> pb::Complaint {
        client
            .create_complaint(pb::CreateComplaintRequest {
                request_id: rid(),
                complaint: Some(pb::Complaint {
                    kind: ComplaintKind::Product as i32,
                    channel: ComplaintChannel::Hotline as i32,
                    customer_id: rid(),
                    contact_name: "王晓明".into(),
                    contact_phone: "+86 138 0013 8000".into(),
                    contact_language: "zh".into(),
                    content: "新机三天两次死机".into(),
                    apology: "电话中致歉".into(),
                    committed_due: ts(due),
                    ..Default::default()
                }),
            })
            .await
            .expect("a complaint")
            .into_inner()
            .complaint
            .unwrap()
    }

    async fn breaches(&self, id: &str, deadline: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM complaint_breaches WHERE complaint_id = $1::uuid AND deadline = $2",
        )
        .bind(id)
        .bind(deadline)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    /// How many events of `event_type` were published about `id`.
    async fn events(&self, event_type: &str, id: &str) -> usize {
        use prost::Message;
        let envelopes: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT envelope FROM outbox WHERE aggregate = $1")
                .bind(format!("complaints/{id}"))
                .fetch_all(&self.pool)
                .await
                .unwrap();
        envelopes
            .iter()
            .map(|e| crm_proto::events::v1::Event::decode(e.as_slice()).unwrap())
            .filter(|e| e.r#type == event_type)
            .count()
    }

    /// Waits until every timer due by the test's clock has fired (or was cancelled).
    async fn settled(&self) {
        let now = self.clock.now();
        testing::wait_until(
            "the due timers fired",
            Duration::from_secs(15),
            || async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM timers WHERE state = 'scheduled' AND due_time <= $1",
                )
                .bind(now)
                .fetch_one(&self.pool)
                .await
                .unwrap()
                    == 0
            },
        )
        .await;
    }

    /// Waits until `id` has `n` breaches of `deadline`.
    async fn until_breached(&self, id: &str, deadline: &str, n: i64) {
        testing::wait_until(
            &format!("{n} {deadline} breach(es) of {id}"),
            Duration::from_secs(15),
            || async move { self.breaches(id, deadline).await == n },
        )
        .await;
    }
}

async fn step(
    client: &mut Client,
    id: &str,
    transition: T,
    edit: impl FnOnce(&mut pb::TransitionComplaintRequest),
) -> Result<pb::TransitionComplaintResponse, tonic::Status> {
    let mut r = pb::TransitionComplaintRequest {
        request_id: rid(),
        id: id.into(),
        transition: transition as i32,
        ..Default::default()
    };
    edit(&mut r);
    client.transition_complaint(r).await.map(|r| r.into_inner())
}

/// Takes `id` from intake to the customer's confirmation.
async fn resolve(officer: &mut Client, member: &mut Client, lead: &mut Client, id: &str) {
    step(officer, id, T::Judge, |r| {
        r.policy_judgement = "保修期内，属产品质量问题".into();
        r.policy_explanation = "已向客户解释保修政策".into();
    })
    .await
    .unwrap();
    step(officer, id, T::RecordFindings, |r| {
        r.cause = "主板批次缺陷".into();
        r.department = "product".into();
    })
    .await
    .unwrap();
    step(member, id, T::SubmitPlan, |r| r.plan = "更换整机".into())
        .await
        .unwrap();
    step(lead, id, T::ApprovePlan, |_| {}).await.unwrap();
    step(officer, id, T::CustomerAccepts, |_| {}).await.unwrap();
    step(member, id, T::Execute, |r| r.note = "已更换".into())
        .await
        .unwrap();
    step(officer, id, T::CustomerConfirms, |_| {})
        .await
        .unwrap();
}

#[tokio::test]
async fn a_missed_committed_deadline_is_recorded_once_and_never_for_a_resolved_complaint() {
    let app = App::start().await;
    let mut officer = app.client("officer", &["complaint_officer"]);
    let mut member = app.client("member", &["tech_center"]);
    let mut lead = app.client("lead", &["crm_lead"]);
    let now = app.clock.now();
    let late = app
        .complaint(&mut officer, now + time::Duration::hours(4))
        .await;
    let kept = app
        .complaint(&mut officer, now + time::Duration::hours(4))
        .await;
    // one is resolved in time; its clocks stop
    resolve(&mut officer, &mut member, &mut lead, &kept.id).await;

    app.clock.advance(time::Duration::hours(5));
    app.until_breached(&late.id, "COMMITTED", 1).await;
    assert_eq!(
        app.events("complaints.deadline_breached", &late.id).await,
        1
    );
    let got = officer
        .get_complaint(pb::GetComplaintRequest {
            id: late.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .complaint
        .unwrap();
    assert_eq!(got.breaches.len(), 1);
    assert_eq!(got.breaches[0].deadline, Deadline::Committed as i32);
    // the resolved one: nothing, whatever the time
    app.clock.advance(time::Duration::days(30));
    // the late one's resolution target (120 business hours) is missed too, once
    app.until_breached(&late.id, "RESOLUTION", 1).await;
    assert_eq!(app.breaches(&kept.id, "COMMITTED").await, 0);
    assert_eq!(app.breaches(&kept.id, "RESOLUTION").await, 0);
    assert_eq!(
        app.events("complaints.deadline_breached", &kept.id).await,
        0
    );
    assert_eq!(
        app.breaches(&late.id, "COMMITTED").await,
        1,
        "recorded once"
    );
}

#[tokio::test]
async fn a_moved_deadline_is_audited_and_the_old_one_no_longer_fires() {
    let app = App::start().await;
    let mut officer = app.client("officer", &["complaint_officer"]);
    let now = app.clock.now();
    let c = app
        .complaint(&mut officer, now + time::Duration::hours(2))
        .await;
    let moved = |due: OffsetDateTime, reason: &str| pb::MoveCommittedDeadlineRequest {
        request_id: rid(),
        id: c.id.clone(),
        committed_due: ts(due),
        reason: reason.into(),
        ..Default::default()
    };
    // a reason is required, and a deadline in the future
    for bad in [
        moved(now + time::Duration::hours(8), " "),
        moved(now - time::Duration::hours(1), "客户同意延期"),
    ] {
        let e = officer.move_committed_deadline(bad).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
    }
    officer
        .move_committed_deadline(moved(
            now + time::Duration::hours(8),
            "需返厂检测，客户同意延期",
        ))
        .await
        .unwrap();
    // past the old deadline: nothing; past the new one: one breach
    app.clock.advance(time::Duration::hours(3));
    app.settled().await;
    assert_eq!(app.breaches(&c.id, "COMMITTED").await, 0);
    app.clock.advance(time::Duration::hours(6));
    app.until_breached(&c.id, "COMMITTED", 1).await;
    let history = officer
        .list_complaint_history(pb::ListComplaintHistoryRequest {
            id: c.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let move_entry = history
        .iter()
        .find(|e| e.via == "MOVE_COMMITTED_DEADLINE")
        .expect("the move is in the history");
    assert!(move_entry.reason.contains("客户同意延期"));
    assert_eq!(move_entry.changed.as_ref().unwrap().actor, "officer");
    assert_eq!(app.events("complaints.deadline_moved", &c.id).await, 1);
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE resource = $1 AND 'committed_due' = ANY(changed_fields)",
    )
    .bind(format!("complaints/{}", c.id))
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn the_plan_approval_has_its_own_clock_and_the_resolution_waits_for_the_customer() {
    let app = App::start().await;
    let mut officer = app.client("officer", &["complaint_officer"]);
    let mut member = app.client("member", &["tech_center"]);
    let mut lead = app.client("lead", &["crm_lead"]);
    let now = app.clock.now();
    let c = app
        .complaint(&mut officer, now + time::Duration::days(20))
        .await;
    step(&mut officer, &c.id, T::Judge, |r| {
        r.policy_judgement = "保修期内".into();
        r.policy_explanation = "已解释".into();
    })
    .await
    .unwrap();
    step(&mut officer, &c.id, T::RecordFindings, |r| {
        r.cause = "批次缺陷".into();
        r.department = "product".into();
    })
    .await
    .unwrap();
    let submitted = step(&mut member, &c.id, T::SubmitPlan, |r| {
        r.plan = "更换".into()
    })
    .await
    .unwrap()
    .complaint
    .unwrap();
    assert!(submitted.approval_due.is_some());
    // the CRM lead does not decide within 8 business hours: the approval's own breach
    app.clock.advance(time::Duration::days(2));
    app.until_breached(&c.id, "PLAN_APPROVAL", 1).await;
    assert_eq!(app.breaches(&c.id, "COMMITTED").await, 0);
    let approved = step(&mut lead, &c.id, T::ApprovePlan, |_| {})
        .await
        .unwrap()
        .complaint
        .unwrap();
    assert!(
        approved.resolution_due.is_none(),
        "paused while the customer decides"
    );
    assert!(approved.approval_due.is_none());
    // a long wait for the customer's answer does not use up the resolution time
    app.clock.advance(time::Duration::days(30));
    app.settled().await;
    assert_eq!(app.breaches(&c.id, "RESOLUTION").await, 0);
    let accepted = step(&mut officer, &c.id, T::CustomerAccepts, |_| {})
        .await
        .unwrap()
        .complaint
        .unwrap();
    let resumed = accepted.resolution_due.unwrap().seconds;
    assert!(resumed > app.clock.now().unix_timestamp());
}
