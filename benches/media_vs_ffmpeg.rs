//! Cost of the media path against ffmpeg doing the same job, measured in the same run.
//!
//! 1. ffmpeg sends `--record` seconds of H.264 (testsrc 320x240, 25 fps) + PCMU over RTP once;
//!    the datagrams are recorded with their arrival times.
//! 2. `--streams` sipcast pipelines (MediaSession → AAC → RTMP publisher) take the recording,
//!    replayed in a loop for `--seconds` over loopback by a child process, and publish to a
//!    local nginx-rtmp.
//! 3. The same number of `ffmpeg -i call.sdp -c:v copy -c:a aac -f flv rtmp://…` processes take
//!    the same replay and publish to the same nginx.
//!
//! Printed: CPU seconds per stream-minute and peak RSS per stream for both, and the ratios.
//! Run: `cargo bench --bench media_vs_ffmpeg -- --streams 4 --seconds 60`.

#[path = "../tests/media_support/mod.rs"]
mod media_support;
#[path = "../tests/rtmp_support/mod.rs"]
mod rtmp_support;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use media_support::{KillOnDrop, RtpSource, require};
use rtmp_support::Nginx;
use sipcast::media::{LocalMedia, MediaConfig, MediaSession, RemoteMedia};
use sipcast::rtmp::{PublishTarget, PublisherConfig, spawn};

const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

#[derive(Clone, Copy, Debug)]
struct Options {
    streams: usize,
    seconds: u64,
    record: u64,
}

fn options() -> Options {
    let mut options = Options {
        streams: 4,
        seconds: 60,
        record: 10,
    };
    let args: Vec<String> = std::env::args().collect();
    for pair in args.windows(2) {
        let value = || pair[1].parse().expect("a number");
        match pair[0].as_str() {
            "--streams" => options.streams = value() as usize,
            "--seconds" => options.seconds = value(),
            "--record" => options.record = value(),
            _ => {}
        }
    }
    options
}

/// One recorded datagram: arrival offset (µs), video or audio, bytes.
type Recording = Vec<(u64, bool, Vec<u8>)>;

/// CPU seconds (user + system) of a process, from /proc.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| {
        f.iter().filter_map(|v| v.parse::<f64>().ok()).sum()
    });
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Peak resident set of a process in MiB (VmHWM).
fn peak_rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn current_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Records what ffmpeg sends for `seconds`; returns the datagrams and the SDP.
async fn record(seconds: u64, dir: &Path) -> (Recording, RemoteMedia) {
    let local = LocalMedia::bind(LOOPBACK, 20_000..=59_999, true)
        .await
        .unwrap();
    let mut source = RtpSource::start(&local, seconds as f64, dir).await;
    let video = local.video.clone().unwrap().rtp;
    let audio = local.audio.rtp.clone();
    let start = sipcast::clock::monotonic();
    let mut recording = Vec::new();
    let (mut vbuf, mut abuf) = ([0u8; 2048], [0u8; 2048]);
    let mut check = tokio::time::interval(Duration::from_millis(100));
    loop {
        let at = || {
            sipcast::clock::monotonic()
                .duration_since(start)
                .as_micros() as u64
        };
        tokio::select! {
            Ok(n) = video.recv(&mut vbuf) => recording.push((at(), true, vbuf[..n].to_vec())),
            Ok(n) = audio.recv(&mut abuf) => recording.push((at(), false, abuf[..n].to_vec())),
            _ = check.tick() => if source.finished() { break },
        }
    }
    (recording, source.remote.clone())
}

/// Child-process mode: replays the recording file to `video_port,audio_port` pairs, looping with
/// sequence numbers and timestamps continued, for `seconds`.
fn replay(path: &str, seconds: u64, pairs: &[(u16, u16)]) {
    let bytes = std::fs::read(path).expect("recording");
    let mut recording: Recording = Vec::new();
    let mut rest = &bytes[..];
    while rest.len() >= 11 {
        let at = u64::from_be_bytes(rest[..8].try_into().unwrap());
        let video = rest[8] == 1;
        let len = usize::from(u16::from_be_bytes([rest[9], rest[10]]));
        recording.push((at, video, rest[11..11 + len].to_vec()));
        rest = &rest[11 + len..];
    }
    let span = recording.last().map_or(1, |r| r.0) + 40_000;
    let count = |video: bool| recording.iter().filter(|r| r.1 == video).count() as u16;
    let (video_count, audio_count) = (count(true), count(false));
    let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
    #[allow(clippy::disallowed_methods)] // a separate replay process, not a core
    let start = std::time::Instant::now();
    let mut datagram = Vec::with_capacity(2048);
    for lap in 0.. {
        for (at, video, original) in &recording {
            let due = Duration::from_micros(lap * span + at);
            if due.as_secs() >= seconds {
                return;
            }
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            let (per_lap, rate) = if *video {
                (video_count, 90_000)
            } else {
                (audio_count, 8000)
            };
            datagram.clear();
            datagram.extend_from_slice(original);
            let seq = u16::from_be_bytes([datagram[2], datagram[3]])
                .wrapping_add(per_lap.wrapping_mul(lap as u16));
            datagram[2..4].copy_from_slice(&seq.to_be_bytes());
            let ts = u32::from_be_bytes(datagram[4..8].try_into().unwrap())
                .wrapping_add((lap * span * rate / 1_000_000) as u32);
            datagram[4..8].copy_from_slice(&ts.to_be_bytes());
            for &(video_port, audio_port) in pairs {
                let port = if *video { video_port } else { audio_port };
                let _ = socket.send_to(&datagram, SocketAddr::new(LOOPBACK, port));
            }
        }
    }
}

fn write_recording(recording: &Recording, path: &Path) {
    let mut out = Vec::new();
    for (at, video, bytes) in recording {
        out.extend_from_slice(&at.to_be_bytes());
        out.push(u8::from(*video));
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    std::fs::write(path, out).unwrap();
}

fn spawn_replay(path: &Path, seconds: u64, pairs: &[(u16, u16)]) -> KillOnDrop {
    let pairs: Vec<String> = pairs.iter().map(|(v, a)| format!("{v},{a}")).collect();
    let child = Command::new(std::env::current_exe().unwrap())
        .arg("--replay")
        .arg(path)
        .arg(seconds.to_string())
        .args(pairs)
        .spawn()
        .expect("replay child");
    KillOnDrop(child)
}

struct Figures {
    cpu_per_stream_minute: f64,
    rss_per_stream_mib: f64,
}

async fn run_sipcast(
    options: Options,
    recording: &Path,
    remote: &RemoteMedia,
    rtmp: u16,
) -> Figures {
    let baseline_rss = current_rss_mib();
    let (done, finished) = tokio::sync::watch::channel(false);
    let mut pairs = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..options.streams {
        let local = LocalMedia::bind(LOOPBACK, 20_000..=59_999, true)
            .await
            .unwrap();
        pairs.push((
            local.video.as_ref().unwrap().rtp_port(),
            local.audio.rtp_port(),
        ));
        let (session, mut media) =
            MediaSession::start(local, remote.clone(), MediaConfig::default()).unwrap();
        let publisher = spawn(
            PublishTarget {
                url: format!("rtmp://127.0.0.1:{rtmp}/live/sipcast{i}"),
                stream_key: None,
                ca_file: None,
            },
            PublisherConfig::default(),
        );
        let mut finished = finished.clone();
        tasks.push(tokio::spawn(async move {
            let mut keyframes = publisher.keyframe_requests();
            loop {
                tokio::select! {
                    frame = media.frames.recv() => match frame {
                        Some(frame) => publisher.send(frame),
                        None => break,
                    },
                    Ok(()) = keyframes.changed() => session.request_keyframe(),
                    // AAC silence never stops on its own: end when the replay has.
                    _ = finished.changed() => break,
                }
            }
            publisher.stop().await;
            session.stop().await;
        }));
    }
    let cpu_before = cpu_seconds("self");
    let mut replay = spawn_replay(recording, options.seconds, &pairs);
    let _ = tokio::task::spawn_blocking(move || replay.0.wait()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = done.send(true);
    for task in tasks {
        let _ = task.await;
    }
    let cpu = cpu_seconds("self") - cpu_before;
    let minutes = options.seconds as f64 / 60.0;
    Figures {
        cpu_per_stream_minute: cpu / options.streams as f64 / minutes,
        rss_per_stream_mib: (peak_rss_mib("self") - baseline_rss).max(0.0) / options.streams as f64,
    }
}

/// The recorded SDP with other ports, for ffmpeg's `-i`.
fn sdp_for(sdp: &str, video_port: u16, audio_port: u16) -> String {
    sdp.lines()
        .map(|line| {
            let mut fields: Vec<String> = line.split(' ').map(String::from).collect();
            if line.starts_with("m=video") {
                fields[1] = video_port.to_string();
            } else if line.starts_with("m=audio") {
                fields[1] = audio_port.to_string();
            }
            fields.join(" ") + "\n"
        })
        .collect()
}

/// An even port whose odd neighbour is free too, for ffmpeg's RTP/RTCP pair.
fn free_pair() -> u16 {
    loop {
        let socket = UdpSocket::bind((LOOPBACK, 0)).unwrap();
        let port = socket.local_addr().unwrap().port() & !1;
        drop(socket);
        if UdpSocket::bind((LOOPBACK, port)).is_ok()
            && UdpSocket::bind((LOOPBACK, port + 1)).is_ok()
        {
            return port;
        }
    }
}

async fn run_ffmpeg(
    options: Options,
    recording: &Path,
    sdp: &str,
    dir: &Path,
    rtmp: u16,
) -> Figures {
    let mut pairs = Vec::new();
    let mut children = Vec::new();
    for i in 0..options.streams {
        let (video, audio) = (free_pair(), free_pair());
        pairs.push((video, audio));
        let path = dir.join(format!("ffmpeg{i}.sdp"));
        std::fs::write(&path, sdp_for(sdp, video, audio)).unwrap();
        let child = Command::new("ffmpeg")
            .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
            .args(["-protocol_whitelist", "file,udp,rtp", "-i"])
            .arg(&path)
            .args([
                "-c:v", "copy", "-c:a", "aac", "-b:a", "64k", "-ar", "48000", "-ac", "1",
            ])
            .args([
                "-f",
                "flv",
                &format!("rtmp://127.0.0.1:{rtmp}/live/ffmpeg{i}"),
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("ffmpeg");
        children.push(KillOnDrop(child));
    }
    // ffmpeg opens its sockets once it has read the SDP.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut replay = spawn_replay(recording, options.seconds, &pairs);
    let _ = tokio::task::spawn_blocking(move || replay.0.wait()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (mut cpu, mut rss) = (0.0, 0.0);
    for child in &children {
        let pid = child.0.id().to_string();
        cpu += cpu_seconds(&pid);
        rss += peak_rss_mib(&pid);
    }
    drop(children);
    let minutes = options.seconds as f64 / 60.0;
    Figures {
        cpu_per_stream_minute: cpu / options.streams as f64 / minutes,
        rss_per_stream_mib: rss / options.streams as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--replay") {
        let pairs: Vec<(u16, u16)> = args[at + 3..]
            .iter()
            .filter_map(|p| p.split_once(','))
            .map(|(v, a)| (v.parse().unwrap(), a.parse().unwrap()))
            .collect();
        replay(&args[at + 1], args[at + 2].parse().unwrap(), &pairs);
        return;
    }
    let options = options();
    require("ffmpeg");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        eprintln!("recording {} s of RTP from ffmpeg…", options.record);
        let (recording, remote) = record(options.record, dir.path()).await;
        let recording_path = dir.path().join("recording.bin");
        write_recording(&recording, &recording_path);
        let sdp = std::fs::read_to_string(dir.path().join("ffmpeg.sdp")).unwrap();
        let nginx = Nginx::start(dir.path(), None);
        eprintln!(
            "{} sipcast pipelines for {} s…",
            options.streams, options.seconds
        );
        let ours = run_sipcast(options, &recording_path, &remote, nginx.rtmp_port).await;
        eprintln!(
            "{} ffmpeg processes for {} s…",
            options.streams, options.seconds
        );
        let theirs = run_ffmpeg(options, &recording_path, &sdp, dir.path(), nginx.rtmp_port).await;
        println!(
            "streams {}, {} s each, H.264 320x240 25 fps copied, PCMU → AAC 64 kbit/s",
            options.streams, options.seconds
        );
        println!(
            "{:<10} {:>24} {:>24}",
            "", "CPU s per stream-minute", "peak RSS MiB per stream"
        );
        println!(
            "{:<10} {:>24.3} {:>24.1}",
            "sipcast", ours.cpu_per_stream_minute, ours.rss_per_stream_mib
        );
        println!(
            "{:<10} {:>24.3} {:>24.1}",
            "ffmpeg", theirs.cpu_per_stream_minute, theirs.rss_per_stream_mib
        );
        // Both must really have published: nginx recorded every stream.
        for who in ["sipcast", "ffmpeg"] {
            let sizes: Vec<u64> = nginx
                .recorded_files()
                .iter()
                .filter(|f| {
                    f.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(who))
                })
                .filter_map(|f| f.metadata().ok().map(|m| m.len() / 1024))
                .collect();
            println!("{who:<10} recorded KiB per stream (as flushed so far): {sizes:?}");
        }
        println!(
            "{:<10} {:>23.1}x {:>23.1}x",
            "ffmpeg/us",
            theirs.cpu_per_stream_minute / ours.cpu_per_stream_minute.max(1e-9),
            theirs.rss_per_stream_mib / ours.rss_per_stream_mib.max(1e-9)
        );
    });
}
