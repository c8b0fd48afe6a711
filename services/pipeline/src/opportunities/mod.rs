//! Opportunities (P-2, P-7): opened on a customer at QUALIFICATION with the stage's default
//! probability; their name, amount, close date and probability changed with a version; moved
//! between stages — WON only with an amount and no discount awaiting approval (100 %), LOST
//! only with a reason (0 %), both final and closing on the day; every change of stage, amount, close date,
//! probability and owner in the kit's history, so a forecast can later be compared with what
//! happened; a follow-up log of next steps, the real reason the customer is not in a hurry and
//! the plan to move it.

pub mod rules;
pub(crate) mod store;

use crm_kit::{
    Error, Result, audit, auth::Principal, context::Call, convert, history,
    idempotency::RequestKey, money, text,
};
use crm_proto::{
    common::v1::PageRequest,
    pipeline::v1::{self as pb, Stage},
};
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{
    rules::{OPEN, stage_name},
    service::{FOLLOW_UP_ADDED, OPPORTUNITY_CHANGED, Pipeline, holder, not_found, publish, scope},
};
use rules::{NewOpportunity, Patch, StageMove};

/// The subject of an opportunity's history and audit.
pub(crate) fn subject(id: &str) -> String {
    format!("opportunities/{id}")
}

/// The history kind of an opportunity's changes (`via` names the field).
const CHANGES: &str = "changes";

/// One change to record: the field, before, after.
pub(crate) type Change = (&'static str, String, String);

/// Records `changes` of opportunity `id` with `reason`.
pub(crate) async fn record(
    tx: &mut PgConnection,
    id: &str,
    changes: &[Change],
    reason: &str,
    actor: &str,
    at: OffsetDateTime,
) -> Result<()> {
    let subject = subject(id);
    let rows: Vec<history::Change<'_>> = changes
        .iter()
        .map(|(field, from, to)| history::Change {
            subject: &subject,
            kind: CHANGES,
            from,
            to,
            reason,
            via: field,
            actor,
            at,
        })
        .collect();
    history::record_many(tx, &rows).await?;
    Ok(())
}

fn date_text(d: Option<&crm_proto::common::v1::Date>) -> String {
    d.map(|d| format!("{:04}-{:02}-{:02}", d.year, d.month, d.day))
        .unwrap_or_default()
}

fn amount_text(m: Option<&crm_proto::common::v1::Money>) -> String {
    m.map(money::display).unwrap_or_default()
}

impl Pipeline {
    /// `INVALID_ARGUMENT` on `field` unless `close` is today or later (an open opportunity's).
    fn check_close(&self, field: &str, close: Date) -> Result<()> {
        if close < self.today() {
            return Err(Error::invalid(
                field,
                "is in the past: an open opportunity closes today or later",
            ));
        }
        Ok(())
    }

    /// Opens `new` in `tx` (from a lead when `lead` is set); the opportunity.
    pub(crate) async fn open_opportunity(
        &self,
        tx: &mut PgConnection,
        new: NewOpportunity,
        lead: &str,
        call: &Call,
    ) -> Result<pb::Opportunity> {
        self.check_close("opportunity.expected_close_date", new.close)?;
        let now = self.clock.now();
        let actor = &call.principal.subject;
        let mut o = new.opportunity;
        if o.owner_id.is_empty() {
            o.owner_id.clone_from(actor);
        }
        if o.amount.is_none() {
            o.amount = Some(money::from_nanos("CNY", 0));
        }
        // the caller opens it in their own scope: a rep for themself, a manager in their region
        if !scope(&call.principal).permits(holder(&o.owner_id, &o.region)) {
            return Err(Error::PermissionDenied {
                permission: "opening an opportunity for another owner or region".into(),
            });
        }
        o.id = Uuid::now_v7().to_string();
        o.stage = Stage::Qualification as i32;
        if o.probability == 0 {
            o.probability = self.settings.probability(Stage::Qualification);
        }
        o.lost_reason.clear();
        o.lead_id = lead.to_string();
        o.version = 1;
        o.created = Some(convert::stamp(now, actor));
        o.updated = Some(convert::stamp(now, actor));
        store::save(tx, &o).await?;
        record(
            tx,
            &o.id,
            &[
                (
                    "stage",
                    String::new(),
                    stage_name(Stage::Qualification).into(),
                ),
                ("amount", String::new(), amount_text(o.amount.as_ref())),
                (
                    "expected_close_date",
                    String::new(),
                    date_text(o.expected_close_date.as_ref()),
                ),
                ("probability", String::new(), o.probability.to_string()),
            ],
            "opened",
            actor,
            now,
        )
        .await?;
        self.announce(tx, call, now, &o, Stage::Unspecified).await?;
        audit::record(tx, call, now, &subject(&o.id), &["created"]).await?;
        Ok(o)
    }

    async fn announce(
        &self,
        tx: &mut PgConnection,
        call: &Call,
        now: OffsetDateTime,
        o: &pb::Opportunity,
        from: Stage,
    ) -> Result<()> {
        let event = pb::OpportunityEvent {
            opportunity: Some(o.clone()),
            from_stage: from as i32,
        };
        publish(tx, call, now, OPPORTUNITY_CHANGED, &subject(&o.id), &event).await
    }

    /// Opens an opportunity.
    pub async fn create_opportunity(
        &self,
        key: RequestKey,
        new: NewOpportunity,
        call: &Call,
    ) -> Result<pb::CreateOpportunityResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let now = self.clock.now();
        let o = self.open_opportunity(&mut tx, new, "", call).await?;
        let response = pb::CreateOpportunityResponse {
            opportunity: Some(o),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Locks opportunity `id` in the caller's scope at `version` (0: any).
    pub(crate) async fn lock_opportunity(
        &self,
        tx: &mut PgConnection,
        id: Uuid,
        version: i64,
        caller: &Principal,
    ) -> Result<pb::Opportunity> {
        let scope = scope(caller);
        let o = store::get(tx, id, true)
            .await?
            .filter(|o| scope.permits(holder(&o.owner_id, &o.region)))
            .ok_or_else(|| not_found("opportunity", id))?;
        if version != 0 && version != o.version {
            return Err(Error::StaleVersion {
                kind: "opportunity",
                id: id.to_string(),
                given: version,
                current: o.version,
            });
        }
        Ok(o)
    }

    /// One opportunity in the caller's scope.
    pub async fn get_opportunity(&self, id: Uuid, caller: &Principal) -> Result<pb::Opportunity> {
        let mut conn = self.pool.acquire().await?;
        let scope = scope(caller);
        store::get(&mut conn, id, false)
            .await?
            .filter(|o| scope.permits(holder(&o.owner_id, &o.region)))
            .ok_or_else(|| not_found("opportunity", id))
    }

    /// Opportunities in the caller's scope by expected close date.
    pub async fn list_opportunities(
        &self,
        r: &pb::ListOpportunitiesRequest,
        caller: &Principal,
    ) -> Result<pb::ListOpportunitiesResponse> {
        let mut stages = Vec::new();
        for (i, s) in r.stages.iter().enumerate() {
            match Stage::try_from(*s) {
                Ok(Stage::Unspecified) | Err(_) => {
                    return Err(Error::invalid(format!("stages[{i}]"), "is not a stage"));
                }
                Ok(s) => stages.push(stage_name(s).to_string()),
            }
        }
        if stages.is_empty() {
            stages = OPEN.iter().map(|s| stage_name(*s).to_string()).collect();
        }
        let filter = format!("{}|{}", stages.join(","), r.owner_id);
        let page = self.pager.read::<(i32, Uuid)>(r.page.as_ref(), &filter)?;
        let after = page
            .after
            .and_then(|(julian, id)| Date::from_julian_day(julian).ok().map(|d| (d, id)));
        let mut conn = self.pool.acquire().await?;
        let owner = (!r.owner_id.is_empty()).then_some(r.owner_id.as_str());
        let mut opportunities = store::list(
            &mut conn,
            &scope(caller),
            &stages,
            owner,
            after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut opportunities, &filter, |o| {
            let d = o
                .expected_close_date
                .as_ref()
                .and_then(|d| convert::from_date(d).ok())
                .unwrap_or(Date::MIN);
            (
                d.to_julian_day(),
                Uuid::parse_str(&o.id).unwrap_or_default(),
            )
        });
        Ok(pb::ListOpportunitiesResponse {
            opportunities,
            page: Some(next),
        })
    }

    /// Changes an open opportunity's fields.
    pub async fn update_opportunity(
        &self,
        key: RequestKey,
        patch: Patch,
        call: &Call,
    ) -> Result<pb::UpdateOpportunityResponse> {
        if let Some(close) = patch.close {
            self.check_close("opportunity.expected_close_date", close)?;
        }
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut o = self
            .lock_opportunity(&mut tx, patch.id, patch.version, &call.principal)
            .await?;
        let stage = Stage::try_from(o.stage).unwrap_or_default();
        if rules::closed(stage) {
            return Err(Error::precondition(
                "OPPORTUNITY_CLOSED",
                format!(
                    "the opportunity is {}: it no longer changes",
                    stage.as_str_name()
                ),
            ));
        }
        let now = self.clock.now();
        let mut changes: Vec<Change> = Vec::new();
        let v = &patch.values;
        for field in &patch.mask {
            match field.as_str() {
                "name" => o.name = v.name.trim().to_string(),
                "amount" => {
                    let before = amount_text(o.amount.as_ref());
                    o.amount.clone_from(&v.amount);
                    changes.push(("amount", before, amount_text(o.amount.as_ref())));
                }
                "expected_close_date" => {
                    let before = date_text(o.expected_close_date.as_ref());
                    o.expected_close_date.clone_from(&v.expected_close_date);
                    changes.push((
                        "expected_close_date",
                        before,
                        date_text(o.expected_close_date.as_ref()),
                    ));
                }
                "probability" => {
                    if !(1..=99).contains(&v.probability) {
                        return Err(Error::invalid(
                            "opportunity.probability",
                            "an open opportunity's probability is 1 … 99",
                        ));
                    }
                    changes.push((
                        "probability",
                        o.probability.to_string(),
                        v.probability.to_string(),
                    ));
                    o.probability = v.probability;
                }
                _ => {}
            }
        }
        changes.retain(|(_, from, to)| from != to);
        o.version += 1;
        o.updated = Some(convert::stamp(now, &call.principal.subject));
        store::save(&mut tx, &o).await?;
        record(
            &mut tx,
            &o.id,
            &changes,
            &patch.reason,
            &call.principal.subject,
            now,
        )
        .await?;
        self.announce(&mut tx, call, now, &o, Stage::Unspecified)
            .await?;
        let fields: Vec<&str> = patch.mask.iter().map(String::as_str).collect();
        audit::record(&mut tx, call, now, &subject(&o.id), &fields).await?;
        let response = pb::UpdateOpportunityResponse {
            opportunity: Some(o),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// Moves an opportunity to another stage.
    pub async fn move_stage(
        &self,
        key: RequestKey,
        m: StageMove,
        call: &Call,
    ) -> Result<pb::MoveOpportunityStageResponse> {
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        let mut o = self
            .lock_opportunity(&mut tx, m.id, m.version, &call.principal)
            .await?;
        let from = Stage::try_from(o.stage).unwrap_or_default();
        rules::may_move(from, m.stage)?;
        if m.stage == Stage::Won {
            let amount = o.amount.as_ref().map_or(0, money::to_nanos);
            if amount <= 0 {
                return Err(Error::precondition(
                    "NO_AMOUNT",
                    "an opportunity is won with its contract amount: set the amount first",
                ));
            }
            let waiting = crate::quotes::awaiting_approval(&mut tx, m.id).await?;
            if waiting > 0 {
                return Err(Error::precondition(
                    "DISCOUNT_NOT_APPROVED",
                    format!(
                        "{waiting} quote(s) carry a discount above the limit that is not approved"
                    ),
                ));
            }
        }
        let now = self.clock.now();
        let probability = match m.stage {
            Stage::Won | Stage::Lost => self.settings.probability(m.stage),
            open if m.probability == 0 => self.settings.probability(open),
            _ => m.probability,
        };
        let mut changes: Vec<Change> =
            vec![("stage", stage_name(from).into(), stage_name(m.stage).into())];
        if probability != o.probability {
            changes.push((
                "probability",
                o.probability.to_string(),
                probability.to_string(),
            ));
        }
        if rules::closed(m.stage) {
            // a won or lost opportunity closes today: the forecast is later compared with it
            let today = Some(convert::date(self.today()));
            if today != o.expected_close_date {
                changes.push((
                    "expected_close_date",
                    date_text(o.expected_close_date.as_ref()),
                    date_text(today.as_ref()),
                ));
                o.expected_close_date = today;
            }
        }
        o.stage = m.stage as i32;
        o.probability = probability;
        if m.stage == Stage::Lost {
            o.lost_reason.clone_from(&m.reason);
        }
        o.version += 1;
        o.updated = Some(convert::stamp(now, &call.principal.subject));
        store::save(&mut tx, &o).await?;
        record(
            &mut tx,
            &o.id,
            &changes,
            &m.reason,
            &call.principal.subject,
            now,
        )
        .await?;
        self.announce(&mut tx, call, now, &o, from).await?;
        audit::record(
            &mut tx,
            call,
            now,
            &subject(&o.id),
            &["stage", "probability"],
        )
        .await?;
        let response = pb::MoveOpportunityStageResponse {
            opportunity: Some(o),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// An opportunity's recorded changes, oldest first.
    pub async fn opportunity_history(
        &self,
        id: Uuid,
        page: Option<&PageRequest>,
        caller: &Principal,
    ) -> Result<pb::ListOpportunityHistoryResponse> {
        let filter = format!("opportunity_history/{id}");
        let page = self.pager.read::<Uuid>(page, &filter)?;
        self.get_opportunity(id, caller).await?;
        let mut conn = self.pool.acquire().await?;
        let mut entries = history::page(
            &mut conn,
            &subject(&id.to_string()),
            CHANGES,
            page.after,
            page.limit(),
        )
        .await?;
        let next = self.pager.finish(&page, &mut entries, &filter, |e| e.id);
        Ok(pb::ListOpportunityHistoryResponse {
            changes: entries
                .into_iter()
                .map(|e| pb::OpportunityChange {
                    field: e.via,
                    from_value: e.from_value,
                    to_value: e.to_value,
                    reason: e.reason,
                    changed: Some(convert::stamp(e.change_time, &e.actor)),
                })
                .collect(),
            page: Some(next),
        })
    }

    /// Adds to an opportunity's follow-up log.
    pub async fn add_follow_up(
        &self,
        key: RequestKey,
        r: &pb::AddFollowUpRequest,
        call: &Call,
    ) -> Result<pb::AddFollowUpResponse> {
        let mut v = crm_kit::Violations::new();
        let id = v.check("opportunity_id", convert::parse_id(&r.opportunity_id));
        let f = r.follow_up.clone().unwrap_or_default();
        text::require(
            &mut v,
            "follow_up.next_step",
            &f.next_step,
            1000,
            text::Lines::Many,
        );
        for (field, value) in [
            ("follow_up.not_in_hurry_reason", &f.not_in_hurry_reason),
            ("follow_up.plan", &f.plan),
        ] {
            text::check(&mut v, field, value, 2000, text::Lines::Many);
        }
        v.finish()?;
        let id = id.unwrap_or_default();
        let mut tx = crm_kit::begin_write!(key, &self.pool);
        self.lock_opportunity(&mut tx, id, 0, &call.principal)
            .await?;
        let now = self.clock.now();
        let trimmed = pb::FollowUp {
            next_step: f.next_step.trim().into(),
            not_in_hurry_reason: f.not_in_hurry_reason.trim().into(),
            plan: f.plan.trim().into(),
            ..Default::default()
        };
        let follow_up =
            store::insert_follow_up(&mut tx, id, &trimmed, now, &call.principal.subject).await?;
        let event = pb::FollowUpEvent {
            opportunity_id: id.to_string(),
            follow_up: Some(follow_up.clone()),
        };
        publish(
            &mut tx,
            call,
            now,
            FOLLOW_UP_ADDED,
            &subject(&id.to_string()),
            &event,
        )
        .await?;
        audit::record(
            &mut tx,
            call,
            now,
            &subject(&id.to_string()),
            &["follow_up"],
        )
        .await?;
        let response = pb::AddFollowUpResponse {
            follow_up: Some(follow_up),
        };
        key.finish(tx, &response, now).await?;
        Ok(response)
    }

    /// An opportunity's follow-up log, oldest first.
    pub async fn list_follow_ups(
        &self,
        r: &pb::ListFollowUpsRequest,
        caller: &Principal,
    ) -> Result<pb::ListFollowUpsResponse> {
        let id = convert::id("opportunity_id", &r.opportunity_id)?;
        let filter = format!("follow_ups/{id}");
        let page = self.pager.read::<Uuid>(r.page.as_ref(), &filter)?;
        self.get_opportunity(id, caller).await?;
        let mut conn = self.pool.acquire().await?;
        let mut follow_ups = store::follow_ups(&mut conn, id, page.after, page.limit()).await?;
        let next = self.pager.finish(&page, &mut follow_ups, &filter, |f| {
            Uuid::parse_str(&f.id).unwrap_or_default()
        });
        Ok(pb::ListFollowUpsResponse {
            follow_ups,
            page: Some(next),
        })
    }
}
