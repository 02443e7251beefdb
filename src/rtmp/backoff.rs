//! Reconnect delays: exponential with jitter, so targets that failed together (a CDN blip) do
//! not come back in lockstep.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
        }
    }

    /// The next delay, between half and all of the current step; `unit` is a random number in
    /// `[0, 1)`. The step then doubles, up to `max`.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let step = self.current;
        self.current = (self.current * 2).min(self.max);
        step.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }

    /// Back to the first step, after a connection that worked for a while.
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_up_to_max_and_resets() {
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        assert_eq!(backoff.next_delay(0.0), Duration::from_millis(500));
        assert_eq!(
            backoff.next_delay(0.999_999),
            Duration::from_millis(2000) - Duration::from_nanos(1000)
        );
        let delays: Vec<_> = (0..3).map(|_| backoff.next_delay(1.0)).collect();
        assert_eq!(
            delays,
            [
                Duration::from_secs(4),
                Duration::from_secs(5),
                Duration::from_secs(5)
            ]
        );
        backoff.reset();
        assert_eq!(backoff.next_delay(1.0), Duration::from_secs(1));
    }
}
