//! The rules of stock: quantities, and when a centre is told its stock is low.

/// The most units one delivery or request may move.
pub const MAX_QUANTITY: i32 = 100_000;

/// Checks a quantity: at least 1, at most [`MAX_QUANTITY`]; what is wrong, as a field
/// violation's description.
pub fn quantity(value: i32) -> Result<i32, String> {
    if value < 1 {
        return Err("must be at least 1".into());
    }
    if value > MAX_QUANTITY {
        return Err(format!("must be at most {MAX_QUANTITY}"));
    }
    Ok(value)
}

/// What a change of stock means for the low-stock notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Low {
    /// Nothing to record.
    Unchanged,
    /// Available fell below the minimum: record it and tell the centre (once).
    Fell,
    /// Available is back at or above the minimum: the next fall is told again.
    Recovered,
}

/// The low-stock notice after a change: `was_low` is the recorded flag, `available` and
/// `minimum` the new levels. Low means available below the minimum (a minimum of 0 is never
/// low).
pub fn low(was_low: bool, available: i32, minimum: i32) -> Low {
    match (was_low, available < minimum) {
        (false, true) => Low::Fell,
        (true, false) => Low::Recovered,
        _ => Low::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_positive_and_bounded() {
        assert_eq!(quantity(1), Ok(1));
        for bad in [0, -3, MAX_QUANTITY + 1] {
            assert!(quantity(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_centre_is_told_once_per_fall_below_the_minimum() {
        assert_eq!(low(false, 2, 3), Low::Fell);
        assert_eq!(low(true, 1, 3), Low::Unchanged);
        assert_eq!(low(true, 3, 3), Low::Recovered);
        assert_eq!(low(false, 3, 3), Low::Unchanged);
        assert_eq!(low(false, 0, 0), Low::Unchanged);
    }
}
