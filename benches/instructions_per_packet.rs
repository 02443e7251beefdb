//! Instructions per received packet and per published frame, counted by callgrind: the
//! regression reference for the data path's cost, exact where CPU time on a shared machine is
//! not.
//!
//! `cargo bench --bench instructions_per_packet -- [--pcap FILE] [--packets K]` runs this
//! program under `valgrind --tool=callgrind` six times and prints the figures. The pcap (by
//! default `tests/media/h264_pcmu.pcap`; `daemon_vs_ffmpeg --keep-pcap FILE` saves its 720p
//! capture) holds PCMU on its lowest UDP port and H.264 (PT 96, packetization-mode=1) two
//! above, as the callee scenarios play it. It is replayed in virtual time, looped as often as
//! needed with sequence numbers and timestamps carried on, through the library's data path
//! without sockets or real time:
//!
//! - **receive**: `MediaReceiver::handle_datagram` (latch, parse, admission, reorder,
//!   depacketize, PCMU decode and AAC encode), its timeouts, and draining `poll_frame`;
//! - **publish**: per frame `PublishTimeline::tags_for` and `PublishSession::send_tag` on a
//!   session publishing to an in-memory rml_rtmp server, then taking its `pending_transmit`
//!   bytes (what the publisher writes to its socket) and `transmitted`.
//!
//! Each phase is its own function, counted alone (`--collect-atstart=no --toggle-collect`).
//! After a warm-up the counted loop runs over K and then 2K packets; the difference of the two
//! totals divided by the difference of the packets (or frames) removes every one-off cost.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use sipcast::frame::MediaFrame;
use sipcast::media::receiver::MediaReceiver;
use sipcast::media::timeline::Track;
use sipcast::media::{MediaConfig, MediaPort, RemoteMedia, RemoteStream};
use sipcast::rtmp::flv::FlvTag;
use sipcast::rtmp::session::{PublishSession, SessionParams};
use sipcast::rtmp::timeline::PublishTimeline;
use sipcast::secret::Secret;

type Fallible<T> = Result<T, String>;

/// Packets through both phases before counting starts: past the first keyframe, the AAC
/// encoder's start-up and every buffer's first growth.
const WARM_UP: usize = 1000;
const DEFAULT_PACKETS: usize = 4000;
/// The phases, each with the function callgrind toggles on.
const PHASES: [(&str, &str); 3] = [
    ("video", "counted_packet"),
    ("audio", "counted_packet"),
    ("publish", "counted_frame"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = if args.iter().any(|a| a == "--count") {
        count(&args)
    } else if args.iter().any(|a| a == "--bench") {
        report(&args)
    } else {
        println!(
            "instructions_per_packet is a benchmark program: run it with \
             `cargo bench --bench instructions_per_packet -- [--pcap FILE] [--packets K]`"
        );
        Ok(())
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("instructions_per_packet: {e}");
            ExitCode::FAILURE
        }
    }
}

fn value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

fn pcap_arg(args: &[String]) -> PathBuf {
    value(args, "--pcap").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/media/h264_pcmu.pcap"),
        PathBuf::from,
    )
}

fn packets_arg(args: &[String]) -> Fallible<usize> {
    value(args, "--packets").map_or(Ok(DEFAULT_PACKETS), |v| {
        v.parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| "--packets needs a positive number".into())
    })
}

/// Runs itself under callgrind per phase, with K and 2K packets, and prints the figures.
fn report(args: &[String]) -> Fallible<()> {
    let pcap = pcap_arg(args);
    let k = packets_arg(args)?;
    let me = std::env::current_exe().map_err(|e| format!("own path: {e}"))?;
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    println!(
        "instructions_per_packet: {}, {WARM_UP} packets of warm-up, K = {k}",
        pcap.display()
    );
    println!();
    println!("| phase | instructions | per |");
    println!("| --- | ---: | --- |");
    for (phase, function) in PHASES {
        let mut runs = Vec::new();
        for packets in [k, 2 * k] {
            let out = dir.path().join(format!("callgrind.{phase}.{packets}"));
            let child = Command::new("valgrind")
                .args(["--tool=callgrind", "--collect-atstart=no"])
                .arg(format!("--toggle-collect=*{function}*"))
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(&me)
                .args(["--count", phase, "--pcap"])
                .arg(&pcap)
                .args(["--packets", &packets.to_string()])
                .output()
                .map_err(|e| format!("valgrind (is it installed?): {e}"))?;
            let stdout = String::from_utf8_lossy(&child.stdout);
            if !child.status.success() {
                let stderr = String::from_utf8_lossy(&child.stderr);
                return Err(format!("callgrind run failed:\n{stdout}\n{stderr}"));
            }
            let counted: Counted = stdout.parse()?;
            let text = std::fs::read_to_string(&out).map_err(|e| format!("{out:?}: {e}"))?;
            let total = text
                .lines()
                .find_map(|l| l.strip_prefix("summary:").or(l.strip_prefix("totals:")))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| format!("no totals in {out:?}"))?;
            runs.push((counted, total));
        }
        let [(small, small_total), (large, large_total)] = runs.as_slice() else {
            return Err("two runs expected".into());
        };
        let (units, what) = match phase {
            "video" => (large.video - small.video, "received video packet"),
            "audio" => (large.audio - small.audio, "received audio packet"),
            _ => (large.frames - small.frames, "published frame"),
        };
        let per = (large_total - small_total) as f64 / units.max(1) as f64;
        println!("| {phase} | {per:.0} | {what} |");
    }
    Ok(())
}

/// What one counted run went through after its warm-up.
#[derive(Clone, Copy, Debug)]
struct Counted {
    video: u64,
    audio: u64,
    frames: u64,
}

impl std::str::FromStr for Counted {
    type Err = String;
    fn from_str(text: &str) -> Fallible<Counted> {
        let field = |name: &str| {
            text.split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
                .ok_or_else(|| format!("no {name}= in {text:?}"))
        };
        Ok(Counted {
            video: field("video")?,
            audio: field("audio")?,
            frames: field("frames")?,
        })
    }
}

/// One RTP datagram of the pcap.
struct Datagram {
    at: Duration,
    track: Track,
    data: Vec<u8>,
}

/// The child: the data path over warm-up + K packets; prints what it counted.
fn count(args: &[String]) -> Fallible<()> {
    let pcap = pcap_arg(args);
    let packets = packets_arg(args)?;
    let phase = value(args, "--count").unwrap_or("publish");
    let counted_track = match phase {
        "video" => Some(Track::Video),
        "audio" => Some(Track::Audio),
        _ => None,
    };
    let datagrams = read_pcap(&pcap)?;
    let start = sipcast::clock::monotonic().into_std();
    let addr = "127.0.0.1:9".parse().map_err(|_| "address")?;
    let remote = RemoteMedia {
        audio: Some(RemoteStream::new(addr, 0, "PCMU", 8000)),
        video: Some(RemoteStream {
            fmtp: "packetization-mode=1".into(),
            ..RemoteStream::new(addr, 96, "H264", 90_000)
        }),
    };
    // The default publishes AAC, as a spec without `audio_codec` does.
    let mut receiver = MediaReceiver::new(&remote, MediaConfig::default(), start)
        .map_err(|e| format!("receiver: {e}"))?;
    let mut publisher = Publisher::new(start)?;
    let mut counted = Counted {
        video: 0,
        audio: 0,
        frames: 0,
    };
    let mut frames = Vec::new();
    let replay = Replay::new(&datagrams)?;
    for (i, (at, track, data)) in replay.take(WARM_UP + packets).enumerate() {
        let now = start + at;
        let counting = i >= WARM_UP;
        if counting && counted_track == Some(track) {
            counted_packet(&mut receiver, now, track, &data, &mut frames);
        } else {
            receive(&mut receiver, now, track, &data, &mut frames);
        }
        counted.video += u64::from(counting && track == Track::Video);
        counted.audio += u64::from(counting && track == Track::Audio);
        for frame in frames.drain(..) {
            if counting && counted_track.is_none() {
                counted.frames += 1;
                counted_frame(&mut publisher, &frame)?;
            } else {
                publisher.publish(&frame)?;
            }
        }
    }
    println!(
        "video={} audio={} frames={} bytes_out={}",
        counted.video, counted.audio, counted.frames, publisher.bytes_out
    );
    Ok(())
}

/// The receive path for one counted packet, a function of its own for callgrind to toggle on.
#[inline(never)]
fn counted_packet(
    receiver: &mut MediaReceiver,
    now: Instant,
    track: Track,
    data: &[u8],
    frames: &mut Vec<MediaFrame>,
) {
    receive(receiver, now, track, data, frames);
}

/// The publish path for one counted frame, a function of its own for callgrind to toggle on.
#[inline(never)]
fn counted_frame(publisher: &mut Publisher, frame: &MediaFrame) -> Fallible<()> {
    publisher.publish(frame)
}

/// The receive path as the media driver runs it for one datagram.
#[inline(always)]
fn receive(
    receiver: &mut MediaReceiver,
    now: Instant,
    track: Track,
    data: &[u8],
    frames: &mut Vec<MediaFrame>,
) {
    if receiver.poll_timeout().is_some_and(|t| t <= now) {
        receiver.handle_timeout(now);
    }
    let from = match track {
        Track::Audio => ([127, 0, 0, 1], 9).into(),
        Track::Video => ([127, 0, 0, 1], 11).into(),
    };
    receiver.handle_datagram(now, MediaPort::new(track, false), from, data);
    while let Some(frame) = receiver.poll_frame() {
        frames.push(frame);
    }
    while receiver.poll_transmit().is_some() {}
    while receiver.poll_event().is_some() {}
}

/// A publishing RTMP session and its timeline; what it would write is counted and dropped.
struct Publisher {
    session: PublishSession,
    timeline: PublishTimeline,
    tags: Vec<FlvTag>,
    bytes_out: usize,
}

impl Publisher {
    fn new(now: Instant) -> Fallible<Publisher> {
        let params = SessionParams {
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1/live".into(),
            stream_key: Secret::new("bench"),
            setup_timeout: Duration::from_secs(10),
        };
        let mut session = PublishSession::new(now, params).map_err(|e| format!("{e}"))?;
        let mut server = Server::new();
        for _ in 0..100 {
            while let Some(bytes) = session.poll_transmit() {
                server.input(&bytes)?;
            }
            if session.is_publishing() {
                return Ok(Publisher {
                    session,
                    timeline: PublishTimeline::new(),
                    tags: Vec::new(),
                    bytes_out: 0,
                });
            }
            let bytes = std::mem::take(&mut server.to_client);
            session
                .handle_input(now, &bytes)
                .map_err(|e| format!("{e}"))?;
        }
        Err("the in-memory server never accepted the publish".into())
    }

    #[inline(always)]
    fn publish(&mut self, frame: &MediaFrame) -> Fallible<()> {
        self.timeline.tags_for(frame, &mut self.tags);
        for tag in self.tags.drain(..) {
            self.session.send_tag(&tag).map_err(|e| format!("{e}"))?;
        }
        // What the publisher hands its socket, then lets the session reuse the buffer.
        self.bytes_out += self.session.pending_transmit().len();
        self.session.transmitted();
        Ok(())
    }
}

/// rml_rtmp's server side in memory, accepting the connect and the publish: just enough to
/// bring the session to publishing.
struct Server {
    handshake: Handshake,
    session: Option<ServerSession>,
    to_client: Vec<u8>,
}

impl Server {
    fn new() -> Server {
        Server {
            handshake: Handshake::new(PeerType::Server),
            session: None,
            to_client: Vec::new(),
        }
    }

    fn input(&mut self, bytes: &[u8]) -> Fallible<()> {
        let fail = |e: &dyn std::fmt::Debug| format!("in-memory RTMP server: {e:?}");
        let Some(session) = self.session.as_mut() else {
            let (reply, rest) = match self.handshake.process_bytes(bytes).map_err(|e| fail(&e))? {
                HandshakeProcessResult::InProgress { response_bytes } => (response_bytes, None),
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => (response_bytes, Some(remaining_bytes)),
            };
            self.to_client.extend(reply);
            if let Some(rest) = rest {
                let (session, results) =
                    ServerSession::new(ServerSessionConfig::new()).map_err(|e| fail(&e))?;
                self.session = Some(session);
                self.apply(results)?;
                return self.input(&rest);
            }
            return Ok(());
        };
        if bytes.is_empty() {
            return Ok(());
        }
        let results = session.handle_input(bytes).map_err(|e| fail(&e))?;
        self.apply(results)
    }

    fn apply(&mut self, results: Vec<ServerSessionResult>) -> Fallible<()> {
        let mut pending = results;
        while !pending.is_empty() {
            let mut next = Vec::new();
            for result in pending {
                match result {
                    ServerSessionResult::OutboundResponse(packet) => {
                        self.to_client.extend(packet.bytes)
                    }
                    ServerSessionResult::RaisedEvent(
                        ServerSessionEvent::ConnectionRequested { request_id, .. }
                        | ServerSessionEvent::PublishStreamRequested { request_id, .. },
                    ) => {
                        let session = self.session.as_mut().ok_or("no session")?;
                        let accepted = session.accept_request(request_id);
                        next.extend(accepted.map_err(|e| format!("accept: {e:?}"))?);
                    }
                    _ => {}
                }
            }
            pending = next;
        }
        Ok(())
    }
}

/// The pcap's datagrams forever: each pass after the first shifted in time, and in RTP
/// sequence numbers and timestamps, so the receiver sees one long call.
struct Replay<'a> {
    datagrams: &'a [Datagram],
    /// A pass's length in time, and per track in sequence numbers and RTP timestamp units.
    span: Duration,
    sequences: [u16; 2],
    clocks: [u32; 2],
    next: usize,
}

impl<'a> Replay<'a> {
    fn new(datagrams: &'a [Datagram]) -> Fallible<Replay<'a>> {
        let last = datagrams.last().ok_or("the pcap holds no RTP")?;
        // One audio packet's worth after the last, so passes do not overlap.
        let span = last.at + Duration::from_millis(20);
        let count = |track| datagrams.iter().filter(|d| d.track == track).count() as u16;
        let clock = |rate: u64| (span.as_micros() as u64 * rate / 1_000_000) as u32;
        Ok(Replay {
            datagrams,
            span,
            sequences: [count(Track::Audio), count(Track::Video)],
            clocks: [clock(8000), clock(90_000)],
            next: 0,
        })
    }
}

impl Iterator for Replay<'_> {
    type Item = (Duration, Track, Vec<u8>);

    fn next(&mut self) -> Option<Self::Item> {
        let pass = (self.next / self.datagrams.len()) as u32;
        let datagram = self.datagrams.get(self.next % self.datagrams.len())?;
        self.next += 1;
        let i = usize::from(datagram.track == Track::Video);
        let mut data = datagram.data.clone();
        if let (Some(seq), Some(ts)) = (data.get(2..4), data.get(4..8)) {
            let seq = u16::from_be_bytes([seq[0], seq[1]])
                .wrapping_add(self.sequences[i].wrapping_mul(pass as u16));
            let ts = u32::from_be_bytes([ts[0], ts[1], ts[2], ts[3]])
                .wrapping_add(self.clocks[i].wrapping_mul(pass));
            data[2..4].copy_from_slice(&seq.to_be_bytes());
            data[4..8].copy_from_slice(&ts.to_be_bytes());
        }
        Some((datagram.at + self.span * pass, datagram.track, data))
    }
}

/// The RTP datagrams of an Ethernet/IPv4/UDP pcap, times relative to the first; the lowest
/// UDP destination port is audio, the one two above video.
fn read_pcap(path: &Path) -> Fallible<Vec<Datagram>> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let u32_at = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u32_at(0) != Some(0xa1b2_c3d4) {
        return Err(format!(
            "{}: not a little-endian microsecond pcap",
            path.display()
        ));
    }
    let mut raw = Vec::new();
    let mut at = 24;
    while let (Some(sec), Some(usec), Some(len)) = (u32_at(at), u32_at(at + 4), u32_at(at + 8)) {
        let record = bytes
            .get(at + 16..at + 16 + len as usize)
            .ok_or("truncated pcap record")?;
        at += 16 + len as usize;
        // Ethernet (14) + IPv4 (IHL words) + UDP (8).
        let ihl = usize::from(record.get(14).ok_or("short frame")? & 0x0f) * 4;
        let udp = record.get(14 + ihl..).ok_or("short frame")?;
        let port = udp.get(2..4).ok_or("short UDP header")?;
        let port = u16::from_be_bytes([port[0], port[1]]);
        let time = Duration::from_secs(u64::from(sec)) + Duration::from_micros(u64::from(usec));
        raw.push((time, port, udp.get(8..).unwrap_or_default().to_vec()));
    }
    let lowest = raw.iter().map(|r| r.1).min().ok_or("the pcap is empty")?;
    let first = raw.iter().map(|r| r.0).min().unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(time, port, data)| {
            let track = match port - lowest {
                0 => Track::Audio,
                2 => Track::Video,
                _ => return None,
            };
            Some(Datagram {
                at: time - first,
                track,
                data,
            })
        })
        .collect())
}
