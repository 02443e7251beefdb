use super::sdes::{SdesOffer, answer};
use super::*;

fn pair(suite: SrtpSuite) -> (SrtpSession, SrtpSession) {
    let offer = SdesOffer::generate(&[suite]).unwrap();
    let (_, answerer) = answer(&offer.attributes, &[suite]).unwrap();
    let offerer = offer
        .accept_answer(&[super::sdes::CryptoAttribute {
            tag: answerer.tag,
            key: answerer.local.key.clone(),
            lifetime: None,
            mki: None,
        }])
        .unwrap();
    (
        SrtpSession::new(&offerer).unwrap(),
        SrtpSession::new(&answerer).unwrap(),
    )
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x80, 0x00];
    packet.extend_from_slice(&seq.to_be_bytes());
    packet.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet.extend_from_slice(payload);
    packet
}

fn receiver_report(ssrc: u32) -> Vec<u8> {
    let mut packet = vec![0x80, 201, 0, 1];
    packet.extend_from_slice(&ssrc.to_be_bytes());
    packet
}

#[test]
fn rtp_round_trips_for_every_suite() {
    for suite in SrtpSuite::PREFERENCE {
        let (mut a, mut b) = pair(suite);
        for seq in [1000u16, 1001, 1003, 1002] {
            let plain = rtp(seq, 0x1234, b"hello, encrypted world");
            let mut packet = plain.clone();
            a.protect_rtp(&mut packet).unwrap();
            assert_eq!(packet.len(), plain.len() + suite.rtp_tag_len());
            assert_ne!(packet[12..plain.len()], plain[12..], "payload is encrypted");
            assert_eq!(packet[..12], plain[..12], "header is not");
            let len = b.unprotect_rtp(&mut packet).unwrap();
            assert_eq!(packet[..len], plain[..], "{suite}");
        }
        assert_eq!(b.counters().rtp_unprotected, 4);
        assert_eq!(a.counters().rtp_protected, 4);
    }
}

#[test]
fn rtcp_round_trips_with_increasing_index() {
    let (mut a, mut b) = pair(SrtpSuite::Aes256CmHmacSha1_32);
    for expected_index in 0u32..3 {
        let plain = receiver_report(0xabcd);
        let mut packet = plain.clone();
        a.protect_rtcp(&mut packet).unwrap();
        assert_eq!(
            packet.len(),
            plain.len() + 4 + 10,
            "80-bit SRTCP tag even for _32"
        );
        let e_index = u32::from_be_bytes(packet[8..12].try_into().unwrap());
        assert_eq!(e_index, 0x8000_0000 | expected_index);
        let len = b.unprotect_rtcp(&mut packet).unwrap();
        assert_eq!(packet[..len], plain[..]);
    }
}

#[test]
fn tampered_wrong_key_and_replayed_packets_are_refused_and_counted() {
    let (mut a, mut b) = pair(SrtpSuite::Aes256CmHmacSha1_80);
    let (mut stranger, _) = pair(SrtpSuite::Aes256CmHmacSha1_80);
    let mut good = rtp(7, 1, b"payload");
    a.protect_rtp(&mut good).unwrap();

    let mut tampered = good.clone();
    tampered[13] ^= 1;
    assert!(matches!(
        b.unprotect_rtp(&mut tampered),
        Err(SrtpError::AuthFailed { ssrc: 1, index: 7 })
    ));

    let mut foreign = rtp(8, 1, b"payload");
    stranger.protect_rtp(&mut foreign).unwrap();
    assert!(matches!(
        b.unprotect_rtp(&mut foreign),
        Err(SrtpError::AuthFailed { .. })
    ));

    let mut copy = good.clone();
    b.unprotect_rtp(&mut good).unwrap();
    assert_eq!(
        b.unprotect_rtp(&mut copy),
        Err(SrtpError::Replayed { ssrc: 1, index: 7 })
    );

    let mut rtcp = receiver_report(1);
    a.protect_rtcp(&mut rtcp).unwrap();
    let mut rtcp_copy = rtcp.clone();
    b.unprotect_rtcp(&mut rtcp).unwrap();
    assert!(matches!(
        b.unprotect_rtcp(&mut rtcp_copy),
        Err(SrtpError::Replayed { .. })
    ));

    assert!(matches!(
        b.unprotect_rtp(&mut [0x80; 15]),
        Err(SrtpError::TooShort { .. })
    ));
    assert!(matches!(
        b.unprotect_rtp(&mut [0x00; 40]),
        Err(SrtpError::NotVersion2 { .. })
    ));
    assert!(matches!(
        b.unprotect_rtcp(&mut [0x80; 20]),
        Err(SrtpError::TooShort { .. })
    ));

    let counters = b.counters();
    assert_eq!(
        (
            counters.auth_failed,
            counters.replayed,
            counters.too_short,
            counters.not_version_2
        ),
        (2, 2, 2, 1)
    );
    assert_eq!(
        (counters.rtp_unprotected, counters.rtcp_unprotected),
        (1, 1)
    );
}

#[test]
fn a_forged_packet_does_not_move_the_window() {
    let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
    let mut first = rtp(100, 5, b"x");
    a.protect_rtp(&mut first).unwrap();
    b.unprotect_rtp(&mut first).unwrap();
    // A forged packet far ahead must not push the window past the real next packets.
    let mut forged = rtp(30_000, 5, b"forged");
    forged.extend_from_slice(&[0; 10]);
    assert!(matches!(
        b.unprotect_rtp(&mut forged),
        Err(SrtpError::AuthFailed { .. })
    ));
    let mut next = rtp(101, 5, b"y");
    a.protect_rtp(&mut next).unwrap();
    assert!(b.unprotect_rtp(&mut next).is_ok());
}

#[test]
fn rollover_counter_follows_a_sequence_wrap_with_reordering() {
    let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_32);
    let order = [65533u16, 65534, 0, 65535, 1, 2, 3];
    let mut protected: Vec<(u16, Vec<u8>)> = order
        .iter()
        .map(|seq| (*seq, rtp(*seq, 9, &seq.to_be_bytes())))
        .collect();
    // The sender protects in sequence order, so its ROC moves to 1 at seq 0.
    protected.sort_by_key(|(seq, _)| {
        if *seq > 60000 {
            u32::from(*seq)
        } else {
            65536 + u32::from(*seq)
        }
    });
    for (_, packet) in &mut protected {
        a.protect_rtp(packet).unwrap();
    }
    let by_seq = |seq: u16| protected.iter().find(|(s, _)| *s == seq).unwrap().1.clone();
    for seq in order {
        let mut packet = by_seq(seq);
        let len = b
            .unprotect_rtp(&mut packet)
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
        assert_eq!(packet[12..len], seq.to_be_bytes());
    }
    // A replay of a pre-wrap packet is still caught after the wrap.
    assert!(matches!(
        b.unprotect_rtp(&mut by_seq(65535)),
        Err(SrtpError::Replayed { index: 65535, .. })
    ));
}

#[test]
fn header_extension_and_csrcs_stay_in_the_clear() {
    let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
    // CC = 1, X = 1 with one extension word.
    let mut plain = vec![0x91, 0x60, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3];
    plain.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
    plain.extend_from_slice(b"media");
    let mut packet = plain.clone();
    a.protect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..24], plain[..24]);
    let len = b.unprotect_rtp(&mut packet).unwrap();
    assert_eq!(packet[..len], plain[..]);
    // An extension longer than the packet is refused, not read past.
    let mut bad = vec![
        0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0xff, 0xff,
    ];
    bad.extend_from_slice(&[0; 10]);
    assert!(matches!(
        b.unprotect_rtp(&mut bad),
        Err(SrtpError::TooShort { .. })
    ));
}

#[test]
fn streams_past_the_table_are_unknown_ssrcs() {
    let (mut a, mut b) = pair(SrtpSuite::AesCm128HmacSha1_80);
    for ssrc in 0..MAX_STREAMS as u32 {
        let mut packet = rtp(1, ssrc, b"x");
        a.protect_rtp(&mut packet).unwrap();
        b.unprotect_rtp(&mut packet).unwrap();
    }
    let mut packet = rtp(1, 999, b"x");
    assert_eq!(
        a.protect_rtp(&mut packet),
        Err(SrtpError::UnknownSsrc { ssrc: 999 })
    );
    let mut packet = rtp(1, 999, &[0; 20]);
    assert_eq!(
        b.unprotect_rtp(&mut packet),
        Err(SrtpError::UnknownSsrc { ssrc: 999 })
    );
    assert_eq!(b.counters().unknown_ssrc, 1);
}

#[test]
fn mki_is_carried_and_checked() {
    let key = MasterKey::generate(SrtpSuite::AesCm128HmacSha1_80).unwrap();
    let mki = Mki::new(1, 4);
    let mut a = SrtpSession::from_keys(&key, mki, &key, mki).unwrap();
    let mut b = SrtpSession::from_keys(&key, mki, &key, mki).unwrap();
    let mut packet = rtp(1, 1, b"x");
    a.protect_rtp(&mut packet).unwrap();
    assert_eq!(packet[13..17], [0, 0, 0, 1]);
    assert!(b.unprotect_rtp(&mut packet.clone()).is_ok());
    let mut other = SrtpSession::from_keys(&key, Mki::new(2, 4), &key, None).unwrap();
    assert_eq!(other.unprotect_rtp(&mut packet), Err(SrtpError::UnknownMki));
    let mut rtcp = receiver_report(1);
    a.protect_rtcp(&mut rtcp).unwrap();
    assert_eq!(b.unprotect_rtcp(&mut rtcp), Ok(8));
    let aes256 = MasterKey::generate(SrtpSuite::Aes256CmHmacSha1_80).unwrap();
    assert!(matches!(
        SrtpSession::from_keys(&key, None, &aes256, None),
        Err(KeyError::SuiteMismatch { .. })
    ));
}
