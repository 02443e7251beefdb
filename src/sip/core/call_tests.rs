//! The call and registration cores in virtual time, against scripted peers.

#[path = "call_flood_tests.rs"]
mod flood;
#[path = "call_srtp_tests.rs"]
mod srtp;

use super::call::{CallCore, CallSetup};
use super::dialog::{LocalParty, Transport, response_to};
use super::dtmf::DtmfTiming;
use super::message::{Framed, SipMessage, parse_datagram};
use super::sdp::{Direction, LocalMedia};
use super::transaction::TimerConfig;
use super::{Authenticator, CallEnd, CallEvent, DtmfMethod, Output};
use crate::secret::{Secret, SecretSource};
use ezk_sip_types::{Method, Name};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const ANSWER_SDP: &str = "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 20000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";
pub(super) const CHALLENGE: &str =
    "Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth\", algorithm=MD5";

fn peer() -> SocketAddr {
    "198.51.100.7:5060".parse().unwrap()
}

pub(super) fn local() -> LocalParty {
    LocalParty {
        aor: "sip:1001@pbx.example.com".into(),
        display_name: None,
        contact: "sip:1001@192.0.2.10:5060".into(),
        sent_by: "192.0.2.10:5060".into(),
        transport: Transport::Udp,
        outbound_proxy: None,
        user_agent: "sipcast-test".into(),
        instance: None,
    }
}

fn setup() -> CallSetup {
    CallSetup {
        call_id: "call-1@test".into(),
        local: local(),
        target: "sip:room@gw.example.com".into(),
        media: LocalMedia {
            address: "192.0.2.10".parse().unwrap(),
            audio_rtp_port: Some(40000),
            video_rtp_port: None,
            direction: Direction::SendRecv,
            video_content: Default::default(),
            crypto: None,
        },
        encryption: super::MediaEncryption::Off,
        answer_timeout: Duration::from_secs(30),
        dtmf_digits: String::new(),
        dtmf_method: DtmfMethod::Info,
        dtmf_delay: Duration::from_secs(1),
        dtmf_timing: DtmfTiming::default(),
        can_send_rtp: false,
        timers: TimerConfig::default(),
    }
}

pub(super) fn password() -> Option<SecretSource> {
    Some(SecretSource::Inline(Secret::new("pw")))
}

pub(super) fn parse(data: &[u8]) -> SipMessage {
    match parse_datagram(data) {
        Ok(Framed::Message(m, _)) => *m,
        other => panic!("we sent something unparsable: {other:?}"),
    }
}

/// Drives a core in virtual time and records what it does.
struct Harness {
    call: CallCore,
    now: Instant,
    sent: Vec<SipMessage>,
    /// Where each message in `sent` went (None: the call's next hop).
    sent_to: Vec<Option<SocketAddr>>,
    events: Vec<CallEvent>,
}

impl Harness {
    fn new(setup: CallSetup, password: Option<SecretSource>) -> Harness {
        let now = super::test_origin();
        let call = CallCore::new(
            setup,
            Authenticator::new("1001", password),
            StdRng::seed_from_u64(7),
            now,
        );
        let mut h = Harness {
            call,
            now,
            sent: Vec::new(),
            sent_to: Vec::new(),
            events: Vec::new(),
        };
        h.drain();
        h
    }

    fn drain(&mut self) {
        while let Some(output) = self.call.poll_output() {
            match output {
                Output::Send { data, to } => {
                    self.sent.push(parse(&data));
                    self.sent_to.push(to);
                }
                Output::Event(e) => self.events.push(e),
                Output::Rtp { .. } => {}
            }
        }
    }

    fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(at) = self.call.poll_timeout().filter(|t| *t <= target) {
            self.now = at.max(self.now);
            self.call.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    fn last(&self, method: Method) -> SipMessage {
        self.sent
            .iter()
            .rev()
            .find(|m| m.method() == Some(&method))
            .cloned()
            .unwrap_or_else(|| panic!("no {method} sent"))
    }

    fn count(&self, method: Method) -> usize {
        self.sent
            .iter()
            .filter(|m| m.method() == Some(&method))
            .count()
    }

    /// Requests of `method` not counting retransmissions.
    fn distinct(&self, method: Method) -> usize {
        let mut branches: Vec<_> = self
            .sent
            .iter()
            .filter(|m| m.method() == Some(&method))
            .map(|m| m.branch())
            .collect();
        branches.dedup();
        branches.len()
    }

    /// The peer answers our last `method` request.
    fn answer(
        &mut self,
        method: Method,
        code: u16,
        tag: &str,
        extra: &[(Name, &str)],
        body: Option<&str>,
    ) {
        let req = self.last(method);
        let mut resp = response_to(&req, code, "Reason", Some(tag));
        for (name, value) in extra {
            resp.push(name.clone(), value.to_string());
        }
        if (200..300).contains(&code) {
            resp.push(Name::CONTACT, "<sip:room@198.51.100.7:5060>");
        }
        if let Some(body) = body {
            resp = resp.with_body("application/sdp", body.to_string());
        }
        self.call
            .handle_message(self.now, parse(&resp.to_bytes()), peer());
        self.drain();
    }

    /// The peer sends an in-dialog request.
    fn peer_request(
        &mut self,
        method: Method,
        cseq: u32,
        extra: &[(Name, &str)],
        body: Option<&str>,
    ) {
        let invite = self.last(Method::INVITE);
        let mut req = SipMessage::request(method.clone(), "sip:1001@192.0.2.10:5060")
            .with(
                Name::VIA,
                format!("SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKpeer{cseq}"),
            )
            .with(Name::FROM, "<sip:room@gw.example.com>;tag=peer")
            .with(Name::TO, invite.header(&Name::FROM).unwrap().to_string())
            .with(Name::CALL_ID, "call-1@test")
            .with(Name::CSEQ, format!("{cseq} {method}"))
            .with(Name::CONTACT, "<sip:room@198.51.100.7:5060>");
        for (name, value) in extra {
            req.push(name.clone(), value.to_string());
        }
        if let Some(body) = body {
            req = req.with_body("application/sdp", body.to_string());
        }
        self.call
            .handle_message(self.now, parse(&req.to_bytes()), peer());
        self.drain();
    }

    fn responses(&self, code: u16) -> Vec<&SipMessage> {
        self.sent
            .iter()
            .filter(|m| m.status() == Some(code))
            .collect()
    }

    fn ended(&self) -> Option<&CallEnd> {
        self.events.iter().find_map(|e| match e {
            CallEvent::Ended(end) => Some(end),
            _ => None,
        })
    }

    fn established(&mut self) {
        self.answer(Method::INVITE, 200, "peer", &[], Some(ANSWER_SDP));
        assert!(
            self.events
                .iter()
                .any(|e| matches!(e, CallEvent::Established { .. })),
            "{:?}",
            self.events
        );
    }
}

#[test]
fn invite_challenged_with_407_is_resent_with_proxy_authorization() {
    let mut h = Harness::new(setup(), password());
    h.answer(
        Method::INVITE,
        407,
        "proxy",
        &[(Name::PROXY_AUTHENTICATE, CHALLENGE)],
        None,
    );
    assert_eq!(
        h.count(Method::ACK),
        1,
        "the 407 is ACKed by the transaction"
    );
    assert_eq!(h.count(Method::INVITE), 2);
    let retry = h.last(Method::INVITE);
    assert_eq!(retry.cseq().unwrap().cseq, 2);
    assert_ne!(retry.branch(), h.sent[0].branch());
    let auth = retry
        .header(&Name::PROXY_AUTHORIZATION)
        .expect("Proxy-Authorization");
    assert!(
        auth.contains("username=\"1001\"")
            && auth.contains("nc=00000001")
            && auth.contains("uri=\"sip:room@gw.example.com\""),
        "{auth}"
    );
    h.established();
}

#[test]
fn a_second_challenge_ends_the_attempt_unless_the_nonce_was_stale() {
    let mut h = Harness::new(setup(), password());
    h.answer(
        Method::INVITE,
        401,
        "a",
        &[(Name::WWW_AUTHENTICATE, CHALLENGE)],
        None,
    );
    let stale = "Digest realm=\"pbx\", nonce=\"n2\", qop=\"auth\", stale=true";
    h.answer(
        Method::INVITE,
        401,
        "b",
        &[(Name::WWW_AUTHENTICATE, stale)],
        None,
    );
    assert_eq!(
        h.count(Method::INVITE),
        3,
        "stale=true earns one more round"
    );
    assert!(
        h.last(Method::INVITE)
            .header(&Name::AUTHORIZATION)
            .unwrap()
            .contains("nonce=\"n2\"")
    );
    h.answer(
        Method::INVITE,
        401,
        "c",
        &[(Name::WWW_AUTHENTICATE, stale)],
        None,
    );
    assert_eq!(h.count(Method::INVITE), 3, "no loop");
    let end = h.ended().expect("ended");
    assert_eq!(end.sip_status, Some(401));
    assert!(end.reason.contains("rejected"), "{end:?}");
}

#[test]
fn an_unreadable_password_ends_the_attempt_and_says_why() {
    let source = SecretSource::File("/nonexistent/sipcast-pw".into());
    let mut h = Harness::new(setup(), Some(source));
    h.answer(
        Method::INVITE,
        401,
        "a",
        &[(Name::WWW_AUTHENTICATE, CHALLENGE)],
        None,
    );
    let end = h.ended().expect("ended");
    assert!(
        end.reason.contains("cannot read the SIP password")
            && end.reason.contains("/nonexistent/sipcast-pw"),
        "{end:?}"
    );
}

#[test]
fn answer_timeout_cancels_after_a_provisional_and_reports_408() {
    let mut h = Harness::new(setup(), None);
    h.answer(Method::INVITE, 180, "ring", &[], None);
    assert!(h.events.contains(&CallEvent::Ringing { status: 180 }));
    h.advance(Duration::from_secs(30));
    let cancel = h.last(Method::CANCEL);
    assert_eq!(
        cancel.branch(),
        h.last(Method::INVITE).branch(),
        "CANCEL reuses the INVITE branch"
    );
    assert_eq!(cancel.cseq().unwrap().cseq, 1);
    h.answer(Method::INVITE, 183, "ring", &[], None);
    assert_eq!(
        h.distinct(Method::CANCEL),
        1,
        "a later provisional does not CANCEL again"
    );
    h.answer(Method::CANCEL, 200, "ring", &[], None);
    h.answer(Method::INVITE, 487, "ring", &[], None);
    let end = h.ended().expect("ended");
    assert_eq!(
        (end.sip_status, end.reason.as_str()),
        (Some(408), "no answer within 30s")
    );
}

#[test]
fn hangup_before_any_provisional_cancels_once_100_trying_arrives() {
    let mut h = Harness::new(setup(), None);
    h.call.hangup(h.now);
    h.drain();
    assert_eq!(
        h.count(Method::CANCEL),
        0,
        "RFC 3261 §9.1: not before a provisional"
    );
    h.answer(Method::INVITE, 100, "", &[], None);
    assert_eq!(h.count(Method::CANCEL), 1);
    h.answer(Method::INVITE, 487, "x", &[], None);
    assert_eq!(h.ended().map(|e| e.reason.as_str()), Some("hung up"));
}

#[test]
fn service_unavailable_carries_retry_after() {
    let mut h = Harness::new(setup(), None);
    h.answer(
        Method::INVITE,
        503,
        "x",
        &[(Name::RETRY_AFTER, "120 (maintenance)")],
        None,
    );
    let end = h.ended().expect("ended");
    assert_eq!(end.sip_status, Some(503));
    assert_eq!(end.retry_after, Some(Duration::from_secs(120)));
}

#[test]
fn no_response_at_all_is_timer_b_408() {
    let mut h = Harness::new(setup(), None);
    h.advance(Duration::from_secs(33));
    assert_eq!(h.count(Method::INVITE), 7, "initial + 6 retransmissions");
    assert_eq!(h.ended().and_then(|e| e.sip_status), Some(408));
}

#[test]
fn forked_answers_first_2xx_wins_others_are_acked_and_byed() {
    let mut h = Harness::new(setup(), None);
    h.established();
    h.answer(Method::INVITE, 200, "fork2", &[], Some(ANSWER_SDP));
    let acks: Vec<_> = h
        .sent
        .iter()
        .filter(|m| m.method() == Some(&Method::ACK))
        .collect();
    assert_eq!(acks.len(), 2);
    let bye = h.last(Method::BYE);
    assert_eq!(bye.to_tag().as_deref(), Some("fork2"));
    assert_eq!(
        h.events
            .iter()
            .filter(|e| matches!(e, CallEvent::Established { .. }))
            .count(),
        1
    );
    // A retransmitted 2xx of the winner (a peer's T1 later) gets the same ACK again.
    h.advance(Duration::from_millis(500));
    h.answer(Method::INVITE, 200, "peer", &[], Some(ANSWER_SDP));
    let winner_acks: Vec<_> = h
        .sent
        .iter()
        .filter(|m| m.method() == Some(&Method::ACK) && m.to_tag().as_deref() == Some("peer"))
        .collect();
    assert_eq!(winner_acks.len(), 2);
    assert_eq!(winner_acks[0].branch(), winner_acks[1].branch());
}

#[test]
fn in_dialog_requests_go_to_the_contact_unless_an_outbound_proxy_is_set() {
    let mut h = Harness::new(setup(), None);
    h.established();
    h.call.hangup(h.now);
    h.drain();
    assert_eq!(
        h.sent_to.last(),
        Some(&Some("198.51.100.7:5060".parse().unwrap()))
    );

    let mut via_proxy = setup();
    via_proxy.local.outbound_proxy = Some("sip:sbc.example.com;lr".into());
    let mut h = Harness::new(via_proxy, None);
    assert_eq!(
        h.sent[0].header(&Name::ROUTE),
        Some("<sip:sbc.example.com;lr>")
    );
    h.established();
    h.call.hangup(h.now);
    h.drain();
    assert_eq!(h.last(Method::BYE).method(), Some(&Method::BYE));
    assert_eq!(h.sent_to.last(), Some(&None));
}

#[test]
fn peer_bye_is_answered_and_ends_the_call() {
    let mut h = Harness::new(setup(), None);
    h.established();
    h.peer_request(Method::BYE, 1, &[], None);
    assert_eq!(h.responses(200).len(), 1);
    assert!(h.ended().is_some_and(|e| e.by_remote));
}

#[test]
fn peer_reinvite_is_answered_retransmitted_until_ack_and_reported() {
    let mut h = Harness::new(setup(), None);
    h.established();
    let moved = ANSWER_SDP
        .replace("20000", "20010")
        .replace("a=rtpmap", "a=sendonly\r\na=rtpmap");
    h.peer_request(
        Method::INVITE,
        1,
        &[(Name::SESSION_EXPIRES, "90;refresher=uac")],
        Some(&moved),
    );
    let ok = h.responses(200)[0].clone();
    assert!(
        String::from_utf8_lossy(&ok.body).contains("a=recvonly"),
        "hold is mirrored"
    );
    assert_eq!(ok.header(&Name::SESSION_EXPIRES), Some("90;refresher=uac"));
    assert!(h.events.iter().any(|e| matches!(e, CallEvent::MediaChanged(m) if m.audio.as_ref().unwrap().remote_rtp.port() == 20010)));
    h.advance(Duration::from_millis(1600));
    assert_eq!(
        h.responses(200).len(),
        3,
        "200 resent at T1 and 2·T1 until the ACK"
    );
    h.peer_request(Method::ACK, 1, &[], None);
    h.advance(Duration::from_secs(10));
    assert_eq!(h.responses(200).len(), 3);
    // The retransmitted re-INVITE gets the same 200 back.
    h.peer_request(Method::INVITE, 1, &[], Some(&moved));
    assert_eq!(h.responses(200).len(), 4);
}

#[test]
fn stray_and_unknown_requests_get_481_and_405() {
    let mut h = Harness::new(setup(), None);
    h.established();
    h.peer_request(Method::MESSAGE, 1, &[], None);
    assert_eq!(h.responses(405).len(), 1);
    assert!(h.responses(405)[0].header(&Name::ALLOW).is_some());
    let mut stray = SipMessage::request(Method::INFO, "sip:x")
        .with(Name::VIA, "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKs")
        .with(Name::FROM, "<sip:a>;tag=someone-else")
        .with(Name::TO, "<sip:b>;tag=not-ours")
        .with(Name::CALL_ID, "call-1@test")
        .with(Name::CSEQ, "9 INFO");
    stray.body = bytes::Bytes::new();
    h.call
        .handle_message(h.now, parse(&stray.to_bytes()), peer());
    h.drain();
    assert_eq!(h.responses(481).len(), 1);
}

#[test]
fn we_refresh_the_session_at_half_the_interval_when_we_are_refresher() {
    let mut h = Harness::new(setup(), None);
    h.answer(
        Method::INVITE,
        200,
        "peer",
        &[
            (Name::SESSION_EXPIRES, "90;refresher=uac"),
            (Name::ALLOW, "INVITE, ACK, BYE, UPDATE"),
        ],
        Some(ANSWER_SDP),
    );
    h.advance(Duration::from_secs(44));
    assert_eq!(h.count(Method::UPDATE), 0);
    h.advance(Duration::from_secs(2));
    let update = h.last(Method::UPDATE);
    assert_eq!(
        update.header(&Name::SESSION_EXPIRES),
        Some("90;refresher=uac")
    );
    h.answer(
        Method::UPDATE,
        200,
        "peer",
        &[(Name::SESSION_EXPIRES, "90;refresher=uac")],
        None,
    );
    h.advance(Duration::from_secs(46));
    assert_eq!(h.distinct(Method::UPDATE), 2, "and again 45 s later");
}

#[test]
fn a_silent_refresher_peer_gets_bye_before_the_session_expires() {
    let mut h = Harness::new(setup(), None);
    h.answer(
        Method::INVITE,
        200,
        "peer",
        &[(Name::SESSION_EXPIRES, "90;refresher=uas")],
        Some(ANSWER_SDP),
    );
    h.advance(Duration::from_secs(59));
    assert_eq!(h.count(Method::BYE), 0);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.distinct(Method::BYE), 1, "at 90 - min(32, 30) = 60 s");
}

#[test]
fn session_interval_too_small_422_retries_with_min_se() {
    let mut h = Harness::new(setup(), None);
    h.answer(Method::INVITE, 422, "x", &[(Name::MIN_SE, "3600")], None);
    let retry = h.last(Method::INVITE);
    assert_eq!(retry.header(&Name::SESSION_EXPIRES), Some("3600"));
    assert_eq!(retry.cseq().unwrap().cseq, 2);
}

#[test]
fn info_dtmf_goes_digit_by_digit_with_pauses() {
    let mut s = setup();
    s.dtmf_digits = "1,2".into();
    let mut h = Harness::new(s, None);
    h.established();
    h.advance(Duration::from_millis(1000));
    assert_eq!(h.count(Method::INFO), 1);
    assert_eq!(
        &h.last(Method::INFO).body[..],
        b"Signal=1\r\nDuration=160\r\n"
    );
    h.answer(Method::INFO, 200, "peer", &[], None);
    assert!(
        h.events
            .contains(&CallEvent::DtmfSent { so_far: "1".into() })
    );
    // 160 ms + 100 ms after the answer, then the 500 ms pause.
    h.advance(Duration::from_millis(750));
    assert_eq!(h.count(Method::INFO), 1);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.count(Method::INFO), 2);
}

#[test]
fn keyframe_request_is_an_info_with_picture_fast_update() {
    let mut h = Harness::new(setup(), None);
    h.established();
    h.call.request_keyframe(h.now);
    h.drain();
    let info = h.last(Method::INFO);
    assert_eq!(info.content_type(), Some("application/media_control+xml"));
    assert!(String::from_utf8_lossy(&info.body).contains("<picture_fast_update/>"));
}
