//! E-mail addresses, one rule for the whole platform (issue 15): what may be entered (one `@`, a
//! local part, a domain with a dot not at either end, no spaces or control characters, at most
//! 200 characters) and the form addresses are compared in (trimmed, lower case) — a contact's
//! duplicate key in customers, an e-mail opt-out and a delivery address in notifications.

use crate::{
    Violations,
    text::{self, Lines},
};

/// The longest address.
pub const MAX: usize = 200;

/// An e-mail address as entered (trimmed), valid by the rule, with the key it is compared by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    entered: String,
    key: String,
}

impl Email {
    /// Checks `value`; the reason if it is no address.
    pub fn parse(value: &str) -> Result<Self, String> {
        let entered = value.trim().to_string();
        if let Some(p) = text::problem(&entered, MAX, Lines::One) {
            return Err(p);
        }
        let valid = match entered.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && !entered.chars().any(char::is_whitespace)
            }
            None => false,
        };
        if !valid {
            return Err("is not an e-mail address".into());
        }
        let key = key(&entered);
        Ok(Self { entered, key })
    }

    /// The address as entered.
    pub fn as_str(&self) -> &str {
        &self.entered
    }

    /// The form it is compared in: trimmed, lower case.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl std::fmt::Display for Email {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.entered)
    }
}

/// The key of `value` for a look-up: trimmed, lower case.
pub fn key(value: &str) -> String {
    value.trim().to_lowercase()
}

/// Checks an optional e-mail field; records a violation under `field`. The address, if one was
/// given and is valid.
pub fn check(v: &mut Violations, field: &str, value: &str) -> Option<Email> {
    text::optional(v, field, value, Email::parse)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_their_key() {
        for ok in [
            "a@b.cn",
            " Wang@Example.COM ",
            "li.ming+crm@mail.example.com",
        ] {
            assert!(Email::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "a@b",
            "a b@c.cn",
            "@b.cn",
            "a@.cn",
            "a@b.",
            "a@b@c.cn",
            "a\u{0}@b.cn",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Email::parse(" Wang@Example.COM ").unwrap().key(),
            "wang@example.com"
        );
        assert_eq!(key("Wang@Example.com"), key("wang@example.COM "));
    }
}
