//! rtmps:// against nginx's stream module terminating TLS (test CA made by openssl) in front of
//! the RTMP server: SNI and name verification against the configured CA file.

mod peers;
mod rtmp_support;

use std::time::Duration;

use rtmp_support::*;
use sipcast::rtmp::{PublishTarget, PublisherConfig, TargetState, spawn};
use sipcast::secret::SecretSource;

#[tokio::test]
async fn publishes_over_rtmps_with_a_configured_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let frames = source_frames(dir.path(), 3, SourceAudio::Aac);
    let nginx = Nginx::start(dir.path(), Some(&pki));
    let tls_port = nginx.tls_port.unwrap();
    let key_file = dir.path().join("stream-key");
    std::fs::write(&key_file, "tls-key\n").unwrap();
    let handle = spawn(
        PublishTarget {
            url: format!("rtmps://localhost:{tls_port}/live"),
            stream_key: Some(SecretSource::File(key_file)),
            ca_file: Some(pki.ca_cert.clone()),
        },
        PublisherConfig::default(),
    );
    let mut status = handle.status();
    wait_status(
        &mut status,
        Duration::from_secs(10),
        "publishing over TLS",
        |s| s.state == TargetState::Publishing,
    )
    .await;
    feed_in_real_time(&handle.sender(), &frames).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        status.borrow().url,
        format!("rtmps://localhost:{tls_port}/live/****")
    );
    handle.stop().await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let files = nginx.recorded_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("tls-key")
    );
    let probe = ffprobe(&files[0]);
    assert_eq!(probe.video_codec.as_deref(), Some("h264"));
    assert_eq!(probe.audio_codec.as_deref(), Some("aac"));
    assert!(probe.first_video_is_keyframe());
    assert!((probe.duration - 3.0).abs() <= 0.3, "{}", probe.duration);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_tls_error() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other_ca = make_pki(&other_dir).ca_cert;
    let nginx = Nginx::start(dir.path(), Some(&pki));
    let handle = spawn(
        PublishTarget {
            url: format!("rtmps://localhost:{}/live/k", nginx.tls_port.unwrap()),
            stream_key: None,
            ca_file: Some(other_ca),
        },
        PublisherConfig::default(),
    );
    let mut status = handle.status();
    let failed = wait_status(&mut status, Duration::from_secs(10), "a TLS error", |s| {
        s.error.is_some()
    })
    .await;
    let error = failed.error.unwrap();
    assert!(error.contains("TLS handshake failed"), "{error}");
    handle.stop().await;
}
