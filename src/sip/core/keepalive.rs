//! CRLF keep-alives on a connection-oriented flow (RFC 5626 §4.4.1, §3.5.1), sans-IO.
//!
//! The client side of a flow sends a double CRLF "ping" at a random time between 80 % and
//! 100 % of the interval (the registrar's `Flow-Timer`, else [`DEFAULT_INTERVAL`]); the server
//! answers with a single CRLF "pong". No pong (nor any other byte) within [`PONG_WAIT`] means
//! the flow has failed: the driver closes the connection and the registration over it
//! re-registers. Anything the peer sends counts as a pong: it proves the flow is alive.
//!
//! Drive it: [`KeepAlive::handle_timeout`] when [`KeepAlive::poll_timeout`] is due, and
//! [`KeepAlive::on_received`] for every read from the peer.

use rand::Rng;
use rand::rngs::StdRng;
use std::time::{Duration, Instant};

/// RFC 5626 §4.4.1 recommends 120 s for connection-oriented transports.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(120);
/// How long a ping may go unanswered (RFC 5626 §4.4.1: 10 s).
pub const PONG_WAIT: Duration = Duration::from_secs(10);
/// The shortest interval we accept from a registrar (a hostile `Flow-Timer: 1` must not make us
/// ping every second).
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// The ping, and the pong we answer a peer's ping with.
pub const PING: &[u8] = b"\r\n\r\n";
pub const PONG: &[u8] = b"\r\n";

/// What the driver must do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAliveAction {
    /// Write [`PING`].
    Ping,
    /// The flow is dead: close it.
    Failed,
}

#[derive(Debug)]
pub struct KeepAlive {
    interval: Duration,
    next_ping: Instant,
    /// Set while a ping waits for its pong.
    pong_by: Option<Instant>,
    rng: StdRng,
}

impl KeepAlive {
    /// A flow opened at `now`, pinging every `DEFAULT_INTERVAL` (less jitter).
    pub fn new(now: Instant, rng: StdRng) -> Self {
        let mut keepalive = KeepAlive {
            interval: DEFAULT_INTERVAL,
            next_ping: now,
            pong_by: None,
            rng,
        };
        keepalive.schedule(now);
        keepalive
    }

    /// The registrar's `Flow-Timer`: the next ping comes within it.
    pub fn set_interval(&mut self, now: Instant, interval: Duration) {
        self.interval = interval.max(MIN_INTERVAL);
        if self.pong_by.is_none() {
            self.schedule(now);
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn poll_timeout(&self) -> Instant {
        self.pong_by.unwrap_or(self.next_ping)
    }

    pub fn handle_timeout(&mut self, now: Instant) -> Option<KeepAliveAction> {
        match self.pong_by {
            Some(by) if now >= by => Some(KeepAliveAction::Failed),
            Some(_) => None,
            None if now >= self.next_ping => {
                self.pong_by = Some(now + PONG_WAIT);
                Some(KeepAliveAction::Ping)
            }
            None => None,
        }
    }

    /// The peer sent something: the flow is alive.
    pub fn on_received(&mut self, now: Instant) {
        if self.pong_by.take().is_some() {
            self.schedule(now);
        }
    }

    /// Next ping at a random point in [80 %, 100 %] of the interval (§4.4.1), so that many
    /// clients of one server do not ping in step.
    fn schedule(&mut self, now: Instant) {
        let millis = u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX);
        let low = millis / 5 * 4;
        let wait = self.rng.random_range(low..=millis.max(low));
        self.next_ping = now + Duration::from_millis(wait);
    }
}

/// True when `crlf_run` bytes of bare CR/LF from the peer are a ping to answer with [`PONG`]
/// (a pong is shorter: answering it would make two peers ping-pong forever).
pub fn is_ping(crlf_run: usize) -> bool {
    crlf_run >= PING.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn pings_within_80_to_100_percent_of_the_interval_and_fails_without_pong() {
        let t0 = crate::sip::core::test_origin();
        for seed in 0..50 {
            let k = KeepAlive::new(t0, StdRng::seed_from_u64(seed));
            let first = k.poll_timeout() - t0;
            assert!(
                first >= Duration::from_secs(96) && first <= DEFAULT_INTERVAL,
                "{first:?}"
            );
        }
        let mut k = KeepAlive::new(t0, StdRng::seed_from_u64(1));
        k.set_interval(t0, Duration::from_secs(25));
        let at = k.poll_timeout();
        assert!(at - t0 >= Duration::from_secs(20) && at - t0 <= Duration::from_secs(25));
        assert_eq!(k.handle_timeout(at - Duration::from_millis(1)), None);
        assert_eq!(k.handle_timeout(at), Some(KeepAliveAction::Ping));
        assert_eq!(k.poll_timeout(), at + PONG_WAIT);
        // The pong arrives: the next ping is one interval later.
        k.on_received(at + Duration::from_secs(1));
        let next = k.poll_timeout();
        assert!(next - at >= Duration::from_secs(21) && next - at <= Duration::from_secs(26));
        // No pong this time: failed exactly PONG_WAIT after the ping.
        assert_eq!(k.handle_timeout(next), Some(KeepAliveAction::Ping));
        assert_eq!(
            k.handle_timeout(next + PONG_WAIT - Duration::from_millis(1)),
            None
        );
        assert_eq!(
            k.handle_timeout(next + PONG_WAIT),
            Some(KeepAliveAction::Failed)
        );
    }

    #[test]
    fn a_tiny_flow_timer_is_raised_and_pongs_are_not_answered() {
        let t0 = crate::sip::core::test_origin();
        let mut k = KeepAlive::new(t0, StdRng::seed_from_u64(2));
        k.set_interval(t0, Duration::from_secs(1));
        assert_eq!(k.interval(), MIN_INTERVAL);
        assert!(k.poll_timeout() - t0 >= Duration::from_secs(4));
        assert!(is_ping(4) && is_ping(6));
        assert!(!is_ping(2) && !is_ping(0));
    }
}
