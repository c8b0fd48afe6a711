//! Phone numbers, one rule for the whole platform (issues 14 and 15): what may be entered, and
//! the one form numbers are compared in. `+86 138 0013 8000`, `8613800138000`,
//! `0086-138-0013-8000` and `138 0013 8000` are one number everywhere — a contact's search key
//! in customers, an SMS opt-out and a delivery address in notifications — so an opt-out entered
//! in one form stops messages addressed in another.
//!
//! Entry: digits (full-width ones too) with spaces, `+`, `-`, `.`, `(` and `)` only, 5 to 20
//! digits; a letter (`1380013800O`) is refused, not dropped. Comparison: the E.164 form
//! (`+8613800138000`) as libphonenumber's metadata (the `phonenumber` crate) parses the number
//! with China as the home region; a number it cannot place (a five-digit service number) gets
//! the same form by rule: `+` and the digits of an international number, else `+86` and the
//! national digits without a trunk `0`.

use phonenumber::{Mode, country};
use unicode_normalization::UnicodeNormalization;

use crate::{
    Violations,
    text::{self, Lines},
};

/// The fewest and most digits of a phone number (a short service number, a full international
/// one).
pub const DIGITS: std::ops::RangeInclusive<usize> = 5..=20;

/// The region a number without a country code is read in.
pub const HOME_REGION: country::Id = country::Id::CN;

/// A phone number as entered (trimmed, full-width digits made ASCII), valid by the entry rule,
/// with the key it is compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    entered: String,
    key: String,
}

impl Phone {
    /// Checks `value` by the entry rule; the reason if it breaks it.
    pub fn parse(value: &str) -> Result<Self, String> {
        let entered: String = value.nfkc().collect::<String>().trim().to_string();
        if let Some(p) = text::problem(&entered, 40, Lines::One) {
            return Err(p);
        }
        if !entered
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c))
        {
            return Err("is not a phone number: digits, spaces and + - . ( ) only".into());
        }
        if entered.char_indices().any(|(i, c)| c == '+' && i != 0) {
            return Err("is not a phone number: + only at the start".into());
        }
        let digits = entered.chars().filter(char::is_ascii_digit).count();
        if !DIGITS.contains(&digits) {
            return Err(format!(
                "is not a phone number: must have {} to {} digits",
                DIGITS.start(),
                DIGITS.end()
            ));
        }
        let key = compared(&entered);
        Ok(Self { entered, key })
    }

    /// The number as entered.
    pub fn as_str(&self) -> &str {
        &self.entered
    }

    /// The form it is compared and stored for look-up in: E.164, `+8613800138000`.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.entered)
    }
}

/// The key of `value` for a look-up (a search, an address already stored): its E.164 form,
/// or the digits by the fallback rule when it is not a number libphonenumber can place; empty
/// for a value without digits.
pub fn key(value: &str) -> String {
    let value: String = value.nfkc().collect();
    compared(value.trim())
}

/// A key as the number is dialled in the home region: a Chinese mobile's eleven digits, a
/// landline with its trunk `0`, another country's number with `00` (`+8613800138000` is
/// `13800138000`, `+862088886666` is `02088886666`, `+14155550100` is `0014155550100`).
pub fn national(key: &str) -> String {
    let Some(number) = key.strip_prefix('+') else {
        return key.to_string();
    };
    match number.strip_prefix("86") {
        Some(n) if n.starts_with('1') => n.to_string(),
        Some(n) => format!("0{n}"),
        None => format!("00{number}"),
    }
}

fn compared(value: &str) -> String {
    if let Ok(number) = phonenumber::parse(Some(HOME_REGION), value) {
        return number.format().mode(Mode::E164).to_string();
    }
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return String::new();
    }
    if value.starts_with('+') {
        return format!("+{digits}");
    }
    if let Some(international) = digits.strip_prefix("00") {
        return format!("+{international}");
    }
    format!("+86{}", digits.trim_start_matches('0'))
}

/// Checks an optional phone field; records a violation under `field`. The number, if one was
/// given and is valid.
pub fn check(v: &mut Violations, field: &str, value: &str) -> Option<Phone> {
    text::optional(v, field, value, Phone::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_number_however_it_is_written() {
        let forms = [
            "+86 138 0013 8000",
            "8613800138000",
            "0086-138-0013-8000",
            "138 0013 8000",
            "13800138000",
            "（+86）１３８００１３８０００",
        ];
        for form in forms {
            assert_eq!(key(form), "+8613800138000", "{form}");
        }
        assert_eq!(key("010-8888 6666"), "+861088886666");
        assert_eq!(key("+86 (20) 3888 9999"), key("(020) 3888-9999"));
        assert_eq!(key("+1 415 555 0100"), key("001 415 555 0100"));
        assert_eq!(key("+1 415 555 0100"), "+14155550100");
        assert_ne!(
            key("+1 415 555 0100"),
            key("415 555 0100"),
            "home region CN"
        );
        // short numbers libphonenumber does not place get the same form by rule
        assert_eq!(key("12345"), "+8612345");
        assert_eq!(key("95588"), "+8695588");
        assert_eq!(key(""), "");
        assert_eq!(national(&key("+86 138 0013 8000")), "13800138000");
        assert_eq!(national(&key("(020) 8888-6666")), "02088886666");
        assert_eq!(national(&key("+1 415 555 0100")), "0014155550100");
    }

    #[test]
    fn the_entry_rule() {
        for ok in [
            "13800138000",
            "+86 138 0013 8000",
            "(020) 8888-6666",
            "０２０-８８８８６６６６",
            "010.6666.8888",
            "95588",
        ] {
            assert!(Phone::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "1380013800O",
            "138-0013-800a",
            "call me",
            "1234",
            "86+13800138000",
            "123456789012345678901",
            "138\u{0}0013",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
        let p = Phone::parse(" ０２０-８８８８６６６６ ").unwrap();
        assert_eq!(p.as_str(), "020-88886666");
        assert_eq!(p.key(), "+862088886666");
    }
}
