//! ffmpeg sends H.264 (testsrc) + a 440 Hz tone in PCMU or Speex over RTP into a MediaSession;
//! the MediaFrames it produces are written to an FLV file, which ffprobe must find well-formed:
//! H.264 at the source's size, the expected audio codec, a duration within 10 % of what was
//! sent, a keyframe first and monotonic timestamps. Transcoded audio must still be the tone.

mod media_support;
mod peers;

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use media_support::{RtpSource, SourceAudio, require};

use sipcast::frame::{AudioFormat, MediaFrame};
use sipcast::media::{AudioOutputs, LocalMedia, MediaConfig, MediaSession};

const SECONDS: f64 = 6.0;

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

async fn run_ffmpeg_into_session(
    audio: SourceAudio,
    outputs: AudioOutputs,
    dir: &Path,
) -> Vec<MediaFrame> {
    require("ffprobe");
    let local = LocalMedia::bind(IpAddr::from([127, 0, 0, 1]), 20_000..=59_999, true)
        .await
        .unwrap();
    let mut source = RtpSource::start_with(&local, audio, SECONDS, dir).await;
    let config = MediaConfig {
        audio_outputs: outputs,
        ..Default::default()
    };
    let (session, mut media) = MediaSession::start(local, source.remote.clone(), config).unwrap();

    let mut frames = Vec::new();
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let deadline = tokio::time::Instant::from_std(sipcast::clock::monotonic().into_std())
        + Duration::from_secs_f64(SECONDS + 10.0);
    loop {
        tokio::select! {
            frame = media.frames.recv() => frames.push(frame.unwrap()),
            _ = check.tick() => {
                if source.finished() {
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
    let audio_stats = status.stats.audio.clone().unwrap();
    assert!(audio_stats.packets > 40, "{status:?}");
    assert_eq!(
        audio_stats.errors, 0,
        "every audio packet decoded: {status:?}"
    );
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
    let frames = run_ffmpeg_into_session(SourceAudio::Pcmu, outputs, dir.path()).await;
    assert!(matches!(frames[0], MediaFrame::Metadata(_)));
    let path = dir.path().join("aac.flv");
    check_recording(&frames, &path, "aac");
    peers::tone::check_440_hz(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_pcmu_is_copied_into_flv_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = AudioOutputs {
        aac: None,
        copy: true,
    };
    let frames = run_ffmpeg_into_session(SourceAudio::Pcmu, outputs, dir.path()).await;
    let path = dir.path().join("copy.flv");
    check_recording(&frames, &path, "pcm_mulaw");
    peers::tone::check_440_hz(&path);
}

async fn speex_becomes_aac_with_the_tone_intact(rate: u32) {
    let dir = tempfile::tempdir().unwrap();
    let outputs = AudioOutputs {
        aac: Some(Default::default()),
        copy: false,
    };
    let frames = run_ffmpeg_into_session(SourceAudio::Speex(rate), outputs, dir.path()).await;
    let path = dir.path().join(format!("speex{rate}.flv"));
    check_recording(&frames, &path, "aac");
    peers::tone::check_440_hz(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_wideband_speex_becomes_aac_with_the_tone_intact() {
    speex_becomes_aac_with_the_tone_intact(16_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_narrowband_speex_becomes_aac_with_the_tone_intact() {
    speex_becomes_aac_with_the_tone_intact(8000).await;
}

/// libopus, stereo, in 60 ms packets (three frames each): mixed down and transcoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_stereo_opus_in_60_ms_packets_becomes_aac_with_the_tone_intact() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = AudioOutputs {
        aac: Some(Default::default()),
        copy: false,
    };
    let frames = run_ffmpeg_into_session(SourceAudio::Opus(60), outputs, dir.path()).await;
    let path = dir.path().join("opus.flv");
    check_recording(&frames, &path, "aac");
    peers::tone::check_440_hz(&path);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_wideband_speex_is_copied_into_flv_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = AudioOutputs {
        aac: None,
        copy: true,
    };
    let frames = run_ffmpeg_into_session(SourceAudio::Speex(16_000), outputs, dir.path()).await;
    let path = dir.path().join("copy.flv");
    check_recording(&frames, &path, "speex");
    peers::tone::check_440_hz(&path);
}
