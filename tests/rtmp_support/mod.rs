//! Shared pieces of the RTMP integration tests: a real nginx with the RTMP module (and the
//! stream module for TLS), FLV sources made by ffmpeg, ffprobe on nginx's recordings.
#![allow(dead_code)] // each test binary uses a different subset

pub use crate::peers::require;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use sipcast::frame::{AudioFormat, MediaFrame, StreamMetadata};
use sipcast::rtmp::flv::{TagKind, demux};
use sipcast::rtmp::flv_file::FlvReader;

const RTMP_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// TLS material for the stream proxy: a test CA and a server cert for `localhost`/127.0.0.1.
pub struct TestPki {
    pub ca_cert: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

pub fn make_pki(dir: &Path) -> TestPki {
    require("openssl");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sipcast test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
    TestPki {
        ca_cert: dir.join("ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    }
}

/// nginx with an RTMP server on `rtmp_port`: application `live` records every publish into
/// `recordings` (one file per publish), application `closed` denies publishing. nginx pings
/// idle clients every second and drops those that do not answer within a second. With `tls`, a
/// stream server on `tls_port` terminates TLS and proxies to the RTMP port.
pub struct Nginx {
    pub dir: PathBuf,
    pub rtmp_port: u16,
    pub tls_port: Option<u16>,
    child: Option<Child>,
}

impl Nginx {
    pub fn start(dir: &Path, pki: Option<&TestPki>) -> Nginx {
        require("nginx");
        let mut nginx = Nginx {
            dir: dir.to_path_buf(),
            rtmp_port: free_port(),
            tls_port: pki.map(|_| free_port()),
            child: None,
        };
        std::fs::create_dir_all(nginx.recordings()).unwrap();
        let mut conf = format!(
            "load_module {RTMP_MODULE};\n{}daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\n\
             error_log {dir}/error.log info;\nevents {{ worker_connections 64; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096; ping 1s; ping_timeout 1s;\n\
               application live {{ live on; record all; record_unique on; record_path {rec}; }}\n\
               application closed {{ live on; deny publish all; }}\n}} }}\n",
            if pki.is_some() {
                format!("load_module {STREAM_MODULE};\n")
            } else {
                String::new()
            },
            dir = dir.display(),
            port = nginx.rtmp_port,
            rec = nginx.recordings().display(),
        );
        if let (Some(pki), Some(tls_port)) = (pki, nginx.tls_port) {
            conf.push_str(&format!(
                "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl; ssl_certificate {}; \
                 ssl_certificate_key {}; proxy_pass 127.0.0.1:{}; }} }}\n",
                pki.server_cert.display(),
                pki.server_key.display(),
                nginx.rtmp_port
            ));
        }
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        nginx.spawn();
        nginx
    }

    pub fn recordings(&self) -> PathBuf {
        self.dir.join("recordings")
    }

    fn spawn(&mut self) {
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.dir.join("error.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        self.child = Some(child);
        let ports = [Some(self.rtmp_port), self.tls_port];
        for port in ports.into_iter().flatten() {
            wait_for_port(port, &self.dir);
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stays, its sockets stop reading, as with a hung server.
    pub fn freeze(&self) {
        let pid = self.child.as_ref().expect("nginx running").id();
        let status = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }

    /// Recorded files, oldest first.
    pub fn recorded_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(self.recordings())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        files
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_port(port: u16, dir: &Path) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    panic!("nginx did not listen on {port}:\n{log}");
}

/// Audio of a test source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceAudio {
    Aac,
    Pcmu,
    /// A-law and no video stream at all.
    PcmaWithoutVideo,
}

/// An H.264 (baseline, 320x240, 25 fps, a keyframe every second) FLV made by ffmpeg, read back
/// as MediaFrames with a leading Metadata frame.
pub fn source_frames(dir: &Path, seconds: u32, audio: SourceAudio) -> Vec<MediaFrame> {
    require("ffmpeg");
    let path = dir.join(format!("source-{audio:?}-{seconds}.flv"));
    let audio_args: &[&str] = match audio {
        SourceAudio::Aac => &["-c:a", "aac", "-ar", "44100", "-ac", "1"],
        SourceAudio::Pcmu => &["-c:a", "pcm_mulaw", "-ar", "8000", "-ac", "1"],
        SourceAudio::PcmaWithoutVideo => &["-vn", "-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"],
    };
    let video = audio != SourceAudio::PcmaWithoutVideo;
    let out = Command::new("ffmpeg")
        .args([
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-bf",
            "0",
            "-g",
            "25",
        ])
        .args(["-pix_fmt", "yuv420p"])
        .args(audio_args)
        .arg(&path)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = Bytes::from(std::fs::read(&path).unwrap());
    let mut frames = vec![MediaFrame::Metadata(StreamMetadata {
        width: video.then_some(320),
        height: video.then_some(240),
        frame_rate: video.then_some(25.0),
        video,
        audio: Some(match audio {
            SourceAudio::Aac => AudioFormat::Aac,
            SourceAudio::Pcmu => AudioFormat::Pcmu,
            SourceAudio::PcmaWithoutVideo => AudioFormat::Pcma,
        }),
        audio_sample_rate: Some(match audio {
            SourceAudio::Aac => 44_100,
            SourceAudio::Pcmu | SourceAudio::PcmaWithoutVideo => 8_000,
        }),
        audio_channels: Some(1),
        audio_bitrate_kbps: None,
    })];
    for tag in FlvReader::new(data).unwrap() {
        let tag = tag.unwrap();
        if tag.kind == TagKind::Script {
            continue;
        }
        if let Some(frame) = demux(tag.kind, tag.timestamp_ms, &tag.body()).unwrap() {
            frames.push(frame);
        }
    }
    frames
}

/// Media timestamp of a frame (configuration frames: none).
pub fn frame_ts(frame: &MediaFrame) -> Option<u32> {
    match frame {
        MediaFrame::Video { dts_ms, .. } => Some(*dts_ms),
        MediaFrame::Audio { ts_ms, .. } => Some(*ts_ms),
        _ => None,
    }
}

/// What ffprobe finds in a recording.
#[derive(Debug)]
pub struct Probe {
    pub video_codec: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub audio_codec: Option<String>,
    pub duration: f64,
    /// (codec_type, dts seconds, is_key) per packet in file order.
    pub packets: Vec<(String, f64, bool)>,
}

impl Probe {
    pub fn first_video_is_keyframe(&self) -> bool {
        self.packets
            .iter()
            .find(|p| p.0 == "video")
            .is_some_and(|p| p.2)
    }

    /// DTS never decreases within a stream.
    pub fn monotonic(&self) -> bool {
        ["video", "audio"].iter().all(|kind| {
            let dts: Vec<f64> = self
                .packets
                .iter()
                .filter(|p| p.0 == *kind)
                .map(|p| p.1)
                .collect();
            dts.windows(2).all(|w| w[1] >= w[0])
        })
    }

    pub fn first_dts(&self) -> f64 {
        self.packets.first().map_or(f64::NAN, |p| p.1)
    }
}

pub fn ffprobe(path: &Path) -> Probe {
    require("ffprobe");
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries"])
        .arg("stream=codec_type,codec_name,width,height:format=duration:packet=codec_type,dts_time,flags")
        .arg("-show_packets")
        .arg(path)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let stream = |kind: &str| streams.iter().find(|s| s["codec_type"] == kind).cloned();
    let video = stream("video");
    let audio = stream("audio");
    let packets = json["packets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["codec_type"].as_str().unwrap_or("").to_string(),
                p["dts_time"]
                    .as_str()
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(f64::NAN),
                p["flags"].as_str().unwrap_or("").contains('K'),
            )
        })
        .collect();
    Probe {
        video_codec: video
            .as_ref()
            .and_then(|v| v["codec_name"].as_str().map(String::from)),
        width: video.as_ref().and_then(|v| v["width"].as_u64()),
        height: video.as_ref().and_then(|v| v["height"].as_u64()),
        audio_codec: audio
            .as_ref()
            .and_then(|a| a["codec_name"].as_str().map(String::from)),
        duration: json["format"]["duration"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .unwrap_or(0.0),
        packets,
    }
}

/// Sends `frames` in real time (configuration frames at once), as a live call would.
pub async fn feed_in_real_time(sender: &sipcast::rtmp::FrameSender, frames: &[MediaFrame]) {
    let start = sipcast::clock::monotonic();
    let first = frames.iter().find_map(frame_ts).unwrap_or(0);
    for frame in frames {
        if let Some(ts) = frame_ts(frame) {
            let due = start + Duration::from_millis(u64::from(ts.wrapping_sub(first)));
            tokio::time::sleep_until(due).await;
        }
        sender.send(frame.clone());
    }
}

/// Waits until the target's status satisfies `pred`, failing the test after `limit`.
pub async fn wait_status(
    status: &mut tokio::sync::watch::Receiver<sipcast::rtmp::TargetStatus>,
    limit: Duration,
    what: &str,
    pred: impl FnMut(&sipcast::rtmp::TargetStatus) -> bool,
) -> sipcast::rtmp::TargetStatus {
    let found = match tokio::time::timeout(limit, status.wait_for(pred)).await {
        Ok(Ok(s)) => Some(s.clone()),
        _ => None,
    };
    found.unwrap_or_else(|| {
        panic!(
            "timed out waiting for {what}; status: {:?}",
            *status.borrow()
        )
    })
}

/// The onMetaData a player of `url` receives (ffprobe as the player). nginx-rtmp rebuilds it
/// from the publisher's `@setDataFrame` (`width` → `displayWidth`, `framerate` → `fps`).
pub async fn live_metadata(url: &str) -> serde_json::Value {
    require("ffprobe");
    let run = tokio::process::Command::new("ffprobe")
        .args(["-v", "error", "-of", "json", "-show_entries", "format_tags"])
        .arg(url)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(4), run)
        .await
        .expect("ffprobe on the live stream finishes")
        .expect("run ffprobe");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(
        json["format"]["tags"].is_object(),
        "ffprobe {url}: {json}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json["format"]["tags"].clone()
}
