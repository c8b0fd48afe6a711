//! The rules of the parts catalogue: what a new part must give.

use crm_kit::{
    Result, Violations,
    text::{self, Lines},
};
use crm_proto::repairs::v1 as pb;

/// The largest minimum stock a part may have.
pub const MAX_MINIMUM: i32 = 1_000_000;

/// Checks CreatePart's request; the part as it will be stored (no id yet).
pub fn parse_part(r: &pb::CreatePartRequest) -> Result<pb::Part> {
    let mut v = Violations::new();
    let p = r.part.clone().unwrap_or_default();
    text::require(&mut v, "part.part_number", &p.part_number, 64, Lines::One);
    text::require(&mut v, "part.name", &p.name, 200, Lines::One);
    if !(0..=MAX_MINIMUM).contains(&p.minimum_stock) {
        v.add(
            "part.minimum_stock",
            format!("must be between 0 and {MAX_MINIMUM}"),
        );
    }
    v.finish()?;
    Ok(pb::Part {
        id: String::new(),
        part_number: p.part_number.trim().to_string(),
        name: p.name.trim().to_string(),
        serialised: p.serialised,
        minimum_stock: p.minimum_stock,
        created: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_needs_a_number_a_name_and_a_sane_minimum() {
        let ok = pb::CreatePartRequest {
            request_id: "r".into(),
            part: Some(pb::Part {
                part_number: " PSU-500W ".into(),
                name: "电源 500W".into(),
                minimum_stock: 3,
                ..Default::default()
            }),
        };
        assert_eq!(parse_part(&ok).unwrap().part_number, "PSU-500W");
        let bad = pb::CreatePartRequest {
            request_id: "r".into(),
            part: Some(pb::Part {
                minimum_stock: -1,
                ..Default::default()
            }),
        };
        let Err(crm_kit::Error::InvalidArgument(v)) = parse_part(&bad) else {
            panic!("expected INVALID_ARGUMENT");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            ["part.part_number", "part.name", "part.minimum_stock"]
        );
    }
}
