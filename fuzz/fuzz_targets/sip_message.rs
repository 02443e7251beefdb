//! SIP message handling: framing (datagram, stream, and the TCP framer fed in pieces), the
//! typed accessors, printing, and an established call core reacting to whatever arrives. Nothing may panic; a parsed message must
//! print to something that parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::sip::core::call::{CallCore, CallSetup};
use sipcast::sip::core::dialog::{LocalParty, Transport};
use sipcast::sip::core::digest::best_challenge;
use sipcast::sip::core::dtmf::DtmfTiming;
use sipcast::sip::core::framing::StreamFramer;
use sipcast::sip::core::message::{Framed, parse_datagram, parse_stream};
use sipcast::sip::core::sdp::OfferedCrypto;
use sipcast::sip::core::sdp::{Direction, LocalMedia};
use sipcast::sip::core::transaction::TimerConfig;
use sipcast::sip::core::{Authenticator, DtmfMethod, MediaEncryption};
use sipcast::srtp::sdes::CryptoAttribute;
use std::time::{Duration, Instant};

fn fixed_crypto() -> OfferedCrypto {
    let lines = |salt: char| {
        [
            format!(
                "a=crypto:1 AES_256_CM_HMAC_SHA1_80 inline:{}",
                format!("{salt}").repeat(60) + "AA=="
            ),
            format!(
                "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:{}",
                format!("{salt}").repeat(40)
            ),
        ]
        .iter()
        .filter_map(|line| CryptoAttribute::parse(line).ok())
        .collect()
    };
    OfferedCrypto {
        audio: lines('A'),
        video: lines('B'),
    }
}

fn call(now: Instant) -> CallCore {
    let setup = CallSetup {
        call_id: "fuzz@sipcast".into(),
        local: LocalParty {
            aor: "sip:fuzz@example.com".into(),
            display_name: None,
            contact: "sip:fuzz@192.0.2.1:5060".into(),
            sent_by: "192.0.2.1:5060".into(),
            transport: Transport::Udp,
            outbound_proxy: None,
            user_agent: "fuzz".into(),
            instance: None,
        },
        target: "sip:peer@example.com".into(),
        media: LocalMedia {
            address: "192.0.2.1".parse().unwrap(),
            audio_rtp_port: Some(4000),
            video_rtp_port: Some(4002),
            direction: Direction::SendRecv,
            video_content: Default::default(),
            // SRTP offered with fixed keys, so the answer's crypto lines and the `prefer`
            // fallback are fuzzed too.
            crypto: Some(fixed_crypto()),
        },
        encryption: MediaEncryption::Prefer,
        answer_timeout: Duration::from_secs(30),
        dtmf_digits: "1#".into(),
        dtmf_method: DtmfMethod::Info,
        dtmf_delay: Duration::ZERO,
        dtmf_timing: DtmfTiming::default(),
        can_send_rtp: false,
        timers: TimerConfig::default(),
    };
    use rand::SeedableRng;
    CallCore::new(
        setup,
        Authenticator::new("fuzz", None),
        rand::rngs::StdRng::seed_from_u64(1),
        now,
    )
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_stream(data);
    // The TCP framer, fed in pieces whose size the first byte picks: bounded, never panicking.
    let piece = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut framer = StreamFramer::new();
    for chunk in data.chunks(piece) {
        if framer.push(chunk).is_err() {
            break;
        }
        while let Ok(Some(_)) = framer.next_message() {}
        assert!(framer.buffered() <= 2 * sipcast::sip::core::message::MAX_MESSAGE_LEN);
    }
    let Ok(Framed::Message(msg, _)) = parse_datagram(data) else {
        return;
    };
    let _ = (
        msg.call_id(),
        msg.cseq(),
        msg.branch(),
        msg.to_tag(),
        msg.from_tag(),
        msg.contacts(),
        msg.record_route(),
    );
    let _ = best_challenge(msg.headers_raw(&ezk_sip_types::Name::WWW_AUTHENTICATE));
    let printed = msg.to_bytes();
    assert!(
        matches!(parse_datagram(&printed), Ok(Framed::Message(..))),
        "printed message does not parse again"
    );
    #[allow(clippy::disallowed_methods)] // a fixed origin; time only moves by the offsets below
    let now = Instant::now();
    let mut core = call(now);
    core.handle_message(now, (*msg).clone(), "192.0.2.9:5060".parse().unwrap());
    core.handle_timeout(now + Duration::from_secs(40));
    while core.poll_output().is_some() {}
});
