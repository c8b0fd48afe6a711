//! Money as the contracts carry it (`crm.common.v1.Money`: units and nanos, exact decimal,
//! never floats), checked once for every service: a known ISO 4217 currency and a positive,
//! well-formed amount.

use crm_proto::common::v1::Money;

/// The currencies the platform accepts (ISO 4217 codes of the regions it serves).
pub const CURRENCIES: &[&str] = &[
    "CNY", "HKD", "MOP", "TWD", "USD", "EUR", "GBP", "JPY", "KRW", "SGD", "AUD", "CAD", "CHF",
];

/// What is wrong with an amount, if anything: it must be present, in a known currency, well
/// formed (units ≥ 0, 0 ≤ nanos < 10⁹) and more than zero.
pub fn problem(m: Option<&Money>) -> Option<&'static str> {
    match m {
        None => Some("is required"),
        Some(m) if !CURRENCIES.contains(&m.currency_code.as_str()) => {
            Some("needs a known 3-letter currency code, e.g. CNY")
        }
        Some(m) if m.units < 0 || m.nanos < 0 || m.nanos >= 1_000_000_000 => {
            Some("must be a positive amount (units ≥ 0, 0 ≤ nanos < 10⁹)")
        }
        Some(m) if m.units == 0 && m.nanos == 0 => Some("must be a positive amount"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(c: &str, units: i64, nanos: i32) -> Money {
        Money {
            currency_code: c.into(),
            units,
            nanos,
        }
    }

    #[test]
    fn only_positive_amounts_in_known_currencies_pass() {
        assert_eq!(problem(Some(&m("CNY", 350, 0))), None);
        assert_eq!(problem(Some(&m("EUR", 0, 500_000_000))), None);
        for bad in [
            m("CNY", 0, 0),
            m("CNY", -1, 0),
            m("CNY", 1, -5),
            m("CNY", 1, 1_000_000_000),
            m("cny", 1, 0),
            m("XYZ", 1, 0),
            m("", 1, 0),
        ] {
            assert!(problem(Some(&bad)).is_some(), "{bad:?}");
        }
        assert!(problem(None).is_some());
    }
}
