//! The delivery rules (N-4): the retry back-off.

use std::time::Duration;

/// The wait before attempt `attempt + 1` after `attempt` failed ones: `base * 2^(attempt-1)`,
/// capped at `max`, less a random part of up to half (`jitter` in `0.0..1.0`), so senders that
/// failed together do not retry together.
pub fn retry_delay(attempt: i32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let full = base.saturating_mul(1u32 << exp).min(max);
    full.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_grows_is_capped_and_jittered() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        assert_eq!(retry_delay(1, base, max, 0.0), Duration::from_secs(2));
        assert_eq!(retry_delay(3, base, max, 0.0), Duration::from_secs(8));
        assert_eq!(retry_delay(30, base, max, 0.0), max);
        assert_eq!(retry_delay(3, base, max, 1.0), Duration::from_secs(4));
        let d = retry_delay(3, base, max, 0.5);
        assert!(d > Duration::from_secs(4) && d < Duration::from_secs(8));
    }
}
