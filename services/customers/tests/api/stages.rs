//! The maturity stages and their history (C-4).

use super::*;

#[tokio::test]
async fn stages_move_by_the_rules_and_keep_their_history() {
    let mut app = spawn_app().await;
    let c = app.create(sample("深圳前海智能硬件")).await;
    for stage in [
        pb::Stage::NonTarget,
        pb::Stage::Potential,
        pb::Stage::Target,
        pb::Stage::Trial,
        pb::Stage::Signed,
    ] {
        app.clock.advance(time::Duration::days(1));
        let r = change_stage(&mut app, &c.id, stage).await.unwrap();
        assert_eq!(r.customer.unwrap().stage(), stage);
    }
    for forbidden in [
        pb::Stage::Trial,
        pb::Stage::InitialContact,
        pb::Stage::Signed,
    ] {
        let status = change_stage(&mut app, &c.id, forbidden).await.unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition, "{forbidden:?}");
        assert_eq!(reason(&status), "STAGE_TRANSITION_FORBIDDEN");
    }
    let status = change_stage(&mut app, &c.id, pb::Stage::Unspecified)
        .await
        .unwrap_err();
    assert_eq!(violations(&status), ["stage"]);

    let history = app
        .client
        .list_stage_changes(pb::ListStageChangesRequest {
            customer_id: c.id.clone(),
            page: None,
        })
        .await
        .unwrap()
        .into_inner()
        .changes;
    let moves: Vec<_> = history
        .iter()
        .map(|h| (h.from_stage(), h.to_stage()))
        .collect();
    use pb::Stage::*;
    assert_eq!(
        moves,
        [
            (Unspecified, InitialContact),
            (InitialContact, NonTarget),
            (NonTarget, Potential),
            (Potential, Target),
            (Target, Trial),
            (Trial, Signed)
        ]
    );
    assert_eq!(history[5].reason, "moved to STAGE_SIGNED");
    assert_eq!(
        history[5]
            .changed
            .as_ref()
            .unwrap()
            .time
            .as_ref()
            .unwrap()
            .seconds,
        datetime!(2026-03-07 09:00 UTC).unix_timestamp()
    );
}

#[tokio::test]
async fn a_stage_change_with_a_stale_version_is_aborted() {
    let mut app = spawn_app().await;
    let c = app.create(sample("重庆山城汽车")).await;
    let status = app
        .client
        .change_customer_stage(pb::ChangeCustomerStageRequest {
            request_id: rid(),
            customer_id: c.id.clone(),
            stage: pb::Stage::Potential.into(),
            reason: "qualified".into(),
            version: c.version + 1,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Aborted);
    assert_eq!(app.count("history WHERE kind = 'stage'").await, 1);
}
