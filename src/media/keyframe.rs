//! When to ask the sender for an IDR picture, and when to give up on RTCP and escalate.
//!
//! A request episode opens at call start, after loss (the depacketizer waits for an IDR), on
//! demand (an RTMP target (re)connected and needs a keyframe to start from) and when the observed
//! keyframe interval exceeds the limit (CDNs want ≤ 4 s GOPs). While it is open, the policy asks
//! with RTCP PLI (RFC 4585 §6.3.1), or FIR (RFC 5104 §4.3.1) when negotiated, and repeats every
//! `retry`; after `escalate_after` unanswered requests it says [`KeyframeAction::Escalate`] once,
//! so the call leg can send SIP INFO `picture_fast_update` (RFC 5168). An IDR closes the episode.
//!
//! Drive it: call the `on_*` inputs, then [`KeyframePolicy::poll_action`] until `None`, and wake
//! up at [`KeyframePolicy::poll_timeout`].

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyframePolicyConfig {
    /// Request a keyframe when none has come for this long.
    pub max_interval: Duration,
    /// Repeat an unanswered request after this long.
    pub retry: Duration,
    /// Unanswered requests before escalating.
    pub escalate_after: u32,
    /// FIR was negotiated (`a=rtcp-fb:* ccm fir`); otherwise PLI.
    pub use_fir: bool,
}

impl Default for KeyframePolicyConfig {
    fn default() -> Self {
        KeyframePolicyConfig {
            max_interval: Duration::from_secs(4),
            retry: Duration::from_secs(1),
            escalate_after: 3,
            use_fir: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyframeAction {
    SendPli,
    /// Send a FIR with this command sequence number.
    SendFir {
        seq: u8,
    },
    /// RTCP requests went unanswered: ask through the signalling path.
    Escalate,
}

#[derive(Clone, Debug)]
pub struct KeyframePolicy {
    config: KeyframePolicyConfig,
    /// When the open episode began.
    pending_since: Option<Instant>,
    last_request: Option<Instant>,
    requests: u32,
    escalated: bool,
    last_keyframe: Option<Instant>,
    observed_interval: Option<Duration>,
    fir_seq: u8,
    /// Requests sent in total, for status.
    pub requests_sent: u64,
    pub escalations: u64,
}

impl KeyframePolicy {
    pub fn new(config: KeyframePolicyConfig) -> Self {
        KeyframePolicy {
            config,
            pending_since: None,
            last_request: None,
            requests: 0,
            escalated: false,
            last_keyframe: None,
            observed_interval: None,
            fir_seq: 0,
            requests_sent: 0,
            escalations: 0,
        }
    }

    /// Opens a request episode (start, loss, RTMP reconnect); no-op when one is open.
    pub fn request(&mut self, now: Instant) {
        if self.pending_since.is_none() {
            self.pending_since = Some(now);
            self.requests = 0;
            self.escalated = false;
        }
    }

    pub fn on_keyframe(&mut self, now: Instant) {
        if let Some(last) = self.last_keyframe.replace(now) {
            self.observed_interval = Some(now.saturating_duration_since(last));
        }
        self.pending_since = None;
        self.requests = 0;
        self.escalated = false;
    }

    /// Time between the last two keyframes.
    pub fn observed_interval(&self) -> Option<Duration> {
        self.observed_interval
    }

    /// Whether an episode is open (video is waiting for a keyframe).
    pub fn waiting(&self) -> bool {
        self.pending_since.is_some()
    }

    pub fn poll_action(&mut self, now: Instant) -> Option<KeyframeAction> {
        if self.pending_since.is_none()
            && self
                .last_keyframe
                .is_some_and(|last| now.saturating_duration_since(last) >= self.config.max_interval)
        {
            self.request(now);
        }
        self.pending_since?;
        if self
            .last_request
            .is_some_and(|last| now < last + self.config.retry)
            && self.requests > 0
        {
            return None;
        }
        if self.requests >= self.config.escalate_after && !self.escalated {
            self.escalated = true;
            self.escalations += 1;
            return Some(KeyframeAction::Escalate);
        }
        self.requests += 1;
        self.requests_sent += 1;
        self.last_request = Some(now);
        Some(if self.config.use_fir {
            self.fir_seq = self.fir_seq.wrapping_add(1);
            KeyframeAction::SendFir { seq: self.fir_seq }
        } else {
            KeyframeAction::SendPli
        })
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.pending_since, self.last_request, self.last_keyframe) {
            (Some(_), Some(last), _) if self.requests > 0 => Some(last + self.config.retry),
            (Some(since), _, _) => Some(since),
            (None, _, Some(keyframe)) => Some(keyframe + self.config.max_interval),
            (None, _, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(policy: &mut KeyframePolicy, now: Instant) -> Vec<KeyframeAction> {
        std::iter::from_fn(|| policy.poll_action(now)).collect()
    }

    #[test]
    fn asks_at_start_repeats_then_escalates_once() {
        let t0 = crate::clock::monotonic().into_std();
        let s = Duration::from_secs;
        let mut policy = KeyframePolicy::new(KeyframePolicyConfig::default());
        assert_eq!(drain(&mut policy, t0), vec![]);
        policy.request(t0);
        assert_eq!(drain(&mut policy, t0), vec![KeyframeAction::SendPli]);
        assert_eq!(policy.poll_timeout(), Some(t0 + s(1)));
        assert_eq!(drain(&mut policy, t0 + Duration::from_millis(500)), vec![]);
        assert_eq!(drain(&mut policy, t0 + s(1)), vec![KeyframeAction::SendPli]);
        assert_eq!(drain(&mut policy, t0 + s(2)), vec![KeyframeAction::SendPli]);
        assert_eq!(
            drain(&mut policy, t0 + s(3)),
            vec![KeyframeAction::Escalate, KeyframeAction::SendPli]
        );
        assert_eq!(drain(&mut policy, t0 + s(4)), vec![KeyframeAction::SendPli]);
        policy.on_keyframe(t0 + s(4));
        assert!(!policy.waiting());
        assert_eq!(drain(&mut policy, t0 + s(5)), vec![]);
    }

    #[test]
    fn a_long_gop_triggers_a_request_and_fir_when_negotiated() {
        let t0 = crate::clock::monotonic().into_std();
        let s = Duration::from_secs;
        let mut policy = KeyframePolicy::new(KeyframePolicyConfig {
            use_fir: true,
            ..Default::default()
        });
        policy.on_keyframe(t0);
        policy.on_keyframe(t0 + s(2));
        assert_eq!(policy.observed_interval(), Some(s(2)));
        assert_eq!(policy.poll_timeout(), Some(t0 + s(6)));
        assert_eq!(drain(&mut policy, t0 + s(5)), vec![]);
        assert_eq!(
            drain(&mut policy, t0 + s(6)),
            vec![KeyframeAction::SendFir { seq: 1 }]
        );
        assert_eq!(
            drain(&mut policy, t0 + s(7)),
            vec![KeyframeAction::SendFir { seq: 2 }]
        );
    }

    #[test]
    fn an_on_demand_request_during_an_episode_does_not_restart_it() {
        let t0 = crate::clock::monotonic().into_std();
        let mut policy = KeyframePolicy::new(KeyframePolicyConfig::default());
        policy.request(t0);
        drain(&mut policy, t0);
        policy.request(t0 + Duration::from_millis(100));
        assert_eq!(drain(&mut policy, t0 + Duration::from_millis(100)), vec![]);
    }
}
