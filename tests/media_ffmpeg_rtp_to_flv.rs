//! ffmpeg sends H.264 (testsrc) + PCMU over RTP into a MediaSession; the MediaFrames it produces
//! are written to an FLV file, which ffprobe must find well-formed: H.264 at the source's size,
//! the expected audio codec, a duration within 10 % of what was sent, a keyframe first and
//! monotonic timestamps.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sipcast::frame::{AudioFormat, MediaFrame};
use sipcast::media::{
    AudioOutputs, LocalMedia, MediaConfig, MediaSession, RemoteMedia, RemoteStream,
};

const SECONDS: f64 = 6.0;

/// Kills the child on drop so a failing test leaves no ffmpeg behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn require(program: &str) {
    let found = Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "{program} is required for this test (install ffmpeg)"
    );
}

/// Minimal SDP reading for what ffmpeg writes: per m= line, port, payload type, rtpmap, fmtp.
fn remote_from_sdp(sdp: &str) -> RemoteMedia {
    let mut remote = RemoteMedia::default();
    let mut current: Option<(String, RemoteStream)> = None;
    let finish = |current: Option<(String, RemoteStream)>, remote: &mut RemoteMedia| {
        if let Some((kind, stream)) = current {
            match kind.as_str() {
                "audio" => remote.audio = Some(stream),
                _ => remote.video = Some(stream),
            }
        }
    };
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            finish(current.take(), &mut remote);
            let fields: Vec<&str> = m.split_whitespace().collect();
            let payload_type: u8 = fields[3].parse().unwrap();
            let (codec, clock_rate) = match payload_type {
                0 => ("PCMU", 8000),
                8 => ("PCMA", 8000),
                _ => ("", 90_000),
            };
            current = Some((
                fields[0].to_string(),
                RemoteStream::new(
                    format!("127.0.0.1:{}", fields[1]).parse().unwrap(),
                    payload_type,
                    codec,
                    clock_rate,
                ),
            ));
        } else if let (Some(rtpmap), Some((_, stream))) =
            (line.strip_prefix("a=rtpmap:"), current.as_mut())
        {
            let (_, map) = rtpmap.split_once(' ').unwrap();
            let mut parts = map.split('/');
            stream.codec = parts.next().unwrap().to_string();
            stream.clock_rate = parts.next().unwrap().parse().unwrap();
        } else if let (Some(fmtp), Some((_, stream))) =
            (line.strip_prefix("a=fmtp:"), current.as_mut())
        {
            stream.fmtp = fmtp.split_once(' ').unwrap().1.to_string();
        }
    }
    finish(current, &mut remote);
    remote
}

/// A test-only FLV writer (Adobe FLV v10.1 §E): enough for ffprobe to read the recording.
mod flv {
    use super::*;

    pub fn write(frames: &[MediaFrame], path: &Path) {
        let mut out = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        let mut tag = |kind: u8, ts: u32, body: &[u8]| {
            let size = body.len() as u32;
            out.push(kind);
            out.extend_from_slice(&size.to_be_bytes()[1..]);
            out.extend_from_slice(&ts.to_be_bytes()[1..]);
            out.push((ts >> 24) as u8);
            out.extend_from_slice(&[0, 0, 0]);
            out.extend_from_slice(body);
            out.extend_from_slice(&(size + 11).to_be_bytes());
        };
        let audio_header = |format: AudioFormat| match format {
            AudioFormat::Aac => 0xaf,
            AudioFormat::Pcmu => 0x82,
            AudioFormat::Pcma => 0x72,
            AudioFormat::Speex => 0xb6,
        };
        let mut first_video_ts = 0;
        for frame in frames {
            match frame {
                MediaFrame::Metadata(_) => {}
                MediaFrame::VideoConfig(avcc) => {
                    tag(9, first_video_ts, &[&[0x17, 0, 0, 0, 0][..], avcc].concat());
                }
                MediaFrame::Video {
                    dts_ms,
                    cts_ms,
                    keyframe,
                    data,
                } => {
                    first_video_ts = *dts_ms;
                    let kind = if *keyframe { 0x17 } else { 0x27 };
                    let cts = cts_ms.to_be_bytes();
                    tag(
                        9,
                        *dts_ms,
                        &[&[kind, 1, cts[1], cts[2], cts[3]][..], data].concat(),
                    );
                }
                MediaFrame::AudioConfig(asc) => tag(8, 0, &[&[0xaf, 0][..], asc].concat()),
                MediaFrame::Audio {
                    ts_ms,
                    format,
                    data,
                } => {
                    let header: &[u8] = match format {
                        AudioFormat::Aac => &[0xaf, 1],
                        other => &[audio_header(*other)][..],
                    };
                    tag(8, *ts_ms, &[header, data].concat());
                }
            }
        }
        std::fs::write(path, out).unwrap();
    }
}

fn ffprobe_json(path: &Path, args: &[&str]) -> serde_json::Value {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .expect("ffprobe is required for this test (install ffmpeg)");
    assert!(
        output.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn packets(path: &Path, stream: &str) -> Vec<(f64, String)> {
    let json = ffprobe_json(
        path,
        &[
            "-select_streams",
            stream,
            "-show_entries",
            "packet=dts_time,flags",
            "-show_packets",
        ],
    );
    json["packets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let dts = p["dts_time"].as_str().unwrap().parse().unwrap();
            (dts, p["flags"].as_str().unwrap().to_string())
        })
        .collect()
}

async fn run_ffmpeg_into_session(outputs: AudioOutputs, dir: &Path) -> Vec<MediaFrame> {
    require("ffmpeg");
    require("ffprobe");
    let local = LocalMedia::bind(IpAddr::from([127, 0, 0, 1]), 20_000..=59_999, true)
        .await
        .unwrap();
    let video_port = local.video.as_ref().unwrap().rtp_port();
    let audio_port = local.audio.rtp_port();
    let sdp_path = dir.join("ffmpeg.sdp");
    let ffmpeg = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-re"])
        // Durations on the sources: an output -t would bind only the first output.
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc=size=320x240:rate=25:duration={SECONDS}"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:sample_rate=8000:duration={SECONDS}"),
        ])
        .args([
            "-map",
            "0:v",
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-pix_fmt",
            "yuv420p",
        ])
        // zerolatency: like a video phone, no 1.7 s lookahead between capture and sending.
        .args(["-tune", "zerolatency", "-bf", "0", "-g", "50"])
        .args(["-f", "rtp", &format!("rtp://127.0.0.1:{video_port}")])
        .args([
            "-map",
            "1:a",
            "-c:a",
            "pcm_mulaw",
            "-ar",
            "8000",
            "-ac",
            "1",
            "-f",
            "rtp",
        ])
        .arg(format!("rtp://127.0.0.1:{audio_port}"))
        .arg("-sdp_file")
        .arg(&sdp_path)
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg is required for this test");
    let mut ffmpeg = KillOnDrop(ffmpeg);

    // The sockets are bound, so packets queue in the kernel while we wait for the SDP.
    let mut sdp = String::new();
    for _ in 0..100 {
        sdp = std::fs::read_to_string(&sdp_path).unwrap_or_default();
        if sdp.contains("m=audio") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let remote = remote_from_sdp(&sdp);
    assert_eq!(
        remote.video.as_ref().map(|v| v.codec.as_str()),
        Some("H264"),
        "{sdp}"
    );
    let config = MediaConfig {
        audio_outputs: outputs,
        ..Default::default()
    };
    let (session, mut media) = MediaSession::start(local, remote, config).unwrap();

    let mut frames = Vec::new();
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let deadline = tokio::time::Instant::from_std(sipcast::clock::monotonic().into_std())
        + Duration::from_secs_f64(SECONDS + 10.0);
    loop {
        tokio::select! {
            frame = media.frames.recv() => frames.push(frame.unwrap()),
            _ = check.tick() => {
                if ffmpeg.0.try_wait().unwrap().is_some() {
                    break;
                }
            }
            _ = tokio::time::sleep_until(deadline) => panic!("ffmpeg did not finish"),
        }
    }
    // Let the reorder buffer release the last packets.
    tokio::time::sleep(Duration::from_millis(200)).await;
    while let Ok(frame) = media.frames.try_recv() {
        frames.push(frame);
    }
    let status = session.status();
    let video = status.stats.video.clone().unwrap();
    assert!(video.packets > 100, "{status:?}");
    assert_eq!(video.lost, 0, "{status:?}");
    assert!(
        status.last_rtp_at.is_some() && status.last_rtcp_at.is_some(),
        "{status:?}"
    );
    session.stop().await;
    frames
}

fn check_recording(frames: &[MediaFrame], path: &Path, audio_codec: &str) {
    flv::write(frames, path);
    // MEDIA_TEST_KEEP=DIR keeps the recordings for a look with ffprobe/ffplay.
    if let Ok(keep) = std::env::var("MEDIA_TEST_KEEP") {
        let _ = std::fs::copy(path, Path::new(&keep).join(path.file_name().unwrap()));
    }
    let info = ffprobe_json(path, &["-show_streams", "-show_format"]);
    let streams = info["streams"].as_array().unwrap();
    let video = streams
        .iter()
        .find(|s| s["codec_type"] == "video")
        .expect("video stream");
    let audio = streams
        .iter()
        .find(|s| s["codec_type"] == "audio")
        .expect("audio stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(
        (video["width"].as_u64(), video["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(audio["codec_name"], audio_codec);

    let video_packets = packets(path, "v");
    assert!(
        video_packets[0].1.starts_with('K'),
        "keyframe first: {:?}",
        &video_packets[..3]
    );
    let video_span = video_packets.last().unwrap().0 - video_packets[0].0;
    assert!(
        (video_span - SECONDS).abs() <= SECONDS * 0.1,
        "video spans {video_span} s"
    );
    let audio_packets = packets(path, "a");
    let audio_span = audio_packets.last().unwrap().0 - audio_packets[0].0;
    assert!(
        (audio_span - SECONDS).abs() <= SECONDS * 0.1,
        "audio spans {audio_span} s"
    );
    for packets in [&video_packets, &audio_packets] {
        assert!(
            packets.windows(2).all(|w| w[1].0 >= w[0].0),
            "monotonic timestamps"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_h264_and_pcmu_become_h264_and_aac_in_flv() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = AudioOutputs {
        aac: Some(Default::default()),
        copy: false,
    };
    let frames = run_ffmpeg_into_session(outputs, dir.path()).await;
    assert!(matches!(frames[0], MediaFrame::Metadata(_)));
    check_recording(&frames, &dir.path().join("aac.flv"), "aac");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_pcmu_is_copied_into_flv_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = AudioOutputs {
        aac: None,
        copy: true,
    };
    let frames = run_ffmpeg_into_session(outputs, dir.path()).await;
    check_recording(&frames, &dir.path().join("copy.flv"), "pcm_mulaw");
}
