//! Issue item 9: per-packet work allocates nothing in the steady state. A counting allocator
//! watches the media receiver while it takes ten seconds of H.264 (FU-A fragmented) and PCMU
//! RTP after a warm-up, through the daemon's entry point (source latch, size check, SSRC
//! admission and all): allocations must stay at about one per access unit produced (the
//! frame's `Bytes`), far below one per packet. The same again with SRTP: every datagram is
//! decrypted in place by the call's [`MediaSrtp`] first, as the media session does.

mod alloc_support;

use alloc_support::{ALLOCATIONS, COUNTING};

use std::sync::atomic::Ordering;
use std::time::Duration;

use sipcast::frame::MediaFrame;
use sipcast::media::receiver::MediaReceiver;
use sipcast::media::rtp::{RtpPacket, write_packet};
use sipcast::media::timeline::Track;
use sipcast::media::{
    AudioOutputs, MediaConfig, MediaPort, MediaSrtp, RemoteMedia, RemoteStream, Verdict,
};
use sipcast::srtp::sdes::{NegotiatedSrtp, SdesKey};
use sipcast::srtp::{MasterKey, SrtpSession, SrtpSuite};

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

/// One test: the allocation counter is global, so the two runs must not overlap.
#[test]
fn steady_state_allocates_per_access_unit_not_per_packet_plain_and_with_srtp() {
    run(None);
    run(Some(SrtpSuite::Aes256CmHmacSha1_80));
}

/// SDES keys for one stream: (what the call negotiated, the peer's sending context).
fn keys(suite: SrtpSuite) -> (Box<NegotiatedSrtp>, SrtpSession) {
    let ours = MasterKey::generate(suite).unwrap();
    let theirs = MasterKey::generate(suite).unwrap();
    let sdes = |key: &MasterKey| SdesKey {
        key: key.clone(),
        mki: None,
        lifetime: None,
    };
    let negotiated = NegotiatedSrtp {
        suite,
        tag: 1,
        local: sdes(&ours),
        remote: sdes(&theirs),
    };
    let peer = SrtpSession::from_keys(&ours, None, &theirs, None).unwrap();
    (Box::new(negotiated), peer)
}

fn run(suite: Option<SrtpSuite>) {
    let addr = "127.0.0.1:9".parse().unwrap();
    let mut remote = RemoteMedia {
        audio: Some(RemoteStream::new(addr, 0, "PCMU", 8000)),
        video: Some(RemoteStream {
            fmtp: format!("packetization-mode=1;sprop-parameter-sets={SPROP}"),
            ..RemoteStream::new(addr, 96, "H264", 90_000)
        }),
    };
    let mut traffic = traffic(14);
    if let Some(suite) = suite {
        // The peer encrypts everything beforehand (its cost is not ours to count).
        let (audio_keys, mut audio_peer) = keys(suite);
        let (video_keys, mut video_peer) = keys(suite);
        for (_, track, datagram) in &mut traffic {
            let peer = match track {
                Track::Audio => &mut audio_peer,
                Track::Video => &mut video_peer,
            };
            peer.protect_rtp(datagram).unwrap();
        }
        remote.audio.as_mut().unwrap().srtp = Some(audio_keys);
        remote.video.as_mut().unwrap().srtp = Some(video_keys);
    }
    let mut srtp = MediaSrtp::new(&remote);
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: Some(Default::default()),
            copy: false,
        },
        ..Default::default()
    };
    let start = sipcast::clock::monotonic().into_std();
    let mut receiver = MediaReceiver::new(&remote, config, start).unwrap();
    let warm_up_ms = 4000;
    let (mut packets, mut frames) = (0u64, 0u64);
    for (at, track, datagram) in &mut traffic {
        if *at == warm_up_ms {
            ALLOCATIONS.store(0, Ordering::Relaxed);
            COUNTING.store(true, Ordering::Relaxed);
        }
        let now = start + Duration::from_millis(*at);
        let port = MediaPort::new(*track, false);
        let from = match track {
            Track::Audio => "127.0.0.1:9".parse().unwrap(),
            Track::Video => "127.0.0.1:11".parse().unwrap(),
        };
        let len = srtp.unprotect(port, datagram).expect("authenticates");
        assert_eq!(
            receiver.handle_datagram(now, port, from, &datagram[..len]),
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
    println!("{suite:?}: {packets} packets, {frames} frames, {allocations} allocations");
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
