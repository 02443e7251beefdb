//! SDP negotiation: any bytes either fail cleanly or yield media we can answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::sip::core::sdp::{Direction, LocalMedia, negotiate, render};

fuzz_target!(|data: &[u8]| {
    if let Ok(media) = negotiate(data) {
        let local = LocalMedia {
            address: "192.0.2.1".parse().unwrap(),
            audio_rtp_port: Some(4000),
            video_rtp_port: Some(4002),
            direction: Direction::SendRecv,
        };
        let answer = render(&local, 1, 2, Some(&media));
        assert!(
            negotiate(answer.as_bytes()).is_ok(),
            "our own answer must parse"
        );
    }
});
