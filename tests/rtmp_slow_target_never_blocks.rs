//! A hung target (nginx frozen with SIGSTOP) neither blocks the producer nor the other target:
//! its queue drops media and counts it, its connection is declared dead after the write
//! timeout, and the healthy target keeps publishing.

mod peers;
mod rtmp_support;

use std::time::Duration;

use bytes::Bytes;
use rtmp_support::*;
use sipcast::frame::{MediaFrame, StreamMetadata};
use sipcast::rtmp::{PublishTarget, PublisherConfig, TargetState, spawn};

fn target(port: u16, key: &str) -> PublishTarget {
    PublishTarget {
        url: format!("rtmp://127.0.0.1:{port}/live/{key}"),
        stream_key: None,
        ca_file: None,
    }
}

/// 25 fps of 200 kB frames (40 Mbit/s), a keyframe every 25: enough to fill socket buffers
/// within a second or two once the server stops reading.
const FRAME_BYTES: usize = 200_000;

fn frame(index: u32) -> MediaFrame {
    MediaFrame::Video {
        dts_ms: index * 40,
        cts_ms: 0,
        keyframe: index % 25 == 0,
        data: Bytes::from(vec![0u8; FRAME_BYTES]),
    }
}

#[tokio::test]
async fn a_hung_target_drops_and_reconnects_while_the_other_keeps_publishing() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let hung = Nginx::start(dir_a.path(), None);
    let healthy = Nginx::start(dir_b.path(), None);
    let config = PublisherConfig {
        write_timeout: Duration::from_secs(2),
        backoff_initial: Duration::from_millis(200),
        ..PublisherConfig::default()
    };
    let a = spawn(target(hung.rtmp_port, "a"), config.clone());
    let b = spawn(target(healthy.rtmp_port, "b"), config);
    let (mut status_a, mut status_b) = (a.status(), b.status());
    for status in [&mut status_a, &mut status_b] {
        wait_status(status, Duration::from_secs(10), "publishing", |s| {
            s.state == TargetState::Publishing
        })
        .await;
    }
    let meta = MediaFrame::Metadata(StreamMetadata {
        video: true,
        ..Default::default()
    });
    let avcc = MediaFrame::VideoConfig(Bytes::from_static(&[1, 0x42, 0xc0, 0x1e, 0xff, 0xe0, 0]));
    for handle in [&a, &b] {
        handle.send(meta.clone());
        handle.send(avcc.clone());
    }

    hung.freeze();
    // 8 s of media, paced in real time; each send returns at once whatever the targets do.
    let start = sipcast::clock::monotonic();
    let mut slowest_send = Duration::ZERO;
    for index in 0..200 {
        tokio::time::sleep_until(start + Duration::from_millis(u64::from(index) * 40)).await;
        let before = sipcast::clock::monotonic();
        a.send(frame(index));
        b.send(frame(index));
        slowest_send = slowest_send.max(before.elapsed());
    }
    let a_now = status_a.borrow().clone();
    let b_now = status_b.borrow().clone();
    eprintln!("slowest send {slowest_send:?}\nhung: {a_now:?}\nhealthy: {b_now:?}");
    // Generous: a blocking send would take the 2 s write timeout.
    assert!(
        slowest_send < Duration::from_millis(500),
        "{slowest_send:?}"
    );
    assert!(
        a_now.dropped_frames > 0,
        "the hung target dropped media: {a_now:?}"
    );
    assert!(
        *a.keyframe_requests().borrow() >= 2,
        "dropped video asks for a keyframe"
    );
    assert_eq!(*b.keyframe_requests().borrow(), 1, "only at connect");
    // The stalled write is declared dead after the write timeout (not before the buffers
    // filled, which depends on the machine's socket buffer sizes).
    wait_status(&mut status_a, Duration::from_secs(10), "the stall", |s| {
        s.state == TargetState::Reconnecting || s.reconnects > 0
    })
    .await;
    assert_eq!(
        status_a.borrow().error.as_deref(),
        Some("write stalled for 2s")
    );
    assert_eq!(b_now.state, TargetState::Publishing);
    assert_eq!(b_now.dropped_frames, 0, "{b_now:?}");
    assert!(b_now.bytes_sent > 150 * FRAME_BYTES as u64, "{b_now:?}");
    b.stop().await;
    drop(a); // its driver ends on its own; nginx A is killed on drop
}
