//! Exponential backoff with jitter: pure, with the randomness passed in.
//!
//! Used for call redials (±20 % around the nominal delay, as operators expect to read it) and
//! for RTMP reconnects (half to all of it, so targets that failed together — a CDN blip — do not
//! come back in lockstep).

use std::time::Duration;

/// The range of factors applied to the nominal delay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Jitter {
    low: f64,
    high: f64,
}

impl Jitter {
    /// 80 % to 120 % of the nominal delay.
    pub const PLUS_MINUS_20_PERCENT: Jitter = Jitter {
        low: 0.8,
        high: 1.2,
    };
    /// 50 % to 100 % of the nominal delay.
    pub const HALF_TO_FULL: Jitter = Jitter {
        low: 0.5,
        high: 1.0,
    };
    /// Exactly the nominal delay (restarts of internal tasks: nothing to de-synchronise).
    pub const NONE: Jitter = Jitter {
        low: 1.0,
        high: 1.0,
    };
}

#[derive(Clone, Debug, PartialEq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: Jitter,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration, jitter: Jitter) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            jitter,
            failures: 0,
        }
    }

    /// New bounds (an edited spec), keeping the failure count.
    pub fn set_bounds(&mut self, initial: Duration, max: Duration) {
        self.initial = initial;
        self.max = max.max(initial);
    }

    /// Back to the first step, after a connection that worked for a while.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// The delay before the next attempt; `unit` is a uniform random number in [0, 1). The
    /// nominal delay is `initial * 2^failures`, capped at `max`.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let nominal = 2u32
            .checked_pow(self.failures)
            .and_then(|m| self.initial.checked_mul(m))
            .map_or(self.max, |d| d.min(self.max));
        self.failures = self.failures.saturating_add(1);
        let Jitter { low, high } = self.jitter;
        nominal.mul_f64(low + (high - low) * unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn doubles_to_the_ceiling_and_resets() {
        let mut b = Backoff::new(secs(2), secs(60), Jitter::PLUS_MINUS_20_PERCENT);
        let nominal: Vec<u64> = (0..8).map(|_| b.next_delay(0.5).as_secs()).collect();
        assert_eq!(nominal, [2, 4, 8, 16, 32, 60, 60, 60]);
        for _ in 0..100 {
            b.next_delay(0.5);
        }
        assert_eq!(b.next_delay(0.5), secs(60), "huge counts do not overflow");
        b.reset();
        assert_eq!(b.next_delay(0.5), secs(2));
    }

    #[test]
    fn jitter_stays_within_its_range() {
        let mut low = Backoff::new(secs(2), secs(60), Jitter::PLUS_MINUS_20_PERCENT);
        let mut high = Backoff::new(secs(2), secs(60), Jitter::PLUS_MINUS_20_PERCENT);
        assert_eq!(low.next_delay(0.0), Duration::from_millis(1600));
        assert_eq!(high.next_delay(0.999_999).as_millis(), 2399);
        let mut half = Backoff::new(secs(1), secs(5), Jitter::HALF_TO_FULL);
        assert_eq!(half.next_delay(0.0), Duration::from_millis(500));
        assert_eq!(half.next_delay(1.0), secs(2));
    }
}
