//! A token bucket in virtual time: how often we answer what a stranger sends (stray requests,
//! in-dialog requests with the wrong tags). Answers past the rate are dropped and counted, so a
//! flood costs us at most `rate` answers a second, never a task or a buffer per datagram.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Tokens added per second.
    rate: u32,
    /// Most tokens held (the burst we allow after a quiet time).
    burst: u32,
    /// Tokens in thousandths, so refill needs no floats.
    milli_tokens: u64,
    refilled_at: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: u32, burst: u32) -> Self {
        TokenBucket {
            rate,
            burst,
            milli_tokens: u64::from(burst) * 1000,
            refilled_at: None,
        }
    }

    /// Takes one token at `now` if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        let elapsed = self
            .refilled_at
            .map(|at| now.saturating_duration_since(at))
            .unwrap_or(Duration::ZERO);
        // Milliseconds times rate = thousandths of a token; saturating so a clock jump is harmless.
        let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let added = millis.saturating_mul(u64::from(self.rate));
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(added)
            .min(u64::from(self.burst) * 1000);
        if self.refilled_at.is_none() || added > 0 {
            self.refilled_at = Some(now);
        }
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_rate() {
        let t0 = crate::sip::core::test_origin();
        let mut bucket = TokenBucket::new(10, 5);
        let taken = (0..100).filter(|_| bucket.take(t0)).count();
        assert_eq!(taken, 5, "the burst, then nothing at the same instant");
        let one_second = t0 + Duration::from_secs(1);
        let taken = (0..100).filter(|_| bucket.take(one_second)).count();
        assert_eq!(taken, 5, "10/s refills, but never past the burst");
        let mut steady = 0;
        for ms in (1_000..11_000).step_by(10) {
            steady += usize::from(bucket.take(t0 + Duration::from_millis(ms + 10)));
        }
        assert!((99..=101).contains(&steady), "{steady} in 10 s at 10/s");
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = crate::sip::core::test_origin() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(1, 1);
        assert!(bucket.take(t0));
        assert!(!bucket.take(t0 - Duration::from_secs(5)));
    }
}
