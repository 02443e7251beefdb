//! The programs around the pipelines: the recorded input, the ffmpeg RTP senders, child
//! processes and free ports.

use std::fs::File;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{Fallible, LOOPBACK, host};

/// What the recorded input looks like: H.264 Constrained Baseline without B-frames at a fixed
/// rate (as a phone's encoder keeps it) and a 440 Hz tone as PCMU.
pub struct SourceFormat {
    /// ffmpeg's lavfi test pattern (`testsrc`, `testsrc2`).
    pub pattern: &'static str,
    /// libx264's preset: how hard the encoder works for the bits.
    pub preset: &'static str,
    /// `WIDTHxHEIGHT`.
    pub size: &'static str,
    pub fps: u32,
    /// Frames from one keyframe to the next.
    pub gop: u32,
    pub video_kbps: u32,
    /// Length of the recording; the senders loop it.
    pub seconds: u32,
}

impl SourceFormat {
    /// `pipeline_vs_ffmpeg`'s input.
    pub const PIPELINE: SourceFormat = SourceFormat {
        pattern: "testsrc",
        preset: "medium",
        size: "640x360",
        fps: 25,
        gop: 50,
        video_kbps: 600,
        seconds: 30,
    };
}

pub fn require(program: &str) -> Fallible<()> {
    host::installed(program)
        .then_some(())
        .ok_or_else(|| format!("{program} is required (install it; CI does)"))
}

/// A child process, stderr to `log`, killed when dropped.
pub struct Process {
    child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn spawn(mut command: Command, log: &Path) -> Fallible<Process> {
        let file = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .map_err(|e| format!("{:?}: {e}", command.get_program()))?;
        Ok(Process {
            child,
            log: log.to_path_buf(),
        })
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, so it can hang up and flush; SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        host::stop(&mut self.child, grace);
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A recorded call to replay in `format`, with the tone as PCMU in 20 ms packets (what a phone
/// sends), in Matroska, which `-c copy` streams as it is.
pub fn make_source(dir: &Path, format: &SourceFormat) -> Fallible<PathBuf> {
    let path = dir.join("source.mkv");
    let SourceFormat {
        pattern,
        preset,
        size,
        fps,
        gop,
        video_kbps: kbps,
        seconds,
    } = format;
    // A fixed rate, as a phone's encoder keeps: testsrc alone would need far fewer bits.
    let video_rate = format!("-b:v {kbps}k -maxrate {kbps}k -bufsize {}k", 2 * kbps);
    let out = Command::new("ffmpeg")
        .args(words("-nostdin -hide_banner -loglevel error -y"))
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("{pattern}=size={size}:rate={fps}"),
        ])
        .args(words(
            "-f lavfi -i sine=frequency=440:sample_rate=8000:samples_per_frame=160",
        ))
        .args(["-t", &seconds.to_string()])
        .args(words(
            "-map 0:v -c:v libx264 -profile:v baseline -pix_fmt yuv420p -bf 0",
        ))
        .args(["-preset", preset])
        // SPS and PPS before every keyframe, in-band, as a phone sends them (Matroska keeps
        // them in its header too, for the senders' SDP).
        .args(words("-x264-params repeat-headers=1"))
        .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()])
        .args(words("-sc_threshold 0"))
        .args(words(&video_rate))
        .args(words("-map 1:a -c:a pcm_mulaw -ar 8000 -ac 1"))
        .arg(&path)
        .output()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("ffmpeg making the source: {stderr}"));
    }
    Ok(path)
}

/// An ffmpeg replaying a recording in real time, forever, as RTP; killed when dropped.
pub struct Sender {
    process: Process,
    /// The SDP file the sender wrote: what it sends, for the receiving side.
    pub sdp_path: PathBuf,
    pub sdp: String,
}

impl Sender {
    pub fn pid(&self) -> String {
        self.process.pid()
    }
}

/// SRTP keys (key and salt, base64 as in SDES `inline:`) a sender encrypts its video and audio
/// with, `AES_CM_128_HMAC_SHA1_80` (ffmpeg's `srtp` protocol has no AES-256).
pub struct SenderKeys {
    pub video: String,
    pub audio: String,
}

/// Starts a sender of `source` to the given video and audio RTP ports (as SRTP with `keys`),
/// logging into `dir`, and waits for its SDP.
pub async fn start_sender(
    source: &Path,
    dir: &Path,
    name: &str,
    (video_port, audio_port): (u16, u16),
    keys: Option<&SenderKeys>,
) -> Fallible<Sender> {
    let sdp_path = dir.join(format!("{name}.sdp"));
    let mut sender = Command::new("ffmpeg");
    sender
        .args(words(
            "-nostdin -hide_banner -loglevel error -re -stream_loop -1 -i",
        ))
        .arg(source);
    for (map, port, key) in [
        ("0:v", video_port, keys.map(|k| &k.video)),
        ("0:a", audio_port, keys.map(|k| &k.audio)),
    ] {
        sender.args(["-map", map]).args(words("-c copy -f rtp"));
        match key {
            Some(key) => sender
                .args([
                    "-srtp_out_suite",
                    "AES_CM_128_HMAC_SHA1_80",
                    "-srtp_out_params",
                    key,
                ])
                .arg(format!("srtp://{LOOPBACK}:{port}")),
            None => sender.arg(format!("rtp://{LOOPBACK}:{port}")),
        };
    }
    sender.arg("-sdp_file").arg(&sdp_path);
    let mut process = Process::spawn(sender, &dir.join(format!("{name}-sender.log")))?;
    for _ in 0..200 {
        let sdp = std::fs::read_to_string(&sdp_path).unwrap_or_default();
        if sdp.contains("m=audio") {
            return Ok(Sender {
                process,
                sdp_path,
                sdp,
            });
        }
        if !process.alive() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = process.log.display();
    Err(format!("the RTP sender wrote no SDP; see {log}"))
}

/// Command-line words, for arguments without spaces.
pub fn words(line: &str) -> impl Iterator<Item = &str> {
    line.split_whitespace()
}

pub fn free_tcp_port() -> Fallible<u16> {
    TcpListener::bind((LOOPBACK, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free TCP port: {e}"))
}

/// An even UDP port and the odd one above it, both free; held until the sockets are dropped.
pub fn reserve_udp_pair() -> Fallible<(UdpSocket, UdpSocket)> {
    for _ in 0..200 {
        let Ok(rtp) = UdpSocket::bind((LOOPBACK, 0)) else {
            continue;
        };
        let port = rtp.local_addr().map_or(1, |a| a.port());
        if port % 2 == 1 || port == u16::MAX - 1 {
            continue;
        }
        if let Ok(rtcp) = UdpSocket::bind((LOOPBACK, port + 1)) {
            return Ok((rtp, rtcp));
        }
    }
    Err("no free even/odd UDP port pair on 127.0.0.1".into())
}
