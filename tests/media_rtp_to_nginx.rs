//! The whole media path against real peers: ffmpeg sends H.264 + PCMU over RTP to a
//! MediaSession, whose frames an RTMP publisher sends to nginx-rtmp, which records them. The
//! publisher's keyframe requests are wired to the session (RTCP PLI), as the supervisor does.
//! ffprobe on the recording: H.264 at the source's size, AAC, a keyframe first, monotonic
//! timestamps, a duration within 10 % of what was sent.

mod media_support;
mod peers;
mod rtmp_support;

use std::net::IpAddr;
use std::time::Duration;

use media_support::RtpSource;
use rtmp_support::{Nginx, ffprobe};
use sipcast::media::{LocalMedia, MediaConfig, MediaSession};
use sipcast::rtmp::{PublishTarget, PublisherConfig, spawn};

const SECONDS: f64 = 6.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_from_ffmpeg_is_published_to_nginx_as_h264_and_aac() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path(), None);
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
    let mut source = RtpSource::start(&local, SECONDS, dir.path()).await;
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
    assert!(
        media_status.stats.keyframe_requests >= 1,
        "{media_status:?}"
    );

    tokio::time::sleep(Duration::from_millis(300)).await;
    let files = nginx.recorded_files();
    assert_eq!(files.len(), 1, "{files:?}\n{}", nginx.error_log());
    let probe = ffprobe(&files[0]);
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
    peers::tone::check_440_hz(&files[0]);
}
