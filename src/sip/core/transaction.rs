//! Client transactions (RFC 3261 §17.1) with their timer table (§17.1.1.2, §17.1.2.2, Table 4).
//!
//! A transaction owns the wire form of one request and decides, from responses and timer
//! expiries, when to retransmit, what to pass up and when it is over. Drive it with
//! [`ClientTransaction::on_response`] and [`ClientTransaction::on_timeout`] at
//! [`ClientTransaction::next_timeout`]; both return the [`TxAction`]s to carry out.
//!
//! INVITE retransmissions (Timer A) double without cap until Timer B (64·T1), as §17.1.1.2
//! says; non-INVITE ones (Timer E) double up to T2 and then repeat every T2 (§17.1.2.2).

use bytes::Bytes;
use std::time::{Duration, Instant};

/// RFC 3261 timer base values (Table 4). T1 and T2 are configurable; T4 rarely matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate; 500 ms by default.
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests; 4 s by default.
    pub t2: Duration,
    /// Maximum time a message stays in the network; 5 s by default.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// The client transaction timers (RFC 3261 Table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timer {
    /// INVITE retransmit.
    A,
    /// INVITE transaction timeout.
    B,
    /// Wait for response retransmits after a non-2xx final to INVITE.
    D,
    /// Non-INVITE retransmit.
    E,
    /// Non-INVITE transaction timeout.
    F,
    /// Wait for response retransmits after a non-INVITE final.
    K,
}

const TIMERS: [Timer; 6] = [Timer::A, Timer::B, Timer::D, Timer::E, Timer::F, Timer::K];

/// When each timer fires, if armed.
#[derive(Debug, Clone, Default)]
pub struct TimerTable {
    deadlines: [Option<Instant>; 6],
}

impl TimerTable {
    fn slot(timer: Timer) -> usize {
        TIMERS.iter().position(|t| *t == timer).unwrap_or(0)
    }

    pub fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[Self::slot(timer)] = Some(at);
    }

    pub fn clear(&mut self, timer: Timer) {
        self.deadlines[Self::slot(timer)] = None;
    }

    pub fn clear_all(&mut self) {
        self.deadlines = [None; 6];
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The earliest timer due at `now`, disarmed.
    pub fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let (slot, _) = self
            .deadlines
            .iter()
            .enumerate()
            .filter_map(|(i, d)| d.filter(|d| *d <= now).map(|d| (i, d)))
            .min_by_key(|(_, d)| *d)?;
        self.deadlines[slot] = None;
        Some(TIMERS[slot])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionKind {
    Invite,
    NonInvite,
}

/// RFC 3261 Figures 5 and 6 (`Calling` is INVITE's name for `Trying`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Terminated,
}

/// What the owner of a transaction must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAction {
    /// Put these bytes on the wire again (a request retransmission or the ACK of a non-2xx).
    Send(Bytes),
    /// Pass the response up to the transaction user.
    Deliver,
    /// No final response in time (Timer B or F): act as if a 408 arrived.
    TimedOut,
}

/// One client transaction.
#[derive(Debug, Clone)]
pub struct ClientTransaction {
    pub branch: String,
    pub kind: TransactionKind,
    request: Bytes,
    reliable: bool,
    config: TimerConfig,
    state: ClientState,
    timers: TimerTable,
    interval: Duration,
    ack: Option<Bytes>,
}

impl ClientTransaction {
    /// Starts a transaction whose request is sent now by the caller.
    pub fn start(
        kind: TransactionKind,
        branch: String,
        request: Bytes,
        reliable: bool,
        config: TimerConfig,
        now: Instant,
    ) -> Self {
        let mut timers = TimerTable::default();
        let (retransmit, timeout, state) = match kind {
            TransactionKind::Invite => (Timer::A, Timer::B, ClientState::Calling),
            TransactionKind::NonInvite => (Timer::E, Timer::F, ClientState::Trying),
        };
        if !reliable {
            timers.set(retransmit, now + config.t1);
        }
        timers.set(timeout, now + config.t1 * 64);
        ClientTransaction {
            branch,
            kind,
            request,
            reliable,
            config,
            state,
            timers,
            interval: config.t1,
            ack: None,
        }
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn request(&self) -> &Bytes {
        &self.request
    }

    pub fn is_terminated(&self) -> bool {
        self.state == ClientState::Terminated
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// A response whose top Via branch is ours. `make_ack` builds the ACK for a non-2xx final
    /// response to INVITE (§17.1.1.3); it is called at most once.
    pub fn on_response(
        &mut self,
        now: Instant,
        status: u16,
        make_ack: impl FnOnce() -> Bytes,
    ) -> Vec<TxAction> {
        let provisional = status < 200;
        match (self.kind, self.state) {
            (_, ClientState::Terminated) => Vec::new(),
            (TransactionKind::Invite, ClientState::Completed) => {
                // A retransmitted final response: ACK again, tell nobody.
                self.ack.clone().map(TxAction::Send).into_iter().collect()
            }
            (TransactionKind::NonInvite, ClientState::Completed) => Vec::new(),
            (TransactionKind::Invite, _) if provisional => {
                self.state = ClientState::Proceeding;
                self.timers.clear(Timer::A);
                vec![TxAction::Deliver]
            }
            (TransactionKind::Invite, _) if status < 300 => {
                // The 2xx ACK is the dialog's business (§13.2.2.4).
                self.terminate();
                vec![TxAction::Deliver]
            }
            (TransactionKind::Invite, _) => {
                let ack = make_ack();
                self.ack = Some(ack.clone());
                self.state = ClientState::Completed;
                self.timers.clear_all();
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    Duration::from_secs(32)
                };
                self.timers.set(Timer::D, now + wait);
                vec![TxAction::Send(ack), TxAction::Deliver]
            }
            (TransactionKind::NonInvite, _) if provisional => {
                if self.state == ClientState::Trying {
                    self.state = ClientState::Proceeding;
                }
                vec![TxAction::Deliver]
            }
            (TransactionKind::NonInvite, _) => {
                self.state = ClientState::Completed;
                self.timers.clear_all();
                let wait = if self.reliable {
                    Duration::ZERO
                } else {
                    self.config.t4
                };
                self.timers.set(Timer::K, now + wait);
                vec![TxAction::Deliver]
            }
        }
    }

    /// Fires every timer due at `now`.
    pub fn on_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        let mut actions = Vec::new();
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::A => {
                    self.interval *= 2;
                    self.timers.set(Timer::A, now + self.interval);
                    actions.push(TxAction::Send(self.request.clone()));
                }
                Timer::E => {
                    self.interval = if self.state == ClientState::Proceeding {
                        self.config.t2
                    } else {
                        (self.interval * 2).min(self.config.t2)
                    };
                    self.timers.set(Timer::E, now + self.interval);
                    actions.push(TxAction::Send(self.request.clone()));
                }
                Timer::B | Timer::F => {
                    self.terminate();
                    actions.push(TxAction::TimedOut);
                }
                Timer::D | Timer::K => self.terminate(),
            }
        }
        actions
    }

    fn terminate(&mut self) {
        self.state = ClientState::Terminated;
        self.timers.clear_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_until_quiet(tx: &mut ClientTransaction, start: Instant) -> (Vec<u64>, Option<u64>) {
        let mut sends = Vec::new();
        let mut timeout = None;
        while let Some(at) = tx.next_timeout() {
            for action in tx.on_timeout(at) {
                let ms = (at - start).as_millis() as u64;
                match action {
                    TxAction::Send(_) => sends.push(ms),
                    TxAction::TimedOut => timeout = Some(ms),
                    TxAction::Deliver => {}
                }
            }
        }
        (sends, timeout)
    }

    fn start(kind: TransactionKind, reliable: bool) -> (ClientTransaction, Instant) {
        let now = crate::sip::core::test_origin();
        let tx = ClientTransaction::start(
            kind,
            "z9hG4bK1".into(),
            Bytes::from_static(b"REQ"),
            reliable,
            TimerConfig::default(),
            now,
        );
        (tx, now)
    }

    #[test]
    fn timer_a_doubles_until_timer_b_at_64_t1() {
        let (mut tx, t0) = start(TransactionKind::Invite, false);
        let (sends, timeout) = run_until_quiet(&mut tx, t0);
        assert_eq!(sends, vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(timeout, Some(32_000));
        assert!(tx.is_terminated());
    }

    #[test]
    fn timer_e_doubles_up_to_t2_then_timer_f() {
        let (mut tx, t0) = start(TransactionKind::NonInvite, false);
        let (sends, timeout) = run_until_quiet(&mut tx, t0);
        let mut expected = vec![500, 1500, 3500, 7500];
        let mut at = 7500;
        while at + 4000 < 32_000 {
            at += 4000;
            expected.push(at);
        }
        assert_eq!(sends, expected);
        assert_eq!(timeout, Some(32_000));
    }

    #[test]
    fn reliable_transports_never_retransmit() {
        let (mut tx, t0) = start(TransactionKind::Invite, true);
        let (sends, timeout) = run_until_quiet(&mut tx, t0);
        assert!(sends.is_empty());
        assert_eq!(timeout, Some(32_000));
    }

    #[test]
    fn provisional_stops_timer_a_and_proceeding_e_uses_t2() {
        let (mut tx, t0) = start(TransactionKind::Invite, false);
        assert_eq!(
            tx.on_response(t0, 180, || unreachable!()),
            vec![TxAction::Deliver]
        );
        let (sends, timeout) = run_until_quiet(&mut tx, t0);
        assert!(sends.is_empty());
        assert_eq!(timeout, Some(32_000));

        let (mut tx, t0) = start(TransactionKind::NonInvite, false);
        tx.on_response(t0, 100, || unreachable!());
        let at = tx.next_timeout().unwrap();
        tx.on_timeout(at);
        assert_eq!(tx.next_timeout(), Some(at + Duration::from_secs(4)));
    }

    #[test]
    fn invite_failure_is_acked_again_on_retransmission_until_timer_d() {
        let (mut tx, t0) = start(TransactionKind::Invite, false);
        let ack = Bytes::from_static(b"ACK");
        let first = tx.on_response(t0, 486, || ack.clone());
        assert_eq!(first, vec![TxAction::Send(ack.clone()), TxAction::Deliver]);
        assert_eq!(
            tx.on_response(t0, 486, || unreachable!()),
            vec![TxAction::Send(ack)]
        );
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(32)));
        tx.on_timeout(t0 + Duration::from_secs(32));
        assert!(tx.is_terminated());
    }

    #[test]
    fn non_invite_final_absorbs_retransmissions_for_t4() {
        let (mut tx, t0) = start(TransactionKind::NonInvite, false);
        assert_eq!(
            tx.on_response(t0, 200, || unreachable!()),
            vec![TxAction::Deliver]
        );
        assert!(tx.on_response(t0, 200, || unreachable!()).is_empty());
        assert_eq!(tx.next_timeout(), Some(t0 + Duration::from_secs(5)));
    }
}
