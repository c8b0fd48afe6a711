//! The leads' pure rules (P-1): a checked new lead and where a step takes it.

use crm_kit::{
    Error, Result, Violations,
    text::{self, Lines},
};
use crm_proto::pipeline::v1::{self as pb, LeadSource, LeadState as S, LeadTransition as T};

/// Checks CreateLead's lead; the lead with its texts trimmed.
pub fn parse_new(r: &pb::CreateLeadRequest) -> Result<pb::Lead> {
    let l = r.lead.clone().unwrap_or_default();
    let mut v = Violations::new();
    text::require(&mut v, "lead.name", &l.name, 200, Lines::One);
    text::require(
        &mut v,
        "lead.contact_name",
        &l.contact_name,
        100,
        Lines::One,
    );
    text::require(&mut v, "lead.region", &l.region, 100, Lines::One);
    crm_kit::phone::check(&mut v, "lead.contact_phone", &l.contact_phone);
    crm_kit::email::check(&mut v, "lead.contact_email", &l.contact_email);
    if l.contact_phone.trim().is_empty() && l.contact_email.trim().is_empty() {
        v.add("lead.contact_phone", "a phone or an e-mail is required");
    }
    if LeadSource::try_from(l.source).unwrap_or_default() == LeadSource::Unspecified {
        v.add(
            "lead.source",
            "must be CAMPAIGN, IMPORT, HOTLINE, PARTNER or SERVICE_FOLLOW_UP",
        );
    }
    for (field, value, max, lines) in [
        ("lead.source_ref", &l.source_ref, 200, Lines::One),
        ("lead.owner_id", &l.owner_id, 100, Lines::One),
        ("lead.interest", &l.interest, 2000, Lines::Many),
    ] {
        text::check(&mut v, field, value, max, lines);
    }
    v.finish()?;
    let t = |s: &str| s.trim().to_string();
    Ok(pb::Lead {
        name: t(&l.name),
        contact_name: t(&l.contact_name),
        contact_phone: t(&l.contact_phone),
        contact_email: t(&l.contact_email),
        source: l.source,
        source_ref: t(&l.source_ref),
        region: t(&l.region),
        owner_id: t(&l.owner_id),
        interest: t(&l.interest),
        ..Default::default()
    })
}

/// Where `transition` takes a lead in `from`, or FAILED_PRECONDITION.
pub fn next(from: S, transition: T) -> Result<S> {
    match (from, transition) {
        (S::New, T::Qualify) => Ok(S::Qualified),
        (S::New | S::Qualified, T::Disqualify) => Ok(S::Disqualified),
        _ => Err(Error::precondition(
            "TRANSITION_FORBIDDEN",
            format!(
                "{} is not allowed from {}",
                transition.as_str_name(),
                from.as_str_name()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lead_is_qualified_once_and_converted_or_disqualified_after() {
        assert_eq!(next(S::New, T::Qualify).unwrap(), S::Qualified);
        assert_eq!(next(S::Qualified, T::Disqualify).unwrap(), S::Disqualified);
        for from in [S::Qualified, S::Disqualified, S::Converted] {
            assert!(next(from, T::Qualify).is_err());
        }
        assert!(next(S::Converted, T::Disqualify).is_err());
        let e = parse_new(&pb::CreateLeadRequest::default()).unwrap_err();
        let fields: Vec<String> = match e {
            Error::InvalidArgument(v) => v.into_iter().map(|v| v.field).collect(),
            other => panic!("{other:?}"),
        };
        for f in [
            "lead.name",
            "lead.contact_name",
            "lead.region",
            "lead.source",
        ] {
            assert!(fields.contains(&f.to_string()), "{f}: {fields:?}");
        }
    }
}
