//! A server's refusal becomes the target's state and error, with the stream key kept out.

mod peers;
mod rtmp_support;

use std::time::Duration;

use rtmp_support::*;
use sipcast::rtmp::{PublishTarget, PublisherConfig, TargetState, spawn};
use sipcast::secret::{Secret, SecretSource};

fn target(port: u16, app: &str, key: &str) -> PublishTarget {
    PublishTarget {
        url: format!("rtmp://127.0.0.1:{port}/{app}"),
        stream_key: Some(SecretSource::Inline(Secret::new(key))),
        ca_file: None,
    }
}

fn quick_retries() -> PublisherConfig {
    PublisherConfig {
        backoff_initial: Duration::from_millis(200),
        backoff_max: Duration::from_millis(400),
        ..PublisherConfig::default()
    }
}

#[tokio::test]
async fn second_publisher_on_a_busy_key_reports_bad_name() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path(), None);
    let first = spawn(
        target(nginx.rtmp_port, "live", "busy-key-7f3a"),
        quick_retries(),
    );
    let mut first_status = first.status();
    wait_status(
        &mut first_status,
        Duration::from_secs(10),
        "first publishing",
        |s| s.state == TargetState::Publishing,
    )
    .await;

    let second = spawn(
        target(nginx.rtmp_port, "live", "busy-key-7f3a"),
        quick_retries(),
    );
    let mut second_status = second.status();
    let refused = wait_status(
        &mut second_status,
        Duration::from_secs(10),
        "refusal",
        |s| s.state == TargetState::Failed,
    )
    .await;
    let error = refused.error.clone().unwrap();
    assert!(error.contains("NetStream.Publish.BadName"), "{error}");
    assert!(!error.contains("busy-key-7f3a"), "{error}");
    assert!(!format!("{refused:?}").contains("busy-key-7f3a"));

    // It keeps retrying, and gets through once the key is free.
    first.stop().await;
    wait_status(
        &mut second_status,
        Duration::from_secs(10),
        "second publishing",
        |s| s.state == TargetState::Publishing,
    )
    .await;
    assert!(second_status.borrow().reconnects >= 1);
    second.stop().await;
}

#[tokio::test]
async fn denied_publish_is_reported_as_the_targets_error() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path(), None);
    let handle = spawn(
        target(nginx.rtmp_port, "closed", "denied-key-19c2"),
        quick_retries(),
    );
    let mut status = handle.status();
    let lost = wait_status(&mut status, Duration::from_secs(10), "an error", |s| {
        s.error.is_some()
    })
    .await;
    assert_eq!(
        lost.error.as_deref(),
        Some("server closed the connection right after accepting the publish (publish denied?)")
    );
    assert_eq!(lost.state, TargetState::Failed);
    assert!(!format!("{lost:?}").contains("denied-key-19c2"));
    handle.stop().await;
}

#[tokio::test]
async fn unknown_app_is_reported_as_the_targets_error() {
    let dir = tempfile::tempdir().unwrap();
    let nginx = Nginx::start(dir.path(), None);
    let handle = spawn(target(nginx.rtmp_port, "nosuchapp", "k"), quick_retries());
    let mut status = handle.status();
    let lost = wait_status(&mut status, Duration::from_secs(10), "an error", |s| {
        s.error.is_some()
    })
    .await;
    assert_eq!(
        lost.error.as_deref(),
        Some("server closed the connection while connecting to the app")
    );
    assert_eq!(lost.state, TargetState::Failed);
    handle.stop().await;
}
