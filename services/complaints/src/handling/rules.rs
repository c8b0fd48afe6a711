//! The complaint flow's pure rules (Q-2 … Q-5): which step leads where (one table, so no step
//! can be skipped), who may take each, and what each must record.

use crm_kit::{
    Error, Result, Role, Violations,
    auth::Principal,
    convert,
    text::{self, Lines},
};
use crm_proto::complaints::v1::{self as pb, ComplaintState as S, ComplaintTransition as T};
use time::OffsetDateTime;
use uuid::Uuid;

/// Where `transition` takes a complaint in `from` (`satisfied`: the follow-up's verdict), or
/// FAILED_PRECONDITION naming both.
pub fn next(from: S, transition: T, satisfied: bool) -> Result<S> {
    let to = match (from, transition) {
        (S::Received, T::Judge) => S::Investigating,
        (S::Investigating, T::RecordFindings) => S::Planning,
        (S::Planning, T::SubmitPlan) => S::AwaitingApproval,
        (S::AwaitingApproval, T::ApprovePlan) => S::PlanApproved,
        (S::AwaitingApproval, T::SendBackPlan) => S::Planning,
        (S::PlanApproved, T::CustomerAccepts) => S::Accepted,
        (S::PlanApproved, T::CustomerDeclines) => S::Planning,
        (S::Accepted, T::Execute) => S::Executed,
        (S::Executed, T::CustomerConfirms) => S::Resolved,
        (S::Resolved, T::FollowUp) if satisfied => S::Closed,
        (S::Resolved, T::FollowUp) => S::Reopened,
        _ => {
            return Err(Error::precondition(
                "TRANSITION_FORBIDDEN",
                format!(
                    "{} is not allowed from {}",
                    transition.as_str_name(),
                    from.as_str_name()
                ),
            ));
        }
    };
    Ok(to)
}

/// Who takes a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// The complaint officer (投诉专员), who talks to the customer.
    Officer,
    /// A member of the responsible department.
    Department,
    /// The CRM lead, who approves plans.
    Lead,
}

/// Who takes `transition`.
pub fn actor(transition: T) -> Actor {
    match transition {
        T::SubmitPlan | T::Execute => Actor::Department,
        T::ApprovePlan | T::SendBackPlan => Actor::Lead,
        _ => Actor::Officer,
    }
}

/// The roles of each actor besides the department's own (an admin is every actor).
fn roles(actor: Actor) -> &'static [Role] {
    match actor {
        Actor::Officer => &[Role::Admin, Role::ComplaintOfficer, Role::CrmLead],
        Actor::Lead => &[Role::Admin, Role::CrmLead],
        Actor::Department => &[Role::Admin],
    }
}

/// Whether `caller` may take `transition` on a complaint whose responsible department has its
/// members `in_department` (the caller is one of them); PERMISSION_DENIED otherwise. Approving
/// a plan its caller wrote is FAILED_PRECONDITION (the approver is never the author).
pub fn may(
    caller: &Principal,
    transition: T,
    in_department: bool,
    plan_author: &str,
) -> Result<()> {
    let who = actor(transition);
    let allowed = caller.has_any(roles(who)) || (who == Actor::Department && in_department);
    if !allowed {
        return Err(Error::PermissionDenied {
            permission: format!(
                "{} ({})",
                transition.as_str_name(),
                match who {
                    Actor::Officer => "the complaint officer",
                    Actor::Department => "the responsible department",
                    Actor::Lead => "the CRM lead",
                }
            ),
        });
    }
    if transition == T::ApprovePlan && caller.subject == plan_author {
        return Err(Error::precondition(
            "APPROVER_IS_AUTHOR",
            "a plan is approved by someone other than its author",
        ));
    }
    Ok(())
}

/// A checked TransitionComplaint.
#[derive(Debug, Clone)]
pub struct Step {
    /// The complaint.
    pub id: Uuid,
    /// The version the caller saw (0: any).
    pub version: i64,
    /// The step.
    pub transition: T,
    /// The request, texts trimmed.
    pub r: pb::TransitionComplaintRequest,
    /// FOLLOW_UP's new committed deadline, if given.
    pub new_committed_due: Option<OffsetDateTime>,
}

impl Step {
    /// Checks the request: what its transition must record, every wrong field named.
    pub fn parse(r: &pb::TransitionComplaintRequest) -> Result<Self> {
        let mut v = Violations::new();
        let id = v.check("id", convert::parse_id(&r.id));
        let transition = T::try_from(r.transition).unwrap_or_default();
        if transition == T::Unspecified {
            v.add("transition", "must name a complaint transition");
        }
        let mut r = r.clone();
        for s in [
            &mut r.note,
            &mut r.policy_judgement,
            &mut r.policy_explanation,
            &mut r.cause,
            &mut r.department,
            &mut r.plan,
        ] {
            *s = s.trim().to_string();
        }
        for (field, value, max) in [
            ("note", &r.note, 4000),
            ("policy_judgement", &r.policy_judgement, 4000),
            ("policy_explanation", &r.policy_explanation, 4000),
            ("cause", &r.cause, 4000),
            ("plan", &r.plan, 8000),
        ] {
            text::check(&mut v, field, value, max, Lines::Many);
        }
        let required: &[(&str, &str)] = match transition {
            T::Judge => &[
                (
                    "policy_judgement",
                    "the judgement against the service and warranty policy",
                ),
                (
                    "policy_explanation",
                    "how the policy was explained to the customer",
                ),
            ],
            T::RecordFindings => &[
                ("cause", "the cause found"),
                ("department", "the responsible department"),
            ],
            T::SubmitPlan => &[("plan", "the resolution plan")],
            T::SendBackPlan => &[("note", "why the plan is sent back")],
            T::CustomerDeclines => &[("note", "why the customer declined")],
            T::Execute => &[("note", "what was done")],
            _ => &[],
        };
        for (field, what) in required {
            let value = match *field {
                "policy_judgement" => &r.policy_judgement,
                "policy_explanation" => &r.policy_explanation,
                "cause" => &r.cause,
                "department" => &r.department,
                "plan" => &r.plan,
                _ => &r.note,
            };
            if value.is_empty() {
                v.add(
                    *field,
                    format!("is required for {}: {what}", transition.as_str_name()),
                );
            }
        }
        if let Some(c) = &r.compensation {
            if transition != T::SubmitPlan {
                v.add("compensation", "is part of SUBMIT_PLAN only");
            }
            text::require(&mut v, "compensation.kind", &c.kind, 100, Lines::One);
            if let Some(p) = crm_kit::money::problem(c.amount.as_ref()) {
                v.add("compensation.amount", p);
            }
        }
        if transition == T::FollowUp && !(1..=5).contains(&r.satisfaction) {
            v.add(
                "satisfaction",
                "must be 1 (very dissatisfied) … 5 (very satisfied)",
            );
        }
        let new_committed_due = match r.new_committed_due.as_ref().map(convert::from_timestamp) {
            None => None,
            Some(Ok(t)) => Some(t),
            Some(Err(e)) => {
                v.add("new_committed_due", e);
                None
            }
        };
        v.finish()?;
        Ok(Self {
            id: id.unwrap_or_default(),
            version: r.version,
            transition,
            r,
            new_committed_due,
        })
    }

    /// What the history says of the step.
    pub fn reason(&self) -> String {
        let r = &self.r;
        match self.transition {
            T::Judge => format!(
                "judged: {}; explained: {}",
                r.policy_judgement, r.policy_explanation
            ),
            T::RecordFindings => format!("cause: {}; department: {}", r.cause, r.department),
            T::SubmitPlan => match &r.compensation {
                Some(c) => {
                    let m = c.amount.clone().unwrap_or_default();
                    format!(
                        "plan: {}; compensation: {} {} {}.{:09}",
                        r.plan, c.kind, m.currency_code, m.units, m.nanos
                    )
                }
                None => format!("plan: {}", r.plan),
            },
            T::FollowUp => format!("satisfaction {}: {}", r.satisfaction, r.note),
            _ => r.note.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [T; 10] = [
        T::Judge,
        T::RecordFindings,
        T::SubmitPlan,
        T::ApprovePlan,
        T::SendBackPlan,
        T::CustomerAccepts,
        T::CustomerDeclines,
        T::Execute,
        T::CustomerConfirms,
        T::FollowUp,
    ];

    #[test]
    fn the_only_way_through_takes_every_step_in_order() {
        let path = [
            (T::Judge, S::Investigating),
            (T::RecordFindings, S::Planning),
            (T::SubmitPlan, S::AwaitingApproval),
            (T::ApprovePlan, S::PlanApproved),
            (T::CustomerAccepts, S::Accepted),
            (T::Execute, S::Executed),
            (T::CustomerConfirms, S::Resolved),
            (T::FollowUp, S::Closed),
        ];
        let mut state = S::Received;
        for (t, to) in path {
            // from each state, every step but the allowed ones is refused
            for other in ALL {
                let ok = next(state, other, true).is_ok();
                let allowed = other == t
                    || matches!(
                        (state, other),
                        (S::AwaitingApproval, T::SendBackPlan)
                            | (S::PlanApproved, T::CustomerDeclines)
                    );
                assert_eq!(ok, allowed, "{other:?} from {state:?}");
            }
            state = next(state, t, true).unwrap();
            assert_eq!(state, to);
        }
        for t in ALL {
            assert!(next(S::Closed, t, true).is_err());
            assert!(next(S::Reopened, t, true).is_err());
        }
        assert_eq!(next(S::Resolved, T::FollowUp, false).unwrap(), S::Reopened);
        // a customer's confirmation before execution is refused
        assert!(next(S::Accepted, T::CustomerConfirms, true).is_err());
        assert!(next(S::PlanApproved, T::CustomerConfirms, true).is_err());
    }

    fn caller(subject: &str, roles: &[&str]) -> Principal {
        Principal {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Principal::system(subject)
        }
    }

    #[test]
    fn plans_are_the_departments_and_approvals_the_leads_never_the_authors() {
        let officer = caller("officer", &["complaint_officer"]);
        let lead = caller("lead", &["crm_lead"]);
        let member = caller("member", &["tech_center"]);
        assert!(may(&member, T::SubmitPlan, true, "").is_ok());
        assert!(may(&officer, T::SubmitPlan, false, "").is_err());
        assert!(may(&member, T::ApprovePlan, true, "x").is_err());
        assert!(may(&lead, T::ApprovePlan, false, "member").is_ok());
        assert!(matches!(
            may(&lead, T::ApprovePlan, false, "lead"),
            Err(Error::FailedPrecondition { .. })
        ));
        assert!(may(&member, T::Judge, true, "").is_err());
        assert!(may(&officer, T::Judge, false, "").is_ok());
    }

    #[test]
    fn each_step_names_what_it_lacks() {
        let fields = |t: T, edit: fn(&mut pb::TransitionComplaintRequest)| {
            let mut r = pb::TransitionComplaintRequest {
                id: Uuid::nil().to_string(),
                transition: t as i32,
                ..Default::default()
            };
            edit(&mut r);
            match Step::parse(&r) {
                Err(Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
                Ok(_) => Vec::new(),
                Err(e) => panic!("{e:?}"),
            }
        };
        assert_eq!(
            fields(T::Judge, |_| {}),
            ["policy_judgement", "policy_explanation"]
        );
        assert_eq!(fields(T::RecordFindings, |_| {}), ["cause", "department"]);
        assert_eq!(fields(T::SendBackPlan, |_| {}), ["note"]);
        assert_eq!(fields(T::FollowUp, |_| {}), ["satisfaction"]);
        assert_eq!(
            fields(T::SubmitPlan, |r| {
                r.plan = "refund".into();
                r.compensation = Some(pb::Compensation {
                    kind: "refund".into(),
                    amount: Some(crm_proto::common::v1::Money {
                        currency_code: "CNY".into(),
                        units: -5,
                        nanos: 0,
                    }),
                });
            }),
            ["compensation.amount"]
        );
        assert_eq!(
            fields(T::SubmitPlan, |r| {
                r.plan = "voucher".into();
                r.compensation = Some(pb::Compensation {
                    kind: "voucher".into(),
                    amount: Some(crm_proto::common::v1::Money {
                        currency_code: "XXX".into(),
                        units: 5,
                        nanos: 0,
                    }),
                });
            }),
            ["compensation.amount"]
        );
        assert!(fields(T::CustomerAccepts, |_| {}).is_empty());
    }
}
