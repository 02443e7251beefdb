//! The engine's datagram path without sockets, for fuzzing and scenario tests: the same
//! [`EngineState`] the daemon's SIP task runs (parse, route by Call-ID into calls, transactions
//! and dialogs, stateless answers to strangers), with one live call established, driven in
//! virtual time. Not part of sipcast's API.

use super::engine::{Action, EngineState, Hop};
use super::{Account, CallConfig, Command, DtmfPlan, LocalMedia, UaConfig, UaStats};
use crate::sip::core::CallEvent;
use crate::sip::core::dialog::{Transport, response_to};
use crate::sip::core::message::{Framed, parse_datagram};
use crate::spec::DtmfMethod;
use bytes::Bytes;
use ezk_sip_types::{Method, Name};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Call-ID of the harness's live call.
pub const LIVE_CALL_ID: &str = "live-call@sipcast";
/// Where the live call's callee is.
pub const CALLEE: &str = "192.0.2.5:5060";

/// One engine with a live call.
pub struct EngineHarness {
    state: EngineState,
    stats: Arc<UaStats>,
    events: mpsc::UnboundedReceiver<CallEvent>,
    /// What the engine put on the wire: (to, bytes).
    pub sent: Vec<(SocketAddr, Bytes)>,
    /// What the live call reported.
    pub call_events: Vec<CallEvent>,
    /// The live call's INVITE, for building answers.
    invite: Option<Bytes>,
    pub now: Instant,
}

fn callee() -> SocketAddr {
    CALLEE
        .parse()
        .unwrap_or(SocketAddr::from(([192, 0, 2, 5], 5060)))
}

impl EngineHarness {
    /// An engine that dialed [`CALLEE`] at `now`; call [`Self::answer`] to establish it.
    pub fn new(now: Instant) -> Self {
        let local = SocketAddr::from(([192, 0, 2, 1], 5060));
        let stats = Arc::new(UaStats::default());
        let mut state = EngineState::new(UaConfig::new(local), local, stats.clone());
        state.seed(7);
        let (events_tx, events) = mpsc::unbounded_channel();
        let config = CallConfig {
            account: Account {
                user: "fuzz".into(),
                domain: "example.com".into(),
                auth_user: None,
                password: None,
                register: false,
                registrar: None,
                proxy: None,
                transport: Transport::Udp,
                display_name: None,
                tls: Default::default(),
            },
            to: "sip:room@192.0.2.5".into(),
            answer_timeout: Duration::from_secs(60),
            local_media: LocalMedia {
                audio_rtp_port: Some(40000),
                video_rtp_port: Some(40002),
                ..Default::default()
            },
            dtmf: DtmfPlan {
                digits: "12#".into(),
                method: DtmfMethod::Info,
                delay: Duration::from_millis(100),
            },
            dtmf_rtp: None,
        };
        let hop = Hop {
            addr: callee(),
            transport: Transport::Udp,
        };
        state.start_call_at(now, LIVE_CALL_ID.into(), config, events_tx, hop);
        let mut harness = EngineHarness {
            state,
            stats,
            events,
            sent: Vec::new(),
            call_events: Vec::new(),
            invite: None,
            now,
        };
        harness.flush();
        harness.invite = harness.sent.first().map(|(_, data)| data.clone());
        harness
    }

    /// The callee answers 200 with SDP: the call is established.
    pub fn answer(&mut self) {
        let Some(Ok(Framed::Message(invite, _))) = self.invite.as_deref().map(parse_datagram)
        else {
            return;
        };
        let sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.5\r\ns=-\r\nc=IN IP4 192.0.2.5\r\nt=0 0\r\n\
                   m=audio 20000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n\
                   m=video 20002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
        let ok = response_to(&invite, 200, "OK", Some("callee"))
            .with(Name::CONTACT, format!("<sip:room@{CALLEE}>"))
            .with(Name::ALLOW, "INVITE, ACK, BYE, CANCEL, UPDATE, INFO")
            .with(Name::SESSION_EXPIRES, "90;refresher=uas")
            .with_body("application/sdp", sdp);
        self.datagram(callee(), &ok.to_bytes());
    }

    /// True once the live call reported Established and not Ended.
    pub fn is_established(&self) -> bool {
        self.call_events
            .iter()
            .any(|e| matches!(e, CallEvent::Established { .. }))
            && !self.is_ended()
    }

    pub fn is_ended(&self) -> bool {
        self.call_events
            .iter()
            .any(|e| matches!(e, CallEvent::Ended(_)))
    }

    /// The live call's INVITE (its Via branch, tags and CSeq let a test forge answers).
    pub fn invite(&self) -> Option<&Bytes> {
        self.invite.as_ref()
    }

    /// One datagram from `source`, through the engine's whole receive path.
    pub fn datagram(&mut self, source: SocketAddr, data: &[u8]) {
        self.state
            .on_datagram(self.now, source, Transport::Udp, data);
        self.flush();
    }

    /// Moves virtual time forward, firing every timer due on the way.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(at) = self.state.next_timeout().filter(|t| *t <= target) {
            self.now = at.max(self.now);
            self.state.fire_timers(self.now);
            self.flush();
        }
        self.now = target;
    }

    /// Hangs the live call up (BYE).
    pub fn hangup(&mut self) {
        let (done, _wait) = tokio::sync::oneshot::channel();
        self.state.on_command(
            self.now,
            Command::Hangup {
                call_id: LIVE_CALL_ID.into(),
                done,
            },
        );
        self.flush();
    }

    /// Shuts the engine down; true when it has nothing left to do.
    pub fn shutdown(&mut self) -> bool {
        self.state.begin_shutdown(self.now, None);
        self.flush();
        self.state.is_idle()
    }

    pub fn is_idle(&self) -> bool {
        self.state.is_idle()
    }

    pub fn counters(&self) -> super::UaCounters {
        self.stats.snapshot()
    }

    /// Bytes put on the wire so far.
    pub fn bytes_sent(&self) -> usize {
        self.sent.iter().map(|(_, d)| d.len()).sum()
    }

    /// Sent messages of `method` (requests only).
    pub fn sent_requests(&self, method: &Method) -> usize {
        self.sent
            .iter()
            .filter(|(_, d)| {
                matches!(parse_datagram(d), Ok(Framed::Message(m, _)) if m.method() == Some(method))
            })
            .count()
    }

    fn flush(&mut self) {
        self.state.drain(self.now);
        while let Some(action) = self.state.poll_action() {
            match action {
                Action::Send(hop, data) | Action::Reply(hop, data) => {
                    self.sent.push((hop.addr, data))
                }
                Action::Resolve { .. } | Action::FlowTimer(..) => {}
            }
        }
        while let Ok(event) = self.events.try_recv() {
            self.call_events.push(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forged_2xx(h: &EngineHarness, tag: &str) -> Vec<u8> {
        let Some(Ok(Framed::Message(invite, _))) = h.invite().map(|d| parse_datagram(d)) else {
            panic!("no INVITE");
        };
        response_to(&invite, 200, "OK", Some(tag))
            .with(Name::CONTACT, "<sip:victim@203.0.113.9:5060>")
            .to_bytes()
            .to_vec()
    }

    #[test]
    fn the_live_call_survives_hostile_datagrams_and_every_flood_stays_bounded() {
        let mut h = EngineHarness::new(crate::sip::core::test_origin());
        h.answer();
        assert!(h.is_established(), "{:?}", h.call_events);
        let sent_before = h.bytes_sent();
        let mut received = 0;
        let attacker: SocketAddr = "203.0.113.66:5060".parse().unwrap();
        // The crash, invalid UTF-8, and a stray INVITE flood.
        let crash = "OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bKx\r\n\
            From: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\
            Authorization: abcdefé\r\n\r\n";
        for data in [crash.as_bytes(), b"\xff\xfe\xfd\r\n\r\n".as_slice()] {
            received += data.len();
            h.datagram(attacker, data);
        }
        for i in 0..5_000 {
            let invite = format!(
                "INVITE sip:x SIP/2.0\r\nVia: SIP/2.0/UDP a;branch=z9hG4bK{i}\r\n\
                 From: <sip:a>;tag={i}\r\nTo: <sip:b>\r\nCall-ID: flood{i}\r\nCSeq: 1 INVITE\r\n\r\n"
            );
            received += invite.len();
            h.datagram(attacker, invite.as_bytes());
            h.now += Duration::from_micros(200);
        }
        // 10 000 forged 2xx with the live Call-ID and new To tags (an on-path attacker who
        // knows our branch; without it they are dropped outright).
        for i in 0..10_000 {
            let data = forged_2xx(&h, &format!("forged{i}"));
            received += data.len();
            h.datagram(attacker, &data);
            h.now += Duration::from_micros(100);
        }
        h.advance(Duration::from_secs(5));
        assert!(h.is_established(), "{:?}", h.call_events);
        let sent = h.bytes_sent() - sent_before;
        assert!(
            sent * 20 < received,
            "sent {sent} B for {received} B received"
        );
        let counters = h.counters();
        assert!(counters.stray_rate_limited > 4_000, "{counters:?}");
        assert_eq!(counters.forks_refused, 10_000 - 15, "{counters:?}");
    }

    #[test]
    fn shutdown_with_a_callee_that_never_answers_bye_ends_within_the_deadline() {
        let mut h = EngineHarness::new(crate::sip::core::test_origin());
        h.answer();
        let start = h.now;
        assert!(!h.shutdown());
        h.advance(Duration::from_secs(3));
        assert!(h.is_idle(), "everything abandoned by {:?}", h.now - start);
        assert!(h.is_ended());
        let byes = h.sent_requests(&Method::BYE);
        assert!((1..=3).contains(&byes), "{byes} BYEs");
    }

    #[test]
    fn shutdown_while_a_silent_callee_rings_ends_within_the_deadline() {
        let mut h = EngineHarness::new(crate::sip::core::test_origin());
        assert!(!h.shutdown());
        h.advance(Duration::from_secs(3));
        assert!(h.is_idle());
        assert!(h.is_ended());
    }
}
