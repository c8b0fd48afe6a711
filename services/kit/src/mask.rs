//! Field masks of Update methods (AIP-134), one way and one wording for every service
//! (issue 15): a mask must name fields; a path the method does not update is refused naming the
//! updatable ones, or with the reason a field changes elsewhere (a stage through its own
//! method). The service copies each accepted path; nothing is written when any path is refused.

use crate::Violations;

/// The request field a mask error is reported under.
pub const FIELD: &str = "update_mask";

/// What an Update method's mask may name.
#[derive(Debug, Clone, Copy)]
pub struct Mask<'a> {
    /// The fields it updates.
    pub updatable: &'a [&'a str],
    /// Fields it does not update, each with where they change instead.
    pub elsewhere: &'a [(&'a str, &'a str)],
}

impl Mask<'_> {
    /// Checks `paths` and calls `set` with each accepted one, in order; records a violation
    /// under `update_mask` for an empty mask and for every refused path.
    pub fn apply(&self, v: &mut Violations, paths: &[String], mut set: impl FnMut(&str)) {
        if paths.is_empty() {
            v.add(FIELD, "is required: name the fields to change");
        }
        for path in paths {
            if let Some((_, why)) = self.elsewhere.iter().find(|(f, _)| f == path) {
                v.add(FIELD, format!("{path:?} is not updated here: {why}"));
            } else if self.updatable.contains(&path.as_str()) {
                set(path);
            } else {
                v.add(
                    FIELD,
                    format!(
                        "{path:?} is not an updatable field; updatable: {}",
                        self.updatable.join(", ")
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_unknown_and_elsewhere_paths_are_refused_with_one_wording() {
        let mask = Mask {
            updatable: &["name", "phone"],
            elsewhere: &[("stage", "it changes through ChangeStage")],
        };
        let mut v = Violations::new();
        let mut set = Vec::new();
        mask.apply(&mut v, &["name".into()], |p| set.push(p.to_string()));
        assert!(v.is_empty());
        assert_eq!(set, ["name"]);
        let mut v = Violations::new();
        mask.apply(&mut v, &[], |_| {});
        mask.apply(&mut v, &["stage".into(), "colour".into()], |_| {});
        let e = format!("{:?}", v.finish().unwrap_err());
        assert!(e.contains("is required"), "{e}");
        assert!(e.contains("ChangeStage"), "{e}");
        assert!(e.contains("updatable: name, phone"), "{e}");
    }
}
