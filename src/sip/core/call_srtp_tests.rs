//! SRTP offer/answer and the `media_encryption` policy in virtual time.

use super::super::sdp::OfferedCrypto;
use super::super::{CallEvent, MediaEncryption, Output};
use super::{Harness, password, setup};
use crate::srtp::sdes::{self, CryptoAttribute};
use crate::srtp::{SrtpSession, SrtpSuite};
use ezk_sip_types::{Method, Name};
use std::time::Duration;

fn srtp_setup(encryption: MediaEncryption) -> super::CallSetup {
    let mut setup = setup();
    setup.media.crypto = Some(OfferedCrypto::generate().unwrap());
    setup.encryption = encryption;
    setup
}

fn sdp_body(h: &Harness, method: Method) -> String {
    String::from_utf8(h.last(method).body.to_vec()).unwrap()
}

/// A callee's answer that takes our offered line of `suite` with a key of its own.
fn srtp_answer(offer: &str, suite: SrtpSuite) -> (String, sdes::NegotiatedSrtp) {
    let offered: Vec<CryptoAttribute> = offer
        .lines()
        .filter(|l| l.starts_with("a=crypto:"))
        .map(|l| CryptoAttribute::parse(l).unwrap())
        .collect();
    let (line, negotiated) = sdes::answer(&offered, &[suite]).unwrap();
    let body = format!(
        "v=0\r\no=- 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 20000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{}\r\n",
        line.to_sdp_line()
    );
    (body, negotiated)
}

/// Our key protects what the callee's context (its answer's view) unprotects; the tag is
/// `tag_len` bytes.
fn assert_callee_decrypts(
    ours: &sdes::NegotiatedSrtp,
    callee: &sdes::NegotiatedSrtp,
    tag_len: usize,
) {
    let mut us = SrtpSession::new(ours).unwrap();
    let mut them =
        SrtpSession::from_keys(&callee.remote.key, None, &callee.local.key, None).unwrap();
    let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 1, 2, 3];
    us.protect_rtp(&mut packet).unwrap();
    assert_eq!(packet.len(), 15 + tag_len);
    assert_eq!(them.unprotect_rtp(&mut packet).unwrap(), 15);
}

fn established_media(h: &Harness) -> super::super::sdp::NegotiatedMedia {
    h.events
        .iter()
        .find_map(|e| match e {
            CallEvent::Established { negotiated, .. } => Some(negotiated.clone()),
            _ => None,
        })
        .expect("established")
}

#[test]
fn require_offers_savp_with_every_suite_and_takes_the_answers_choice() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Require), password());
    let offer = sdp_body(&h, Method::INVITE);
    assert!(offer.contains("m=audio 40000 RTP/SAVP "), "{offer}");
    for (tag, suite) in (1..).zip(SrtpSuite::PREFERENCE) {
        assert!(
            offer.contains(&format!("a=crypto:{tag} {suite} inline:")),
            "{offer}"
        );
    }
    let (answer, callee) = srtp_answer(&offer, SrtpSuite::AesCm128HmacSha1_32);
    h.answer(Method::INVITE, 200, "peer", &[], Some(&answer));
    let media = established_media(&h);
    assert_eq!(media.encryption(), "AES_CM_128_HMAC_SHA1_32");
    let ours = media.audio.unwrap().srtp.unwrap();
    assert_eq!(ours.tag, 4);
    assert_callee_decrypts(&ours, &callee, 4);
}

#[test]
fn require_against_a_plain_answer_hangs_up_with_the_reason() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Require), password());
    h.answer(Method::INVITE, 200, "peer", &[], Some(super::ANSWER_SDP));
    assert_eq!(h.count(Method::BYE), 1);
    h.answer(Method::BYE, 200, "peer", &[], None);
    let end = h.ended().unwrap();
    assert!(
        end.reason
            .starts_with("callee does not support SRTP: it answered RTP/AVP"),
        "{end:?}"
    );
    assert!(end.reason.contains("AES_256_CM_HMAC_SHA1_80"), "{end:?}");
}

#[test]
fn require_against_an_unknown_suite_says_no_common_crypto_suite() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Require), password());
    let answer = super::ANSWER_SDP.replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkw\r\n";
    h.answer(Method::INVITE, 200, "peer", &[], Some(&answer));
    h.answer(Method::BYE, 200, "peer", &[], None);
    let end = h.ended().unwrap();
    assert!(end.reason.starts_with("no common crypto suite"), "{end:?}");
    assert!(end.reason.contains("F8_128_HMAC_SHA1_80"), "{end:?}");
}

#[test]
fn require_refused_with_488_names_the_offer_and_the_callees_warning() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Require), password());
    h.answer(
        Method::INVITE,
        488,
        "peer",
        &[(Name::WARNING, "305 gw \"Incompatible media format\"")],
        None,
    );
    let end = h.ended().unwrap();
    assert_eq!(end.sip_status, Some(488));
    assert!(
        end.reason.starts_with("callee does not support SRTP: 488 Reason to our RTP/SAVP offer (AES_256_CM_HMAC_SHA1_80, "),
        "{end:?}"
    );
    assert!(end.reason.contains("Incompatible media format"), "{end:?}");
    assert_eq!(h.distinct(Method::INVITE), 1, "require never retries plain");
}

#[test]
fn prefer_retries_once_in_plain_rtp_after_488_and_says_so() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Prefer), password());
    h.answer(Method::INVITE, 488, "peer", &[], None);
    assert_eq!(h.distinct(Method::INVITE), 2);
    let retry = sdp_body(&h, Method::INVITE);
    assert!(
        retry.contains("m=audio 40000 RTP/AVP ") && !retry.contains("a=crypto"),
        "{retry}"
    );
    h.answer(Method::INVITE, 200, "peer2", &[], Some(super::ANSWER_SDP));
    let media = established_media(&h);
    assert_eq!(media.encryption(), "none");
    let note = media.srtp_fallback.unwrap();
    assert!(
        note.starts_with("callee refused SRTP (488 Reason): plain RTP"),
        "{note}"
    );
}

#[test]
fn prefer_refused_twice_ends_and_does_not_loop() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Prefer), password());
    h.answer(Method::INVITE, 488, "peer", &[], None);
    h.answer(Method::INVITE, 488, "peer", &[], None);
    assert_eq!(h.distinct(Method::INVITE), 2);
    let end = h.ended().unwrap();
    assert!(
        end.reason
            .starts_with("callee refused both SRTP and plain RTP"),
        "{end:?}"
    );
}

#[test]
fn prefer_takes_a_plain_answer_as_plain_rtp() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Prefer), password());
    h.answer(Method::INVITE, 200, "peer", &[], Some(super::ANSWER_SDP));
    let media = established_media(&h);
    assert_eq!(media.encryption(), "none");
    assert!(media.srtp_fallback.unwrap().contains("plain RTP/AVP"));
    assert_eq!(h.count(Method::BYE), 0);
}

#[test]
fn prefer_with_an_unusable_crypto_answer_reinvites_in_plain_rtp() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Prefer), password());
    let answer = super::ANSWER_SDP.replace("RTP/AVP", "RTP/SAVP");
    h.answer(Method::INVITE, 200, "peer", &[], Some(&answer));
    assert_eq!(h.distinct(Method::INVITE), 2);
    let reoffer = sdp_body(&h, Method::INVITE);
    assert!(
        reoffer.contains("RTP/AVP") && !reoffer.contains("a=crypto"),
        "{reoffer}"
    );
    let media = established_media(&h);
    assert_eq!(media.encryption(), "none");
    assert!(
        media
            .srtp_fallback
            .unwrap()
            .starts_with("no common crypto suite")
    );
}

#[test]
fn off_refused_with_an_srtp_only_488_says_the_callee_requires_srtp() {
    let mut setup = setup();
    setup.encryption = MediaEncryption::Off;
    let mut h = Harness::new(setup, password());
    let offer = sdp_body(&h, Method::INVITE);
    assert!(offer.contains("RTP/AVP") && !offer.contains("a=crypto"));
    h.answer(
        Method::INVITE,
        488,
        "peer",
        &[(Name::WARNING, "399 gw \"SRTP required\"")],
        None,
    );
    let end = h.ended().unwrap();
    assert!(
        end.reason.starts_with("callee requires SRTP: 488 Reason to our RTP/AVP offer; callee says Warning: 399 gw \"SRTP required\""),
        "{end:?}"
    );
}

#[test]
fn rfc4733_events_of_an_encrypted_call_are_srtp() {
    let mut setup = srtp_setup(MediaEncryption::Require);
    setup.dtmf_digits = "1".into();
    setup.dtmf_method = super::super::DtmfMethod::Rfc4733;
    setup.can_send_rtp = true;
    let mut h = Harness::new(setup, password());
    let offer = sdp_body(&h, Method::INVITE);
    let (answer, callee) = srtp_answer(&offer, SrtpSuite::Aes256CmHmacSha1_80);
    h.answer(Method::INVITE, 200, "peer", &[], Some(&answer));
    let mut them =
        SrtpSession::from_keys(&callee.remote.key, None, &callee.local.key, None).unwrap();
    let mut packets = Vec::new();
    let target = h.now + Duration::from_secs(3);
    while let Some(at) = h.call.poll_timeout().filter(|t| *t <= target) {
        h.now = at.max(h.now);
        h.call.handle_timeout(h.now);
        while let Some(output) = h.call.poll_output() {
            if let Output::Rtp { data, .. } = output {
                packets.push(data.to_vec());
            }
        }
    }
    assert!(packets.len() >= 4, "{}", packets.len());
    for mut packet in packets {
        let len = them
            .unprotect_rtp(&mut packet)
            .expect("callee decrypts our event");
        // RFC 4733 event 1 in the clear after decryption.
        assert_eq!(packet[1] & 0x7f, 101);
        assert_eq!(packet[12], 1, "event code, {len} bytes");
    }
}

#[test]
fn a_peer_reoffer_on_an_srtp_call_is_answered_with_our_key_under_its_tag() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Require), password());
    let offer = sdp_body(&h, Method::INVITE);
    let (answer, _) = srtp_answer(&offer, SrtpSuite::Aes256CmHmacSha1_80);
    h.answer(Method::INVITE, 200, "peer", &[], Some(&answer));
    let ours = established_media(&h).audio.unwrap().srtp.unwrap();
    // The peer re-offers with a new key of the same suite under another tag.
    let new_key = crate::srtp::MasterKey::generate(SrtpSuite::Aes256CmHmacSha1_80).unwrap();
    let line = CryptoAttribute {
        tag: 7,
        key: new_key.clone(),
        lifetime: None,
        mki: None,
    }
    .to_sdp_line();
    let reoffer = format!(
        "v=0\r\no=- 1 2 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 20000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n{line}\r\n"
    );
    h.peer_request(Method::INVITE, 2, &[], Some(&reoffer));
    let ok = h.responses(200).last().cloned().cloned().unwrap();
    let body = String::from_utf8(ok.body.to_vec()).unwrap();
    assert!(body.contains("m=audio 40000 RTP/SAVP "), "{body}");
    let ours_again = CryptoAttribute {
        tag: 7,
        key: ours.local.key.clone(),
        lifetime: None,
        mki: None,
    }
    .to_sdp_line();
    assert!(
        body.contains(&ours_again),
        "our key, the peer's tag: {body}"
    );
    let changed = h
        .events
        .iter()
        .rev()
        .find_map(|e| match e {
            CallEvent::MediaChanged(m) => Some(m.clone()),
            _ => None,
        })
        .expect("the new key is news for the media path");
    assert_eq!(changed.audio.unwrap().srtp.unwrap().remote.key, new_key);
}

#[test]
fn a_callee_that_takes_only_aes_gcm_gets_it() {
    let mut h = Harness::new(srtp_setup(MediaEncryption::Require), password());
    let offer = sdp_body(&h, Method::INVITE);
    assert!(
        offer.contains("a=crypto:6 AEAD_AES_128_GCM inline:"),
        "{offer}"
    );
    let (answer, callee) = srtp_answer(&offer, SrtpSuite::AeadAes128Gcm);
    h.answer(Method::INVITE, 200, "peer", &[], Some(&answer));
    let media = established_media(&h);
    assert_eq!(media.encryption(), "AEAD_AES_128_GCM");
    assert_callee_decrypts(&media.audio.unwrap().srtp.unwrap(), &callee, 16);
}
