//! Issue item 9: per-packet work allocates nothing in the steady state. A counting allocator
//! watches the media receiver while it takes ten seconds of H.264 (FU-A fragmented) and PCMU
//! RTP after a warm-up, through the daemon's entry point (source latch, size check, SSRC
//! admission and all): allocations must stay at about one per access unit produced (the
//! frame's `Bytes`), far below one per packet.

mod alloc_support;

use alloc_support::{ALLOCATIONS, COUNTING};

use std::sync::atomic::Ordering;
use std::time::Duration;

use sipcast::frame::MediaFrame;
use sipcast::media::receiver::MediaReceiver;
use sipcast::media::rtp::{RtpPacket, write_packet};
use sipcast::media::timeline::Track;
use sipcast::media::{AudioOutputs, MediaConfig, MediaPort, RemoteMedia, RemoteStream, Verdict};

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const SPROP: &str = "Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA=";

/// 25 fps video, every frame 6 FU-A fragments (an IDR each second), and 20 ms PCMU packets,
/// as (arrival ms, track, datagram).
fn traffic(seconds: u32) -> Vec<(u64, Track, Vec<u8>)> {
    let mut out = Vec::new();
    let mut video_seq = 0u16;
    for frame in 0..seconds * 25 {
        let nal_header = if frame % 25 == 0 { 0x65 } else { 0x41 };
        let body = vec![0x5a; 6000];
        for (i, chunk) in body.chunks(1000).enumerate() {
            let start = if i == 0 { 0x80 } else { 0 };
            let end = if i == 5 { 0x40 } else { 0 };
            let mut payload = vec![0x7c, start | end | (nal_header & 0x1f)];
            payload.extend_from_slice(chunk);
            let mut datagram = Vec::new();
            write_packet(
                &mut datagram,
                &RtpPacket {
                    marker: end != 0,
                    payload_type: 96,
                    sequence: video_seq,
                    timestamp: frame * 3600,
                    ssrc: 7,
                    payload: &payload,
                },
            );
            video_seq = video_seq.wrapping_add(1);
            out.push((u64::from(frame) * 40, Track::Video, datagram));
        }
    }
    for packet in 0..seconds * 50 {
        let mut datagram = Vec::new();
        write_packet(
            &mut datagram,
            &RtpPacket {
                marker: false,
                payload_type: 0,
                sequence: packet as u16,
                timestamp: packet * 160,
                ssrc: 8,
                payload: &[0xd5; 160],
            },
        );
        out.push((u64::from(packet) * 20, Track::Audio, datagram));
    }
    out.sort_by_key(|(at, ..)| *at);
    out
}

#[test]
fn steady_state_allocates_per_access_unit_not_per_packet() {
    let addr = "127.0.0.1:9".parse().unwrap();
    let remote = RemoteMedia {
        audio: Some(RemoteStream::new(addr, 0, "PCMU", 8000)),
        video: Some(RemoteStream {
            fmtp: format!("packetization-mode=1;sprop-parameter-sets={SPROP}"),
            ..RemoteStream::new(addr, 96, "H264", 90_000)
        }),
    };
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: Some(Default::default()),
            copy: false,
        },
        ..Default::default()
    };
    let start = sipcast::clock::monotonic().into_std();
    let mut receiver = MediaReceiver::new(&remote, config, start).unwrap();
    let traffic = traffic(14);
    let warm_up_ms = 4000;
    let (mut packets, mut frames) = (0u64, 0u64);
    for (at, track, datagram) in &traffic {
        if *at == warm_up_ms {
            COUNTING.store(true, Ordering::Relaxed);
        }
        let now = start + Duration::from_millis(*at);
        let port = MediaPort::new(*track, false);
        let from = match track {
            Track::Audio => "127.0.0.1:9".parse().unwrap(),
            Track::Video => "127.0.0.1:11".parse().unwrap(),
        };
        assert_eq!(
            receiver.handle_datagram(now, port, from, datagram),
            Verdict::Rtp
        );
        receiver.handle_timeout(now);
        let counting = COUNTING.load(Ordering::Relaxed);
        packets += u64::from(counting);
        while let Some(frame) = receiver.poll_frame() {
            frames += u64::from(counting && !matches!(frame, MediaFrame::Metadata(_)));
        }
        while receiver.poll_transmit().is_some() {}
    }
    COUNTING.store(false, Ordering::Relaxed);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    println!("{packets} packets, {frames} frames, {allocations} allocations");
    assert_eq!(packets, 2000);
    // One allocation per frame's payload, plus RTCP reports (a handful in ten seconds).
    assert!(
        allocations <= frames + 20,
        "{allocations} allocations for {frames} frames"
    );
    assert!(
        allocations < packets / 2,
        "{allocations} allocations for {packets} packets"
    );
}
