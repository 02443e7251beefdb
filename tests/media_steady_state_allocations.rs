//! The whole data path allocates nothing per packet and at most once per frame, however many
//! targets: a counting allocator watches ten seconds of H.264 (FU-A fragmented) and PCMU RTP,
//! after a warm-up, go through everything the daemon runs for them — the media receiver's
//! datagram entry point (source latch, size check, SSRC admission, depacketizing, AAC), the
//! broadcast's output switcher, and for each of two RTMP targets its frame queue, publish
//! timeline, FLV mux and RTMP chunking — until the bytes are written to a real nginx-rtmp.
//! Allocations must stay far below one per frame (payloads come from shared blocks and are
//! shared by both targets), let alone one per packet. nginx's recording of each target must then be
//! H.264 + AAC, keyframe first, timestamps rising. The same again with SRTP: every datagram
//! is first decrypted in place by the call's [`MediaSrtp`], as the media session does.

mod alloc_support;
mod peers;
mod rtmp_support;

use alloc_support::{ALLOCATIONS, COUNTING};

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sipcast::frame::MediaFrame;
use sipcast::media::receiver::MediaReceiver;
use sipcast::media::rtp::{RtpPacket, write_packet};
use sipcast::media::timeline::Track;
use sipcast::media::{
    AudioOutputs, MediaConfig, MediaPort, MediaSrtp, RemoteMedia, RemoteStream, Verdict,
};
use sipcast::output::slate::Slate;
use sipcast::output::{Switcher, SwitcherConfig};
use sipcast::rtmp::flv::FlvTag;
use sipcast::rtmp::queue::{FrameQueue, QueueLimits};
use sipcast::rtmp::session::{PublishSession, SessionEvent, SessionParams};
use sipcast::rtmp::timeline::PublishTimeline;
use sipcast::secret::Secret;
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

/// One RTMP target as its publisher drives it, over a blocking socket to nginx.
struct Target {
    queue: FrameQueue,
    timeline: PublishTimeline,
    session: PublishSession,
    socket: TcpStream,
    tags: Vec<FlvTag>,
}

impl Target {
    /// Connects and publishes `key` (not counted: once per connection).
    fn publish(port: u16, key: &str) -> Target {
        let now = sipcast::clock::monotonic().into_std();
        let params = SessionParams {
            app: "live".into(),
            tc_url: format!("rtmp://127.0.0.1:{port}/live"),
            stream_key: Secret::new(key),
            setup_timeout: Duration::from_secs(10),
        };
        let mut session = PublishSession::new(now, params).unwrap();
        let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut buf = [0u8; 16 * 1024];
        loop {
            socket.write_all(session.pending_transmit()).unwrap();
            session.transmitted();
            if session.poll_event() == Some(SessionEvent::Publishing) {
                break;
            }
            let n = socket.read(&mut buf).unwrap();
            assert!(n > 0, "nginx hung up during setup");
            session
                .handle_input(sipcast::clock::monotonic().into_std(), &buf[..n])
                .unwrap();
        }
        let mut queue = FrameQueue::new(QueueLimits::default());
        queue.resume();
        let mut timeline = PublishTimeline::new();
        timeline.on_connect(queue.headers().clone());
        Target {
            queue,
            timeline,
            session,
            socket,
            tags: Vec::with_capacity(8),
        }
    }

    /// What the publisher task does on a wake-up: every queued frame muxed and chunked into
    /// one buffer, written at once.
    fn drain(&mut self) {
        while let Some(frame) = self.queue.pop() {
            self.timeline.tags_for(&frame, &mut self.tags);
            for tag in self.tags.drain(..) {
                self.session.send_tag(&tag).unwrap();
            }
        }
        self.socket
            .write_all(self.session.pending_transmit())
            .unwrap();
        self.session.transmitted();
    }
}

/// One test: the allocation counter is global, so the two runs must not overlap.
#[test]
fn steady_state_allocates_per_access_unit_not_per_packet() {
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
    let dir = tempfile::tempdir().unwrap();
    let nginx = rtmp_support::Nginx::start(dir.path(), None);
    let mut targets = [
        Target::publish(nginx.rtmp_port, "first"),
        Target::publish(nginx.rtmp_port, "second"),
    ];
    let addr = "127.0.0.1:9".parse().unwrap();
    let mut remote = RemoteMedia {
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
    let mut switcher = Switcher::new(start, SwitcherConfig::new(Slate::built_in(None), false));
    switcher.begin_source(start);
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
            switcher.push(now, frame);
        }
        if switcher.poll_timeout().is_some_and(|at| at <= now) {
            switcher.handle_timeout(now);
        }
        while let Some(frame) = switcher.poll_output() {
            for target in &mut targets {
                target.queue.push(frame.clone());
            }
        }
        for target in &mut targets {
            target.drain();
        }
        while receiver.poll_transmit().is_some() {}
    }
    COUNTING.store(false, Ordering::Relaxed);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    println!("{suite:?}: {packets} packets, {frames} frames, {allocations} allocations");
    assert_eq!(packets, 2000);
    // Payloads are carved from shared blocks (video access units, AAC and copied audio alike)
    // and cloned for each target by reference; the FLV head and RTMP chunking write into each
    // target's one reused buffer. Measured: 16 allocations for 719 frames and 2 targets.
    assert!(
        allocations <= frames / 8,
        "{allocations} allocations for {frames} frames and 2 targets"
    );

    // What was written is a stream nginx could record, per target.
    drop(targets);
    std::thread::sleep(Duration::from_millis(500));
    for key in ["first", "second"] {
        let recording = nginx
            .recorded_files()
            .into_iter()
            .find(|f| {
                f.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(key))
            })
            .unwrap_or_else(|| panic!("no recording of {key}"));
        let probe = rtmp_support::ffprobe(&recording);
        assert_eq!(probe.video_codec.as_deref(), Some("h264"), "{key}");
        assert_eq!(probe.audio_codec.as_deref(), Some("aac"), "{key}");
        assert!(probe.first_video_is_keyframe(), "{key}");
        assert!(probe.monotonic(), "{key}");
        let video = probe.packets.iter().filter(|p| p.0 == "video").count();
        assert!(video >= 14 * 25 - 30, "{key}: {video} video packets");
    }
}
