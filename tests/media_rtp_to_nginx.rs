//! The whole media path against real peers: ffmpeg sends H.264 + PCMU over RTP to a
//! MediaSession, whose frames an RTMP publisher sends to nginx-rtmp, which records them. The
//! publisher's keyframe requests are wired to the session (RTCP PLI), as the supervisor does.
//! ffprobe on the recording: H.264 at the source's size, AAC, a keyframe first, monotonic
//! timestamps, a duration within 10 % of what was sent. And lip sync: flashes and beeps sent
//! together are recorded together.

mod media_support;
mod peers;
mod rtmp_support;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use media_support::RtpSource;
use rtmp_support::{Nginx, ffprobe};
use sipcast::media::{LocalMedia, MediaConfig, MediaSession, MediaStatus};
use sipcast::rtmp::{PublishTarget, PublisherConfig, spawn};

const SECONDS: f64 = 6.0;

#[derive(Clone, Copy)]
enum Content {
    TestCard,
    FlashAndBeep,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_from_ffmpeg_is_published_to_nginx_as_h264_and_aac() {
    let dir = tempfile::tempdir().unwrap();
    let (recording, media_status) = record_through_nginx(Content::TestCard, dir.path()).await;
    assert!(
        media_status.stats.keyframe_requests >= 1,
        "{media_status:?}"
    );
    let probe = ffprobe(&recording);
    assert_eq!(probe.video_codec.as_deref(), Some("h264"), "{probe:?}");
    assert_eq!((probe.width, probe.height), (Some(320), Some(240)));
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
    assert!(probe.first_video_is_keyframe(), "{:?}", &probe.packets[..4]);
    assert!(probe.monotonic());
    assert!(
        (probe.duration - SECONDS).abs() <= SECONDS * 0.1,
        "recorded {} s of {SECONDS} s",
        probe.duration
    );
    peers::tone::check_440_hz(&recording);
}

/// ffmpeg flashes the picture and beeps at the same instants; in the recording, each beep
/// starts within 25 ms of its flash (the FLV timeline comes from the RTCP sender reports, and
/// the AAC encoder's priming is taken out).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashes_and_beeps_sent_together_are_recorded_together() {
    let dir = tempfile::tempdir().unwrap();
    let (recording, _) = record_through_nginx(Content::FlashAndBeep, dir.path()).await;
    let output = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-i"])
        .arg(&recording)
        .args(["-vf", "blackdetect=d=0.1:pix_th=0.2"])
        .args(["-af", "silencedetect=n=-30dB:d=0.1"])
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&output.stderr);
    let times = |key: &str| -> Vec<f64> {
        log.split(key)
            .skip(1)
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect()
    };
    // The picture stays black to the end: that last "end" is the file's, not a flash.
    let flashes: Vec<f64> = times("black_end:")
        .into_iter()
        .filter(|&t| t < SECONDS - 0.5)
        .collect();
    let beeps = times("silence_end:");
    let offsets: Vec<f64> = flashes
        .iter()
        .filter_map(|flash| {
            let beep = beeps
                .iter()
                .min_by(|a, b| (*a - flash).abs().total_cmp(&(*b - flash).abs()))?;
            Some((beep - flash) * 1000.0)
        })
        .collect();
    eprintln!("flashes {flashes:?}\nbeeps {beeps:?}\naudio minus video, ms: {offsets:.0?}");
    assert!(offsets.len() >= 3, "{log}");
    for offset in &offsets {
        assert!(
            offset.abs() <= 25.0,
            "audio {offset:.0} ms off its flash: {offsets:.0?}"
        );
    }
}

/// ffmpeg → RTP → MediaSession → publisher → nginx; returns nginx's recording.
async fn record_through_nginx(content: Content, dir: &Path) -> (PathBuf, MediaStatus) {
    let nginx = Nginx::start(dir, None);
    let publisher = spawn(
        PublishTarget {
            url: format!("rtmp://127.0.0.1:{}/live/call", nginx.rtmp_port),
            stream_key: None,
            ca_file: None,
        },
        PublisherConfig::default(),
    );
    let local = LocalMedia::bind(IpAddr::from([127, 0, 0, 1]), 20_000..=59_999, true)
        .await
        .unwrap();
    let mut source = match content {
        Content::TestCard => RtpSource::start(&local, SECONDS, dir).await,
        Content::FlashAndBeep => RtpSource::start_flash_and_beep(&local, 2.0, SECONDS, dir).await,
    };
    let (session, mut media) =
        MediaSession::start(local, source.remote.clone(), MediaConfig::default()).unwrap();

    let mut keyframe_requests = publisher.keyframe_requests();
    let mut check = tokio::time::interval(Duration::from_millis(100));
    let mut frames = 0u64;
    loop {
        tokio::select! {
            Some(frame) = media.frames.recv() => {
                frames += 1;
                publisher.send(frame);
            }
            Ok(()) = keyframe_requests.changed() => session.request_keyframe(),
            _ = check.tick() => if source.finished() { break },
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    while let Ok(frame) = media.frames.try_recv() {
        publisher.send(frame);
    }
    let media_status = session.status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let target = publisher.status().borrow().clone();
    publisher.stop().await;
    session.stop().await;
    assert!(frames > 400, "{frames} frames");
    assert_eq!(target.dropped_frames, 0, "{target:?}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let files = nginx.recorded_files();
    assert_eq!(files.len(), 1, "{files:?}\n{}", nginx.error_log());
    // The recording outlives nginx's directory: copy it out.
    let recording = dir.join("recording.flv");
    std::fs::copy(&files[0], &recording).unwrap();
    (recording, media_status)
}
