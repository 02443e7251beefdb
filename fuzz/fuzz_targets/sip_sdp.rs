//! SDP negotiation: any bytes either fail cleanly or yield media we can answer, whichever of a
//! meeting's two videos (main or slides) the spec wants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::sip::core::sdp::{
    Direction, LocalMedia, VideoContent, negotiate, negotiate_preferring, render,
};

fuzz_target!(|data: &[u8]| {
    let wanted = if data.first().is_some_and(|b| b & 1 == 1) {
        VideoContent::Slides
    } else {
        VideoContent::Main
    };
    if let Ok(media) = negotiate_preferring(data, wanted) {
        let local = LocalMedia {
            address: "192.0.2.1".parse().unwrap(),
            audio_rtp_port: Some(4000),
            video_rtp_port: Some(4002),
            direction: Direction::SendRecv,
            video_content: wanted,
            crypto: None,
        };
        let answer = render(&local, 1, 2, Some(&media));
        assert!(
            negotiate(answer.as_bytes()).is_ok(),
            "our own answer must parse"
        );
    }
});
