//! RTP datagrams into the media receiver: header parser, reorder buffer, H.264 depacketizer,
//! G.711 copy path and timeline. Input: datagrams, each prefixed by a 2-byte big-endian length
//! whose top bit picks the track (set: audio) and a 1-byte arrival step in milliseconds.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sipcast::media::receiver::MediaReceiver;
use sipcast::media::timeline::Track;
use sipcast::media::{AudioOutputs, MediaConfig, RemoteMedia, RemoteStream};

fuzz_target!(|data: &[u8]| {
    let addr = "127.0.0.1:9".parse().unwrap();
    let remote = RemoteMedia {
        audio: Some(RemoteStream::new(addr, 0, "PCMU", 8000)),
        video: Some(RemoteStream {
            fmtp: "packetization-mode=1;sprop-parameter-sets=Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA="
                .into(),
            ..RemoteStream::new(addr, 96, "H264", 90_000)
        }),
    };
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: None,
            copy: true,
        },
        ..Default::default()
    };
    let mut now = sipcast::clock::monotonic().into_std();
    let Ok(mut receiver) = MediaReceiver::new(&remote, config, now) else {
        return;
    };
    let mut rest = data;
    while rest.len() >= 3 {
        let header = u16::from_be_bytes([rest[0], rest[1]]);
        let track = if header & 0x8000 != 0 {
            Track::Audio
        } else {
            Track::Video
        };
        let len = usize::from(header & 0x7fff).min(rest.len() - 3);
        now += Duration::from_millis(u64::from(rest[2]));
        let _ = receiver.handle_rtp(now, track, &rest[3..3 + len]);
        receiver.handle_timeout(now);
        while receiver.poll_frame().is_some() {}
        while receiver.poll_transmit().is_some() {}
        while receiver.poll_event().is_some() {}
        rest = &rest[3 + len..];
    }
    let _ = receiver.stats();
});
