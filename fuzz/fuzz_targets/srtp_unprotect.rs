//! SRTP/SRTCP unprotect with arbitrary keys and packets, and SDES crypto line parsing.
//!
//! Input: a mode byte, 46 bytes of key and salt (the first 30 for AES-128 suites), then
//! packets, each prefixed by one length byte, all fed to one session so the rollover counter,
//! replay window and stream table carry state from packet to packet. Mode 2 parses the rest
//! as crypto lines instead; mode 3 checks that protect then unprotect gives the packet back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::srtp::sdes::{CryptoAttribute, SdesOffer, answer, parse_all};
use sipcast::srtp::{MasterKey, Mki, SrtpSession, SrtpSuite};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 4 == 2 {
        let text = String::from_utf8_lossy(rest);
        let (usable, _) = parse_all(text.lines());
        for attribute in &usable {
            let printed = attribute.to_sdp_line();
            let again = CryptoAttribute::parse(&printed).expect("printed line parses");
            assert_eq!(&again, attribute);
        }
        let _ = answer(&usable, &SrtpSuite::PREFERENCE);
        if let Ok(offer) = SdesOffer::generate(&[SrtpSuite::AesCm128HmacSha1_80]) {
            let _ = offer.accept_answer(&usable);
        }
        return;
    }
    let suite = SrtpSuite::PREFERENCE[usize::from(mode >> 4) % SrtpSuite::PREFERENCE.len()];
    let needed = suite.key_len() + suite.salt_len();
    let (Some(key), Some(packets)) = (rest.get(..46), rest.get(46..)) else {
        return;
    };
    let Ok(master) = MasterKey::from_key_and_salt(suite, &key[..needed]) else {
        return;
    };
    let mki = (mode & 0x08 != 0)
        .then(|| Mki::new(u32::from(key[0]), 1))
        .flatten();
    let Ok(mut session) = SrtpSession::from_keys(&master, mki, &master, mki) else {
        return;
    };
    let mut rest = packets;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (packet, next) = tail.split_at(len);
        rest = next;
        let mut buffer = packet.to_vec();
        match mode % 4 {
            0 => {
                if let Ok(plain) = session.unprotect_rtp(&mut buffer) {
                    assert!(plain <= packet.len());
                }
            }
            1 => {
                if let Ok(plain) = session.unprotect_rtcp(&mut buffer) {
                    assert!(plain <= packet.len());
                }
            }
            _ => {
                let rtcp = packet.get(1).is_some_and(|pt| (200..=206).contains(pt));
                let protected = if rtcp {
                    session.protect_rtcp(&mut buffer)
                } else {
                    session.protect_rtp(&mut buffer)
                };
                if protected.is_ok() {
                    let plain = if rtcp {
                        session.unprotect_rtcp(&mut buffer)
                    } else {
                        session.unprotect_rtp(&mut buffer)
                    };
                    // A packet we protected comes back, unless it repeats an index already seen.
                    if let Ok(len) = plain {
                        assert_eq!(&buffer[..len], packet);
                    }
                }
            }
        }
    }
});
