//! Error classification and the handle's life cycle; the network paths are in `tests/rtmp_*`.

use super::*;

#[test]
fn refusals_and_misconfiguration_are_failed_transport_trouble_is_reconnecting() {
    let refusals = [
        PublishError::Url(UrlError::NoStreamKey),
        PublishError::Secret(SecretError::EnvMissing { var: "K".into() }),
        PublishError::ClosedAfterAccept,
        PublishError::Session(SessionError::Refused {
            code: "NetStream.Publish.BadName".into(),
            description: String::new(),
        }),
        PublishError::Session(SessionError::ClosedBy(Step::Connecting)),
        PublishError::Tls(TlsError::NoCertificates("ca.pem".into())),
    ];
    for error in refusals {
        assert!(error.is_refusal(), "{error}");
    }
    let transient = [
        PublishError::Closed,
        PublishError::WriteStalled(Duration::from_secs(10)),
        PublishError::Connect {
            addr: "h:1935".into(),
            reason: "refused".into(),
        },
        PublishError::Session(SessionError::Timeout(Step::Handshaking)),
        PublishError::Session(SessionError::ClosedBy(Step::Handshaking)),
        PublishError::Tls(TlsError::Handshake("reset".into())),
    ];
    for error in transient {
        assert!(!error.is_refusal(), "{error}");
    }
}

#[tokio::test]
async fn a_dropped_handle_stops_the_driver_and_sends_never_block() {
    // Port 1 on loopback refuses at once: the driver sits in backoff.
    let handle = spawn(
        PublishTarget {
            url: "rtmp://127.0.0.1:1/live/k".into(),
            stream_key: None,
            ca_file: None,
        },
        PublisherConfig::default(),
    );
    let mut status = handle.status();
    status
        .wait_for(|s| s.state == TargetState::Reconnecting)
        .await
        .unwrap();
    assert!(
        status
            .borrow()
            .error
            .as_deref()
            .unwrap()
            .contains("127.0.0.1:1")
    );
    for ts in 0..10_000 {
        handle.send(MediaFrame::Audio {
            ts_ms: ts,
            format: crate::frame::AudioFormat::Pcmu,
            data: bytes::Bytes::from_static(&[0xff; 160]),
        });
    }
    assert_eq!(
        status.borrow().dropped_frames,
        0,
        "media while down is not a drop"
    );
    // Senders may outlive the handle; dropping the handle still stops the driver.
    let sender = handle.sender();
    drop(handle);
    status
        .wait_for(|s| s.state == TargetState::Idle)
        .await
        .unwrap();
    sender.send(MediaFrame::AudioConfig(bytes::Bytes::from_static(&[
        0x12, 0x10,
    ])));
}
