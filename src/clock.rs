//! The only place that reads clocks. Drivers call these; cores take `now` as an argument.
//!
//! Wall time matters for schedules. [`WallClock`] reads it through tokio's clock so that tests
//! running with `start_paused = true` also move wall time virtually.

use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Monotonic time for drivers (tokio's, so paused-time tests control it).
#[allow(clippy::disallowed_methods)] // the one sanctioned monotonic clock read
pub fn monotonic() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// The system's real-time clock as the kernel reads it: only to tell how long ago the kernel
/// stamped a received datagram (`SO_TIMESTAMPNS` uses this clock), never as time of day.
#[allow(clippy::disallowed_methods)] // the kernel's timestamps are on this clock
pub fn kernel_realtime() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// Wall-clock time as a [`jiff::Timestamp`].
#[derive(Clone, Debug)]
pub enum WallClock {
    /// The system's real-time clock.
    System,
    /// `base` plus the tokio time elapsed since `anchor`: virtual wall time for tests.
    Virtual {
        base: jiff::Timestamp,
        anchor: tokio::time::Instant,
        /// Steps applied to the clock (an NTP correction, an operator's `date -s`).
        step: Arc<Mutex<jiff::SignedDuration>>,
    },
}

impl WallClock {
    /// A virtual wall clock starting at `base` now (in tokio time).
    pub fn starting_at(base: jiff::Timestamp) -> Self {
        WallClock::Virtual {
            base,
            anchor: monotonic(),
            step: Arc::default(),
        }
    }

    /// Steps a virtual clock forward or back; does nothing to the system clock.
    pub fn step(&self, by: jiff::SignedDuration) {
        if let WallClock::Virtual { step, .. } = self {
            let mut step = step.lock().unwrap_or_else(|e| e.into_inner());
            *step = step.saturating_add(by);
        }
    }

    #[allow(clippy::disallowed_methods)] // the one sanctioned wall clock read
    pub fn now(&self) -> jiff::Timestamp {
        match self {
            WallClock::System => jiff::Timestamp::now(),
            WallClock::Virtual { base, anchor, step } => {
                let elapsed: Duration = monotonic().saturating_duration_since(*anchor);
                let step = *step.lock().unwrap_or_else(|e| e.into_inner());
                base.checked_add(elapsed)
                    .and_then(|t| t.checked_add(step))
                    .unwrap_or(*base)
            }
        }
    }
}
