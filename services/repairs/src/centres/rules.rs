//! The rules of a repair centre (R-1): what a new centre must give, and the kinds that belong
//! to a partner organisation.

use crm_kit::{
    Result, Violations,
    text::{self, Lines},
};
use crm_proto::repairs::v1::{self as pb, CentreKind};

/// A validated new centre.
#[derive(Debug, Clone)]
pub struct NewCentre {
    /// The centre as it will be stored (no id yet).
    pub centre: pb::Centre,
    /// Its kind.
    pub kind: CentreKind,
}

/// Whether centres of `kind` belong to a partner organisation (partner centres and agents).
pub fn belongs_to_partner(kind: CentreKind) -> bool {
    matches!(kind, CentreKind::Partner | CentreKind::Agent)
}

/// The stored name of a kind (`HQ`, `BRANCH`, `PARTNER`, `AGENT`).
pub fn kind_name(kind: CentreKind) -> &'static str {
    kind.as_str_name().trim_start_matches("CENTRE_KIND_")
}

/// The kind stored as `name`.
pub fn kind_of(name: &str) -> CentreKind {
    CentreKind::from_str_name(&format!("CENTRE_KIND_{name}")).unwrap_or_default()
}

impl NewCentre {
    /// Checks CreateCentre's request: every field named in one `INVALID_ARGUMENT`.
    pub fn parse(r: &pb::CreateCentreRequest) -> Result<Self> {
        let mut v = Violations::new();
        let c = r.centre.clone().unwrap_or_default();
        text::require(&mut v, "centre.code", &c.code, 32, Lines::One);
        text::require(&mut v, "centre.name", &c.name, 200, Lines::One);
        text::require(&mut v, "centre.region", &c.region, 100, Lines::One);
        text::require(&mut v, "centre.address", &c.address, 500, Lines::Many);
        text::require(
            &mut v,
            "centre.opening_hours",
            &c.opening_hours,
            200,
            Lines::One,
        );
        text::check(
            &mut v,
            "centre.supervisor_id",
            &c.supervisor_id,
            100,
            Lines::One,
        );
        let kind = CentreKind::try_from(c.kind).unwrap_or_default();
        if kind == CentreKind::Unspecified {
            v.add("centre.kind", "is required: HQ, BRANCH, PARTNER or AGENT");
        } else if belongs_to_partner(kind) {
            text::require(&mut v, "centre.partner_id", &c.partner_id, 100, Lines::One);
        } else if !c.partner_id.is_empty() {
            v.add(
                "centre.partner_id",
                "must be empty: only partner centres and agents belong to a partner organisation",
            );
        }
        v.finish()?;
        Ok(Self {
            centre: pb::Centre {
                id: String::new(),
                code: c.code.trim().to_string(),
                name: c.name.trim().to_string(),
                kind: kind as i32,
                region: c.region.trim().to_string(),
                address: c.address.trim().to_string(),
                opening_hours: c.opening_hours.trim().to_string(),
                partner_id: c.partner_id.trim().to_string(),
                created: None,
                supervisor_id: c.supervisor_id.trim().to_string(),
            },
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: CentreKind, partner: &str) -> pb::CreateCentreRequest {
        pb::CreateCentreRequest {
            request_id: "r".into(),
            centre: Some(pb::Centre {
                code: "SZ-01".into(),
                name: "深圳授权维修".into(),
                kind: kind as i32,
                region: "华南".into(),
                address: "深圳市南山区".into(),
                opening_hours: "周一至周五 09:00–18:00".into(),
                partner_id: partner.into(),
                ..Default::default()
            }),
        }
    }

    fn fields(r: Result<NewCentre>) -> Vec<String> {
        match r {
            Err(crm_kit::Error::InvalidArgument(v)) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("expected INVALID_ARGUMENT, got {other:?}"),
        }
    }

    #[test]
    fn partner_centres_and_agents_name_their_organisation_and_only_they_do() {
        assert!(NewCentre::parse(&request(CentreKind::Partner, "partner.sz")).is_ok());
        assert!(NewCentre::parse(&request(CentreKind::Agent, "agent.gz")).is_ok());
        assert!(NewCentre::parse(&request(CentreKind::Hq, "")).is_ok());
        assert_eq!(
            fields(NewCentre::parse(&request(CentreKind::Partner, ""))),
            ["centre.partner_id"]
        );
        assert_eq!(
            fields(NewCentre::parse(&request(CentreKind::Branch, "x"))),
            ["centre.partner_id"]
        );
    }

    #[test]
    fn every_missing_field_is_named_at_once() {
        let r = pb::CreateCentreRequest::default();
        assert_eq!(
            fields(NewCentre::parse(&r)),
            [
                "centre.code",
                "centre.name",
                "centre.region",
                "centre.address",
                "centre.opening_hours",
                "centre.kind"
            ]
        );
    }

    #[test]
    fn kinds_round_trip_through_their_stored_names() {
        for kind in [
            CentreKind::Hq,
            CentreKind::Branch,
            CentreKind::Partner,
            CentreKind::Agent,
        ] {
            assert_eq!(kind_of(kind_name(kind)), kind);
        }
    }
}
