//! RTCP compound packets: the parser, and the receiver acting on what it parses (sender reports
//! move the timeline).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::media::receiver::MediaReceiver;
use sipcast::media::rtcp::parse_compound;
use sipcast::media::timeline::Track;
use sipcast::media::{AudioOutputs, MediaConfig, RemoteMedia, RemoteStream};

fuzz_target!(|data: &[u8]| {
    for packet in parse_compound(data) {
        let _ = packet;
    }
    let addr = "127.0.0.1:9".parse().unwrap();
    let remote = RemoteMedia {
        audio: Some(RemoteStream::new(addr, 0, "PCMU", 8000)),
        video: None,
    };
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: None,
            copy: true,
        },
        ..Default::default()
    };
    let now = sipcast::clock::monotonic().into_std();
    if let Ok(mut receiver) = MediaReceiver::new(&remote, config, now) {
        receiver.handle_rtcp(now, Track::Audio, data);
        receiver.handle_rtcp(now, Track::Video, data);
    }
});
