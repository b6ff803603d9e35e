//! Percentiles of measured durations.

use std::time::Duration;

/// The `p`-th percentile (0.0..=1.0) of `samples` by the nearest-rank method;
/// zero for no samples. Sorts a copy, so callers may pass samples in any order.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let Some(last) = sorted.len().checked_sub(1) else {
        return Duration::ZERO;
    };
    let rank = (p.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(last)]
}

/// Milliseconds with microsecond precision, as the reports print them.
pub fn ms(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank_of_a_hundred_samples() {
        let samples: Vec<Duration> = (1..=100).rev().map(d).collect();
        assert_eq!(percentile(&samples, 0.5), d(50));
        assert_eq!(percentile(&samples, 0.99), d(99));
        assert_eq!(percentile(&samples, 1.0), d(100));
        assert_eq!(percentile(&samples, 0.0), d(1));
    }

    #[test]
    fn no_samples_is_zero() {
        assert_eq!(percentile(&[], 0.99), Duration::ZERO);
    }
}
