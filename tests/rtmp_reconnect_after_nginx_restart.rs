//! nginx dies mid-stream and comes back: the publisher reconnects on its own, asks for a
//! keyframe, and the new recording starts with headers and a keyframe; timestamps continue.

mod peers;
mod rtmp_support;

use std::time::Duration;

use rtmp_support::*;
use sipcast::rtmp::{PublishTarget, PublisherConfig, TargetState, spawn};

#[tokio::test]
async fn publisher_reconnects_and_the_new_recording_starts_with_a_keyframe() {
    let dir = tempfile::tempdir().unwrap();
    let frames = source_frames(dir.path(), 9, SourceAudio::Aac);
    let mut nginx = Nginx::start(dir.path(), None);
    let handle = spawn(
        PublishTarget {
            url: format!("rtmp://127.0.0.1:{}/live/restart-key", nginx.rtmp_port),
            stream_key: None,
            ca_file: None,
        },
        PublisherConfig {
            backoff_initial: Duration::from_millis(200),
            backoff_max: Duration::from_millis(500),
            ..PublisherConfig::default()
        },
    );
    let mut status = handle.status();
    wait_status(&mut status, Duration::from_secs(10), "publishing", |s| {
        s.state == TargetState::Publishing
    })
    .await;
    let sender = handle.sender();
    let feeder = tokio::spawn(async move { feed_in_real_time(&sender, &frames).await });

    tokio::time::sleep(Duration::from_secs(3)).await;
    nginx.kill();
    let lost = wait_status(&mut status, Duration::from_secs(5), "the loss", |s| {
        s.state != TargetState::Publishing
    })
    .await;
    assert_eq!(lost.state, TargetState::Reconnecting, "{lost:?}");
    nginx.restart();
    let back = wait_status(
        &mut status,
        Duration::from_secs(10),
        "publishing again",
        |s| s.state == TargetState::Publishing,
    )
    .await;
    assert!(back.reconnects >= 1, "{back:?}");
    assert!(
        *handle.keyframe_requests().borrow() >= 2,
        "a keyframe is asked for on reconnect"
    );

    feeder.await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    handle.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let files = nginx.recorded_files();
    assert_eq!(files.len(), 2, "one recording per connection: {files:?}");
    let before = ffprobe(&files[0]);
    let after = ffprobe(&files[1]);
    eprintln!(
        "before restart: {:.2} s; after: {:.2} s, first dts {:.3}",
        before.duration,
        after.duration,
        after.first_dts()
    );
    assert!(after.first_video_is_keyframe(), "{:?}", &after.packets[..5]);
    assert_eq!(after.video_codec.as_deref(), Some("h264"));
    assert_eq!((after.width, after.height), (Some(320), Some(240)));
    assert_eq!(after.audio_codec.as_deref(), Some("aac"));
    assert!(after.monotonic());
    // Both parts together cover the source, less the gap of the restart.
    let covered = before.duration + after.duration;
    assert!((6.0..=9.5).contains(&covered), "{covered}");
}
