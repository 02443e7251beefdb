//! A live call against floods (issue 10): forged and repeated 2xx, forged in-dialog requests,
//! and a callee that never answers our hang-up. What we send must stay bounded whatever
//! arrives.

use super::*;
use crate::sip::core::call::{HANGUP_WAIT, MAX_FORKS};

/// A 2xx to our INVITE (right branch) from a "fork" with this To tag and Contact.
fn forged_2xx(h: &Harness, tag: &str, branch: Option<&str>) -> bytes::Bytes {
    let invite = h.last(Method::INVITE);
    let mut resp = response_to(&invite, 200, "OK", Some(tag));
    if let Some(branch) = branch {
        resp.headers.remove(&Name::VIA);
        resp.push(
            Name::VIA,
            format!("SIP/2.0/UDP 192.0.2.10:5060;branch={branch}"),
        );
    }
    resp.push(Name::CONTACT, "<sip:victim@203.0.113.9:5060>");
    resp.with_body("application/sdp", ANSWER_SDP).to_bytes()
}

fn wire_len(h: &Harness) -> usize {
    h.sent.iter().map(|m| m.to_bytes().len()).sum()
}

#[test]
fn ten_thousand_forks_get_at_most_max_forks_acks_and_one_bye_each() {
    let mut h = Harness::new(setup(), None);
    h.established();
    let before = h.sent.len();
    let sent_before = wire_len(&h);
    let mut received = 0;
    for i in 0..10_000 {
        let data = forged_2xx(&h, &format!("forged{i}"), None);
        received += data.len();
        h.call.handle_message(h.now, parse(&data), peer());
        h.drain();
        h.now += Duration::from_micros(100);
    }
    h.advance(Duration::from_secs(40));
    let new = &h.sent[before..];
    let acks = new
        .iter()
        .filter(|m| m.method() == Some(&Method::ACK))
        .count();
    let byes = new
        .iter()
        .filter(|m| m.method() == Some(&Method::BYE))
        .count();
    // The first 2xx (tag "peer") is one of the MAX_FORKS dialogs.
    assert_eq!(acks, MAX_FORKS - 1);
    assert_eq!(byes, MAX_FORKS - 1, "one BYE per fork, never retransmitted");
    let sent = wire_len(&h) - sent_before;
    assert!(
        sent * 100 < received,
        "sent {sent} B for {received} B received"
    );
    let counts = h.call.take_flood_counts();
    assert_eq!(counts.forks_refused, 10_000 - (MAX_FORKS as u64 - 1));
    // The real call is untouched.
    assert!(h.ended().is_none());
}

#[test]
fn a_2xx_with_a_branch_we_never_sent_is_ignored() {
    let mut h = Harness::new(setup(), None);
    let data = forged_2xx(&h, "forged", Some("z9hG4bKnotours"));
    h.call.handle_message(h.now, parse(&data), peer());
    h.drain();
    assert_eq!(h.count(Method::ACK), 0);
    assert!(
        !h.events
            .iter()
            .any(|e| matches!(e, CallEvent::Established { .. }))
    );
    assert_eq!(h.call.take_flood_counts().foreign_2xx, 1);
    h.established();
    let data = forged_2xx(&h, "forged", Some("z9hG4bKnotours"));
    h.call.handle_message(h.now, parse(&data), peer());
    h.drain();
    assert_eq!(h.count(Method::ACK), 1, "only the real answer's ACK");
    assert_eq!(h.count(Method::BYE), 0);
}

#[test]
fn a_retransmitted_2xx_flood_is_re_acked_at_a_bounded_rate() {
    let mut h = Harness::new(setup(), None);
    h.established();
    // 10 000 copies of the winner's 2xx over 5 s.
    for _ in 0..10_000 {
        h.answer(Method::INVITE, 200, "peer", &[], Some(ANSWER_SDP));
        h.now += Duration::from_micros(500);
    }
    let acks = h.count(Method::ACK);
    // At most one re-ACK per T1/2 (250 ms): 20 in 5 s, plus the first.
    assert!(
        (2..=21).contains(&acks),
        "{acks} ACKs for 10 000 copies in 5 s"
    );
    assert!(h.call.take_flood_counts().acks_suppressed > 9_900);
}

#[test]
fn forged_in_dialog_requests_get_rate_limited_481s() {
    let mut h = Harness::new(setup(), None);
    h.established();
    for i in 0..5_000 {
        let stray = SipMessage::request(Method::INFO, "sip:x")
            .with(Name::VIA, "SIP/2.0/UDP 198.51.100.7;branch=z9hG4bKs")
            .with(Name::FROM, "<sip:a>;tag=someone-else")
            .with(Name::TO, "<sip:b>;tag=not-ours")
            .with(Name::CALL_ID, "call-1@test")
            .with(Name::CSEQ, format!("{i} INFO"));
        h.call
            .handle_message(h.now, parse(&stray.to_bytes()), peer());
        h.drain();
        h.now += Duration::from_millis(1);
    }
    let answered = h.responses(481).len();
    // A burst of 40, then 20/s over 5 s.
    assert!((40..=150).contains(&answered), "{answered} answers");
    assert!(h.ended().is_none());
}

#[test]
fn hangup_toward_a_silent_callee_ends_within_the_hangup_wait() {
    let mut h = Harness::new(setup(), None);
    h.established();
    h.call.hangup(h.now);
    h.drain();
    let start = h.now;
    h.advance(HANGUP_WAIT + Duration::from_millis(1));
    let end = h.ended().expect("ended after the wait");
    assert_eq!(end.reason, "hung up");
    assert!(h.call.is_ended());
    assert!(h.count(Method::BYE) <= 4, "{} BYEs", h.count(Method::BYE));
    assert_eq!(h.call.poll_timeout(), None, "nothing left to retransmit");
    assert!(h.now - start <= HANGUP_WAIT + Duration::from_millis(1));
}

#[test]
fn hangup_of_a_silent_callee_before_any_provisional_ends_within_the_hangup_wait() {
    let mut h = Harness::new(setup(), None);
    h.call.hangup(h.now);
    h.drain();
    h.advance(HANGUP_WAIT + Duration::from_millis(1));
    assert!(h.ended().is_some());
    assert!(h.call.is_ended());
    assert_eq!(h.call.poll_timeout(), None);
}

#[test]
fn a_huge_retry_after_is_capped_at_an_hour() {
    let mut h = Harness::new(setup(), None);
    h.answer(
        Method::INVITE,
        503,
        "x",
        &[(Name::RETRY_AFTER, "4294967295 (forever)")],
        None,
    );
    let end = h.ended().expect("ended");
    assert_eq!(end.retry_after, Some(crate::sip::core::MAX_RETRY_AFTER));
}
