//! Jittered exponential backoff for redials: pure, with the randomness passed in.

use std::time::Duration;

use crate::spec::RedialPolicy;

/// Jitter is ±20 % of the nominal delay.
const JITTER: f64 = 0.2;
/// A call that stayed up this long resets the backoff: its next failure starts at `initial`.
pub const RESET_AFTER_CONNECTED: Duration = Duration::from_secs(600);

#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    policy: RedialPolicy,
    failures: u32,
}

impl Backoff {
    pub fn new(policy: RedialPolicy) -> Self {
        Backoff {
            policy,
            failures: 0,
        }
    }

    pub fn set_policy(&mut self, policy: RedialPolicy) {
        self.policy = policy;
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt. `unit` is a uniform random number in [0, 1).
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let nominal = self.nominal();
        self.failures = self.failures.saturating_add(1);
        let factor = 1.0 - JITTER + 2.0 * JITTER * unit.clamp(0.0, 1.0);
        nominal.mul_f64(factor)
    }

    /// `initial * 2^failures`, capped at `max`.
    fn nominal(&self) -> Duration {
        let doubled = 2u32
            .checked_pow(self.failures)
            .and_then(|m| self.policy.initial.checked_mul(m))
            .unwrap_or(self.policy.max);
        doubled.min(self.policy.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_two_seconds_to_a_sixty_second_ceiling() {
        let mut b = Backoff::new(RedialPolicy::default());
        let nominal: Vec<u64> = (0..8).map(|_| b.next_delay(0.5).as_secs()).collect();
        assert_eq!(nominal, [2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let mut low = Backoff::new(RedialPolicy::default());
        let mut high = Backoff::new(RedialPolicy::default());
        assert_eq!(low.next_delay(0.0), Duration::from_millis(1600));
        assert_eq!(high.next_delay(0.999_999).as_millis(), 2399);
    }

    #[test]
    fn reset_starts_over_and_huge_counts_do_not_overflow() {
        let mut b = Backoff::new(RedialPolicy::default());
        for _ in 0..100 {
            b.next_delay(0.5);
        }
        assert_eq!(b.next_delay(0.5), Duration::from_secs(60));
        b.reset();
        assert_eq!(b.next_delay(0.5), Duration::from_secs(2));
    }
}
