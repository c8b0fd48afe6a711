//! Tiers and a manager's override (C-7).

use super::*;

#[tokio::test]
async fn tiers_follow_their_inputs_and_a_managers_override_with_every_change_recorded() {
    use pb::Tier::{Core, Ordinary, Unspecified, Vip};
    let mut app = spawn_app().await;
    // an annual service fee of 6,000 CNY: core
    let c = app.create(sample("宁波港信息技术有限公司")).await;
    assert_eq!((c.tier(), c.computed_tier()), (Core, Core));
    // the investment passes 500,000 CNY: VIP, recomputed on the update
    let c = app
        .update_fields(
            &c,
            pb::Customer {
                investment_cny: 600_000,
                ..Default::default()
            },
            &["investment_cny"],
        )
        .await
        .unwrap();
    assert_eq!(c.tier(), Vip);
    // the tier itself cannot be written
    let e = app
        .update_fields(
            &c,
            pb::Customer {
                tier: Ordinary.into(),
                ..Default::default()
            },
            &["tier"],
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("SetTierOverride"), "{}", e.message());
    // a manager overrides it, with a reason; a reason is required, the version must match
    let mut manager = app.as_caller("manager.li", &["sales_manager"], "");
    let set = |tier: pb::Tier, reason: &str, version: i64| pb::SetTierOverrideRequest {
        request_id: rid(),
        customer_id: c.id.clone(),
        tier: tier.into(),
        reason: reason.into(),
        version,
    };
    let e = manager
        .set_tier_override(set(Ordinary, "", c.version))
        .await
        .unwrap_err();
    assert_eq!(violations(&e), ["reason"]);
    let e = manager
        .set_tier_override(set(Ordinary, "项目已结束", c.version - 1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted);
    let c = manager
        .set_tier_override(set(Ordinary, "项目已结束，投资为一次性采购", c.version))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!((c.tier(), c.computed_tier()), (Ordinary, Vip));
    let o = c.tier_override.clone().unwrap();
    assert_eq!(
        (o.tier(), o.reason.as_str()),
        (Ordinary, "项目已结束，投资为一次性采购")
    );
    assert_eq!(o.set.unwrap().actor, "manager.li");
    // while overridden, input changes move the computed tier only
    let c = app
        .update_fields(
            &c,
            pb::Customer {
                investment_cny: 100_000,
                annual_service_fee_cny: 8_000,
                ..Default::default()
            },
            &["investment_cny", "annual_service_fee_cny"],
        )
        .await
        .unwrap();
    assert_eq!((c.tier(), c.computed_tier()), (Ordinary, Core));
    // cleared: the computed tier applies again
    let c = manager
        .set_tier_override(set(Unspecified, "", c.version))
        .await
        .unwrap()
        .into_inner()
        .customer
        .unwrap();
    assert_eq!(c.tier(), Core);
    assert!(c.tier_override.is_none());
    // every change of the tier in force, with why
    assert_eq!(
        app.tier_changes(&c.id).await,
        [
            (
                Unspecified,
                Core,
                false,
                "annual service fee 6000 CNY > 5000".to_string()
            ),
            (
                Core,
                Vip,
                false,
                "investment 600000 CNY > 500000".to_string()
            ),
            (
                Vip,
                Ordinary,
                true,
                "override to TIER_ORDINARY: 项目已结束，投资为一次性采购".to_string()
            ),
            (Ordinary, Core, true, "override cleared".to_string()),
        ]
    );
    // a sales rep may not override
    let e = app
        .as_caller("rep.zhang", &["sales_rep"], "华东")
        .set_tier_override(set(Vip, "重要客户", c.version))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
}
