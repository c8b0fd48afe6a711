//! The one rule for free text, for every field of every service (issue 14): no NUL and no
//! control characters (a multi-line field allows newline, carriage return and tab) and a length
//! limit in characters. A field that breaks it is `INVALID_ARGUMENT` naming the field, before
//! anything is written. Phone numbers have their own type, [`crate::phone::Phone`].

use crate::Violations;

/// Whether a field holds one line or several.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// A name, an id, a number: no line breaks, no tabs.
    One,
    /// A description, a note, a template: newlines and tabs allowed.
    Many,
}

/// What is wrong with `value` as text of at most `max` characters, if anything.
pub fn problem(value: &str, max: usize, lines: Lines) -> Option<String> {
    if value.contains('\0') {
        return Some("must not contain a NUL character".into());
    }
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Some(match lines {
            Lines::One => "must not contain control characters or line breaks".into(),
            Lines::Many => "must not contain control characters".into(),
        });
    }
    if value.chars().count() > max {
        return Some(format!("must be at most {max} characters"));
    }
    None
}

/// Checks an optional text field; records a violation under `field`.
pub fn check(v: &mut Violations, field: &str, value: &str, max: usize, lines: Lines) {
    if let Some(p) = problem(value, max, lines) {
        v.add(field, p);
    }
}

/// Parses an optional field with `parse` (a validated type's constructor): `None` when blank
/// or invalid, recording the violation under `field` when invalid.
pub fn optional<T>(
    v: &mut Violations,
    field: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Option<T> {
    if value.trim().is_empty() {
        return None;
    }
    match parse(value) {
        Ok(parsed) => Some(parsed),
        Err(p) => {
            v.add(field, p);
            None
        }
    }
}

/// Checks a required text field (not blank).
pub fn require(v: &mut Violations, field: &str, value: &str, max: usize, lines: Lines) {
    if value.trim().is_empty() {
        v.add(field, "is required");
    } else {
        check(v, field, value, max, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_control_characters_are_refused_newlines_only_where_allowed() {
        assert!(problem("a\0b", 10, Lines::Many).unwrap().contains("NUL"));
        assert!(problem("bell\u{7}", 10, Lines::Many).is_some());
        assert!(problem("two\nlines", 20, Lines::One).is_some());
        assert!(problem("two\r\nlines\tand tab", 20, Lines::Many).is_none());
        assert!(problem("\u{1b}[31m", 20, Lines::One).is_some(), "escape");
        assert!(
            problem("精工机械有限公司", 8, Lines::One).is_none(),
            "characters, not bytes"
        );
        assert!(problem("精工机械有限公司!", 8, Lines::One).is_some());
    }
}
