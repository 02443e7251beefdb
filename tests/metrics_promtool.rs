//! `/metrics` passes Prometheus' own linter (`promtool check metrics`, Debian package
//! `prometheus`), with broadcasts in several states and every counter non-zero.

use std::io::Write;
use std::process::{Command, Stdio};

use sipcast::status::{BroadcastStatus, Phase, RtmpState, RtmpStatus, StatusBoard, render_metrics};

#[test]
fn promtool_accepts_the_metrics() {
    let (board, reader) = StatusBoard::new();
    board.update(|s| {
        s.ready = true;
        *s.reloads.entry("applied").or_default() += 3;
        for (name, phase) in [("allhands", Phase::Streaming), ("lobby", Phase::Backoff)] {
            let mut b = BroadcastStatus::new(name, &format!("{name}.toml"));
            b.accepted = true;
            b.phase = phase;
            b.counters.attempts_by_result.insert("established", 2);
            b.counters.attempts_by_result.insert("busy", 1);
            b.counters.connected_seconds = 12.5;
            b.call.media = Some(sipcast::status::CallMedia {
                rtp_packets: 1000,
                rtp_lost: 3,
                audio_decode_errors: 2,
                jitter_ms: Some(4.5),
                keyframe_interval_ms: Some(2000),
                av_offset_ms: Some(-40),
                rtp_dropped: sipcast::status::RtpDropped {
                    foreign_source: 2131,
                    oversize: 1,
                    invalid: 7,
                    unknown_ssrc: 1000,
                    ..Default::default()
                },
                ssrc_changes: 1,
                keyframe_requests: 12,
                keyframe_answers: 11,
                keyframe_via_info: 3,
                ..Default::default()
            });
            b.counters
                .observe_media(b.call.media.as_ref().expect("just set"));
            b.counters.current.rtp_packets = 1000;
            b.counters.current.rtp_lost = 3;
            b.counters.current.audio_decode_errors = 2;
            b.rtmp.push(RtmpStatus {
                url: "rtmp://127.0.0.1/live/****".into(),
                state: RtmpState::Publishing,
                bytes_sent: 123_456,
                reconnects: 1,
                ..Default::default()
            });
            s.broadcasts.insert(name.into(), b);
        }
    });
    let text = reader.with(render_metrics);
    for line in [
        "sipcast_rtp_dropped_total{broadcast=\"allhands\",reason=\"foreign_source\"} 2131",
        "sipcast_rtp_dropped_total{broadcast=\"lobby\",reason=\"unknown_ssrc\"} 1000",
        "sipcast_rtp_ssrc_changes_total{broadcast=\"allhands\"} 1",
        "sipcast_keyframe_requests_total{broadcast=\"allhands\"} 12",
        "sipcast_keyframe_info_requests_total{broadcast=\"lobby\"} 3",
        "sipcast_keyframe_answers_total{broadcast=\"allhands\"} 11",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (apt-get install --no-install-recommends prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}
