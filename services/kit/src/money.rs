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

/// What is wrong with an amount that may be zero (an estimate not known yet), if anything.
pub fn problem_or_zero(m: Option<&Money>) -> Option<&'static str> {
    match m {
        Some(z)
            if z.units == 0 && z.nanos == 0 && CURRENCIES.contains(&z.currency_code.as_str()) =>
        {
            None
        }
        other => problem(other),
    }
}

/// Nanos in one unit.
const NANOS: i128 = 1_000_000_000;

/// An amount in nanos of its unit (exact).
pub fn to_nanos(m: &Money) -> i128 {
    i128::from(m.units) * NANOS + i128::from(m.nanos)
}

/// `nanos` of `currency` as Money (units and nanos of the same sign); saturates at the i64
/// range, far beyond any amount a sale holds.
pub fn from_nanos(currency: &str, nanos: i128) -> Money {
    let units = i64::try_from(nanos / NANOS).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX });
    Money {
        currency_code: currency.to_string(),
        units,
        nanos: i32::try_from(nanos % NANOS).unwrap_or(0),
    }
}

/// An amount as people read it: the currency and the amount to the cent, e.g. `CNY 1200.50`.
pub fn display(m: &Money) -> String {
    let sign = if m.units < 0 || m.nanos < 0 { "-" } else { "" };
    format!(
        "{} {sign}{}.{:02}",
        m.currency_code,
        m.units.unsigned_abs(),
        m.nanos.unsigned_abs() / 10_000_000
    )
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
        assert_eq!(problem_or_zero(Some(&m("CNY", 0, 0))), None);
        assert!(problem_or_zero(Some(&m("XYZ", 0, 0))).is_some());
    }

    #[test]
    fn amounts_are_exact_in_nanos_and_read_to_the_cent() {
        let a = m("CNY", 1200, 500_000_000);
        assert_eq!(to_nanos(&a), 1_200_500_000_000);
        assert_eq!(
            from_nanos("CNY", to_nanos(&a) * 3),
            m("CNY", 3601, 500_000_000)
        );
        assert_eq!(display(&a), "CNY 1200.50");
        assert_eq!(display(&from_nanos("USD", -1_500_000_000)), "USD -1.50");
    }
}
