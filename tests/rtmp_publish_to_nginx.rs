//! Publishing MediaFrames (read from ffmpeg-made FLV) to a real nginx-rtmp, which records them;
//! ffprobe checks the recording.

mod peers;
mod rtmp_support;

use std::time::Duration;

use rtmp_support::*;
use sipcast::rtmp::{PublishTarget, PublisherConfig, TargetState, spawn};
use sipcast::secret::{Secret, SecretSource};

const SECONDS: u32 = 6;

async fn publish_and_probe(audio: SourceAudio) -> Probe {
    let video = audio != SourceAudio::PcmaWithoutVideo;
    let dir = tempfile::tempdir().unwrap();
    let frames = source_frames(dir.path(), SECONDS, audio);
    let nginx = Nginx::start(dir.path(), None);
    let handle = spawn(
        PublishTarget {
            url: format!("rtmp://127.0.0.1:{}/live", nginx.rtmp_port),
            stream_key: Some(SecretSource::Inline(Secret::new("test-key"))),
            ca_file: None,
        },
        PublisherConfig::default(),
    );
    let mut status = handle.status();
    wait_status(&mut status, Duration::from_secs(10), "publishing", |s| {
        s.state == TargetState::Publishing
    })
    .await;
    assert_eq!(
        *handle.keyframe_requests().borrow(),
        1,
        "a keyframe is asked for at connect"
    );
    // nginx leaves metadata out of recordings; a player joining mid-stream shows it arrived.
    // (ffprobe as a player waits for video that an audio-only stream never has.)
    let player_url = format!("rtmp://127.0.0.1:{}/live/test-key", nginx.rtmp_port);
    let player = video.then(|| {
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            live_metadata(&player_url).await
        })
    });
    feed_in_real_time(&handle.sender(), &frames).await;
    if let Some(player) = player {
        let meta = player.await.unwrap();
        assert_eq!(meta["displayWidth"], "320", "{meta}");
        assert_eq!(meta["displayHeight"], "240", "{meta}");
        assert_eq!(meta["fps"], "25", "{meta}");
    }
    // Let the last frames leave the queue before unpublishing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let final_status = status.borrow().clone();
    handle.stop().await;
    assert_eq!(status.borrow().state, TargetState::Idle);
    assert!(final_status.bytes_sent > 30_000, "{final_status:?}");
    assert_eq!(final_status.dropped_frames, 0);
    assert_eq!(
        final_status.url,
        format!("rtmp://127.0.0.1:{}/live/****", nginx.rtmp_port)
    );
    // nginx closes the recording on deleteStream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let files = nginx.recorded_files();
    assert_eq!(files.len(), 1, "{files:?}\n{}", nginx.error_log());
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("test-key")
    );
    let probe = ffprobe(&files[0]);
    eprintln!(
        "recording: {} packets, {:.3} s, first dts {:.3}, codecs {:?}/{:?}",
        probe.packets.len(),
        probe.duration,
        probe.first_dts(),
        probe.video_codec,
        probe.audio_codec
    );
    probe
}

fn assert_matches_source(probe: &Probe) {
    assert_eq!(probe.video_codec.as_deref(), Some("h264"), "{probe:?}");
    assert_eq!((probe.width, probe.height), (Some(320), Some(240)));
    let expected = f64::from(SECONDS);
    assert!(
        (probe.duration - expected).abs() <= expected * 0.1,
        "duration {} vs {expected}",
        probe.duration
    );
    assert!(probe.first_video_is_keyframe(), "{:?}", &probe.packets[..5]);
    assert!(probe.monotonic());
}

#[tokio::test]
async fn h264_and_aac_reach_the_recording_intact() {
    let probe = publish_and_probe(SourceAudio::Aac).await;
    assert_matches_source(&probe);
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
}

#[tokio::test]
async fn pcmu_is_passed_through_as_flv_g711() {
    let probe = publish_and_probe(SourceAudio::Pcmu).await;
    assert_matches_source(&probe);
    assert_eq!(probe.audio_codec.as_deref(), Some("pcm_mulaw"));
}

#[tokio::test]
async fn audio_only_calls_publish_at_once_without_waiting_for_video() {
    let probe = publish_and_probe(SourceAudio::PcmaWithoutVideo).await;
    assert_eq!(probe.video_codec, None, "{probe:?}");
    assert_eq!(probe.audio_codec.as_deref(), Some("pcm_alaw"));
    let expected = f64::from(SECONDS);
    assert!(
        (probe.duration - expected).abs() <= expected * 0.1,
        "duration {} vs {expected}",
        probe.duration
    );
    assert!(probe.monotonic());
}

#[tokio::test]
async fn an_idle_publisher_answers_pings_and_stays_connected() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path(), None);
    let handle = spawn(
        PublishTarget {
            url: format!("rtmp://127.0.0.1:{}/live/idle-key", nginx.rtmp_port),
            stream_key: None,
            ca_file: None,
        },
        PublisherConfig::default(),
    );
    let mut status = handle.status();
    let at_start = wait_status(&mut status, Duration::from_secs(10), "publishing", |s| {
        s.state == TargetState::Publishing
    })
    .await;
    // Several of nginx's 1 s ping intervals without any media from us.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now = status.borrow().clone();
    assert_eq!(now.state, TargetState::Publishing, "{now:?}");
    assert_eq!(now.reconnects, 0, "{now:?}");
    assert!(now.error.is_none(), "{now:?}");
    // Nothing but ping responses went out meanwhile.
    assert!(now.bytes_sent > at_start.bytes_sent, "{at_start:?} {now:?}");
    handle.stop().await;
}
