//! The one rule for free text and phone numbers, for every field of every service (issue 14):
//! no NUL and no control characters (a multi-line field allows newline, carriage return and
//! tab), a length limit in characters, and phone numbers of digits with the usual separators.
//! A field that breaks it is `INVALID_ARGUMENT` naming the field, before anything is written.

use unicode_normalization::UnicodeNormalization;

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

/// Checks a required text field (not blank).
pub fn require(v: &mut Violations, field: &str, value: &str, max: usize, lines: Lines) {
    if value.trim().is_empty() {
        v.add(field, "is required");
    } else {
        check(v, field, value, max, lines);
    }
}

/// The fewest and most digits of a phone number (a short service number, a full international
/// one).
pub const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 5..=20;

/// What is wrong with `value` as a phone number, if anything: digits (full-width ones too) with
/// spaces, `+`, `-`, `.`, `(` and `)` only, 5 to 20 digits. A letter — `1380013800O` with an O
/// for the last zero — is refused, not dropped.
pub fn phone_problem(value: &str) -> Option<String> {
    let value: String = value.nfkc().collect();
    let value = value.trim();
    if let Some(p) = problem(value, 40, Lines::One) {
        return Some(p);
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()".contains(c))
    {
        return Some("is not a phone number: digits, spaces and + - . ( ) only".into());
    }
    if value.char_indices().any(|(i, c)| c == '+' && i != 0) {
        return Some("is not a phone number: + only at the start".into());
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    if !PHONE_DIGITS.contains(&digits) {
        return Some(format!(
            "is not a phone number: must have {} to {} digits",
            PHONE_DIGITS.start(),
            PHONE_DIGITS.end()
        ));
    }
    None
}

/// Checks an optional phone field.
pub fn check_phone(v: &mut Violations, field: &str, value: &str) {
    if !value.trim().is_empty()
        && let Some(p) = phone_problem(value)
    {
        v.add(field, p);
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

    #[test]
    fn one_phone_rule() {
        for ok in [
            "13800138000",
            "+86 138 0013 8000",
            "(020) 8888-6666",
            "０２０-８８８８６６６６",
            "010.6666.8888",
        ] {
            assert_eq!(phone_problem(ok), None, "{ok}");
        }
        for bad in [
            "1380013800O",
            "138-0013-800x",
            "12 34",
            "+86+138",
            "1\u{0}3800138000",
            "123456789012345678901",
        ] {
            assert!(phone_problem(bad).is_some(), "{bad}");
        }
        let mut v = Violations::new();
        check_phone(&mut v, "contact.phone", "");
        assert!(v.is_empty(), "empty is for the field's own rule");
    }
}
