//! The media receive path exactly where the daemon enters it: `MediaReceiver::handle_datagram`
//! with the socket a datagram came on and its source address, so source latching, the size
//! check, RTP/RTCP parsing, SSRC admission, reordering, H.264 depacketizing, audio decoding and
//! AAC encoding, the timeline and RTCP all see hostile input, interleaved with timer ticks and
//! the odd re-INVITE.
//!
//! Input: one byte choosing the audio codec and outputs, then records of
//! `[selector][step ms][len hi][len lo][len bytes]`: the selector's low two bits pick the socket
//! (audio/video × RTP/RTCP), the next two the source (the answer's address, its host on
//! another port, a stranger, the answer's address IPv4-mapped), bit 4 a re-INVITE moving the
//! audio before the datagram, bit 5 a keyframe request. Lengths may exceed the 2048-byte
//! maximum (run with `-max_len=8192` to reach the oversize path).
#![no_main]

use std::net::SocketAddr;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sipcast::media::receiver::MediaReceiver;
use sipcast::media::{AudioOutputs, MediaConfig, MediaPort, RemoteMedia, RemoteStream};

const SPROP: &str =
    "packetization-mode=1;sprop-parameter-sets=Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA=";

fn remote(codec: u8, audio_port: u16) -> RemoteMedia {
    let audio_addr = SocketAddr::from(([192, 0, 2, 1], audio_port));
    let video_addr = SocketAddr::from(([192, 0, 2, 1], 4002));
    let audio = match codec % 5 {
        0 => RemoteStream::new(audio_addr, 0, "PCMU", 8000),
        1 => RemoteStream::new(audio_addr, 8, "PCMA", 8000),
        2 => RemoteStream::new(audio_addr, 9, "G722", 8000),
        3 => RemoteStream::new(audio_addr, 111, "opus", 48_000),
        _ => RemoteStream::new(audio_addr, 97, "speex", 16_000),
    };
    RemoteMedia {
        audio: Some(audio),
        video: Some(RemoteStream {
            fmtp: SPROP.into(),
            rtcp_mux: codec & 0x40 != 0,
            ..RemoteStream::new(video_addr, 96, "H264", 90_000)
        }),
    }
}

fn source(selector: u8, port: MediaPort) -> SocketAddr {
    let base = match (port.track, port.rtcp) {
        (sipcast::media::timeline::Track::Audio, rtcp) => 4000 + u16::from(rtcp),
        (sipcast::media::timeline::Track::Video, rtcp) => 4002 + u16::from(rtcp),
    };
    match (selector >> 2) & 3 {
        0 => SocketAddr::from(([192, 0, 2, 1], base)),
        1 => SocketAddr::from(([192, 0, 2, 1], 30_000 + base)),
        2 => SocketAddr::from(([198, 51, 100, 7], base)),
        _ => format!("[::ffff:192.0.2.1]:{base}").parse().unwrap(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&codec, mut rest)) = data.split_first() else {
        return;
    };
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: (codec & 0x80 != 0).then(Default::default),
            copy: codec & 0x20 != 0,
        },
        ..Default::default()
    };
    let mut now = sipcast::clock::monotonic().into_std();
    let Ok(mut receiver) = MediaReceiver::new(&remote(codec, 4000), config, now) else {
        return;
    };
    let mut audio_port = 4000;
    while let [selector, step, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(*step));
        let port = MediaPort::ALL[usize::from(selector & 3)];
        if selector & 0x10 != 0 {
            audio_port ^= 0x100;
            let _ = receiver.update_remote(&remote(codec, audio_port), now);
        }
        if selector & 0x20 != 0 {
            receiver.request_keyframe(now);
        }
        let _ = receiver.handle_datagram(now, port, source(*selector, port), datagram);
        receiver.handle_timeout(now);
        while receiver.poll_frame().is_some() {}
        while receiver.poll_transmit().is_some() {}
        while receiver.poll_event().is_some() {}
    }
    let _ = receiver.stats();
});
