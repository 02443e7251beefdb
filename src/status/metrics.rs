//! Prometheus text exposition (format 0.0.4) of a [`Snapshot`].
//!
//! Labels are only broadcast names (validated to `[A-Za-z0-9._-]`) and fixed enums, so no label
//! value ever needs escaping and no secret can reach a label.

use std::fmt::Write;

use super::{Desired, Phase, RtmpState, Snapshot};

/// Renders every `sipcast_*` metric.
pub fn render_metrics(s: &Snapshot) -> String {
    let mut out = String::with_capacity(4096);
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
        let _ = writeln!(out, "# HELP sipcast_{name} {help}");
        let _ = writeln!(out, "# TYPE sipcast_{name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "sipcast_{name}{labels} {value}");
        }
    };
    let per = |f: &dyn Fn(&super::BroadcastStatus) -> f64| -> Vec<(String, f64)> {
        s.broadcasts
            .values()
            .map(|b| (format!("{{broadcast=\"{}\"}}", b.name), f(b)))
            .collect()
    };

    family(
        "build_info",
        "gauge",
        "Build information; the value is always 1.",
        vec![(
            format!(
                "{{version=\"{}\",commit=\"{}\"}}",
                env!("CARGO_PKG_VERSION"),
                crate::cli::GIT_COMMIT
            ),
            1.0,
        )],
    );
    family(
        "ready",
        "gauge",
        "1 once the first directory scan has been applied.",
        vec![(String::new(), f64::from(u8::from(s.ready)))],
    );
    let accepted = s.broadcasts.values().filter(|b| b.accepted).count();
    family(
        "specs",
        "gauge",
        "Spec files by validation result of their current content.",
        vec![
            ("{result=\"accepted\"}".into(), accepted as f64),
            (
                "{result=\"rejected\"}".into(),
                (s.broadcasts.len() - accepted) as f64,
            ),
        ],
    );
    family(
        "config_reloads_total",
        "counter",
        "Directory rescans by result.",
        ["applied", "unchanged", "failed"]
            .iter()
            .map(|r| {
                (
                    format!("{{result=\"{r}\"}}"),
                    s.reloads.get(r).copied().unwrap_or(0) as f64,
                )
            })
            .collect(),
    );
    family(
        "broadcast_desired_live",
        "gauge",
        "1 when the broadcast should be live now.",
        per(&|b| f64::from(u8::from(b.desired == Desired::Live))),
    );
    family(
        "broadcast_live",
        "gauge",
        "1 when the broadcast's call is up and streaming.",
        per(&|b| {
            f64::from(u8::from(matches!(
                b.phase,
                Phase::Streaming | Phase::Connected
            )))
        }),
    );
    let mut phases = Vec::new();
    for b in s.broadcasts.values() {
        for p in Phase::ALL {
            phases.push((
                format!("{{broadcast=\"{}\",phase=\"{}\"}}", b.name, p.as_str()),
                f64::from(u8::from(b.phase == p)),
            ));
        }
    }
    family(
        "broadcast_phase",
        "gauge",
        "1 for the phase the broadcast is in.",
        phases,
    );
    let mut attempts = Vec::new();
    for b in s.broadcasts.values() {
        for (result, n) in &b.counters.attempts_by_result {
            attempts.push((
                format!("{{broadcast=\"{}\",result=\"{result}\"}}", b.name),
                *n as f64,
            ));
        }
    }
    family(
        "call_attempts_total",
        "counter",
        "Call attempts by result class.",
        attempts,
    );
    family(
        "call_connected_seconds_total",
        "counter",
        "Seconds the call has been established.",
        per(&|b| b.counters.connected_seconds),
    );
    family(
        "preflights_total",
        "counter",
        "Preflights run at lead before a scheduled window.",
        per(&|b| b.counters.preflights as f64),
    );
    family(
        "preflight_failures_total",
        "counter",
        "Preflights that found a failing check (wrong key or password, unreachable peer, ...).",
        per(&|b| b.counters.preflight_failures as f64),
    );
    // What the viewers see; every target of a broadcast shows the same.
    let first_target = |b: &super::BroadcastStatus| b.rtmp.first().cloned().unwrap_or_default();
    family(
        "output_showing_slate",
        "gauge",
        "1 while the broadcast's targets show the slate (the call gives no usable video).",
        per(&|b| {
            f64::from(u8::from(
                first_target(b).showing == Some(crate::rtmp::Showing::Slate)
                    && b.rtmp.iter().any(|t| t.state == RtmpState::Publishing),
            ))
        }),
    );
    family(
        "output_slate_seconds_total",
        "counter",
        "Seconds the broadcast's current output has shown the slate.",
        per(&|b| first_target(b).slate_seconds as f64),
    );
    family(
        "output_switches_total",
        "counter",
        "Switches between the call and the slate in the broadcast's current output.",
        per(&|b| first_target(b).switches as f64),
    );
    family(
        "rtmp_longest_keyframe_interval_seconds",
        "gauge",
        "The longest keyframe interval any target of the broadcast has published.",
        per(&|b| {
            b.rtmp
                .iter()
                .map(|t| f64::from(t.longest_keyframe_interval_ms) / 1000.0)
                .fold(0.0, f64::max)
        }),
    );
    // Lifetime counts summed over call attempts.
    type Count = fn(&super::Totals) -> u64;
    let totals: [(&str, &str, Count); 6] = [
        ("rtp_packets_total", "RTP packets received.", |t| {
            t.rtp_packets
        }),
        (
            "rtp_lost_packets_total",
            "RTP packets lost (sequence gaps).",
            |t| t.rtp_lost,
        ),
        (
            "audio_decode_errors_total",
            "Audio packets that could not be decoded (AAC targets got silence for them).",
            |t| t.audio_decode_errors,
        ),
        (
            "rtmp_bytes_sent_total",
            "Bytes sent to all RTMP targets.",
            |t| t.rtmp_bytes_sent,
        ),
        (
            "rtmp_reconnects_total",
            "RTMP reconnects over all targets.",
            |t| t.rtmp_reconnects,
        ),
        (
            "rtmp_dropped_frames_total",
            "Frames dropped because an RTMP target was slow.",
            |t| t.rtmp_dropped_frames,
        ),
    ];
    for (name, help, count) in totals {
        family(
            name,
            "counter",
            help,
            per(&|b| count(&b.counters.total()) as f64),
        );
    }
    // The keyframe governor (see media::keyframe), summed over call attempts.
    let keyframes: [(&str, &str, Count); 3] = [
        (
            "keyframe_requests_total",
            "Keyframe requests to the caller over RTCP (PLI or FIR).",
            |t| t.keyframe_requests,
        ),
        (
            "keyframe_info_requests_total",
            "Keyframe requests to the caller as SIP INFO picture_fast_update.",
            |t| t.keyframe_via_info,
        ),
        (
            "keyframe_answers_total",
            "Keyframe requests the caller answered with an IDR.",
            |t| t.keyframe_answers,
        ),
    ];
    for (name, help, count) in keyframes {
        family(
            name,
            "counter",
            help,
            per(&|b| count(&b.counters.total()) as f64),
        );
    }
    let mut dropped = Vec::new();
    for b in s.broadcasts.values() {
        let total = b.counters.total().rtp_dropped;
        for reason in super::RtpDropReason::ALL {
            dropped.push((
                format!(
                    "{{broadcast=\"{}\",reason=\"{}\"}}",
                    b.name,
                    reason.as_str()
                ),
                total.get(reason) as f64,
            ));
        }
    }
    family(
        "rtp_dropped_total",
        "counter",
        "RTP/RTCP datagrams refused: foreign_source (not from the callee), oversize, invalid, \
         unknown_ssrc (a sender other than the stream's), srtp_auth (SRTP/SRTCP that failed \
         authentication), srtp_replay (replayed SRTP/SRTCP).",
        dropped,
    );
    family(
        "rtp_ssrc_changes_total",
        "counter",
        "Times a track's RTP sender (SSRC) was replaced by another.",
        per(&|b| b.counters.total().ssrc_changes as f64),
    );
    let gauge = |f: &dyn Fn(&super::CallMedia) -> Option<f64>| -> Vec<(String, f64)> {
        s.broadcasts
            .values()
            .filter_map(|b| {
                let value = b.call.media.as_ref().and_then(f)?;
                Some((format!("{{broadcast=\"{}\"}}", b.name), value))
            })
            .collect()
    };
    family(
        "rtp_jitter_seconds",
        "gauge",
        "Interarrival jitter of the call's RTP (RFC 3550), the larger of audio and video.",
        gauge(&|m| m.jitter_ms.map(|ms| ms / 1000.0)),
    );
    family(
        "video_keyframe_interval_seconds",
        "gauge",
        "Time between the last two keyframes the caller sent.",
        gauge(&|m| m.keyframe_interval_ms.map(|ms| ms as f64 / 1000.0)),
    );
    family(
        "av_offset_seconds",
        "gauge",
        "Video lag minus audio lag of the call (positive: video late), from RTCP sender reports.",
        gauge(&|m| m.av_offset_ms.map(|ms| ms as f64 / 1000.0)),
    );
    family(
        "rtmp_targets_publishing",
        "gauge",
        "RTMP targets currently publishing.",
        per(&|b| {
            b.rtmp
                .iter()
                .filter(|r| r.state == RtmpState::Publishing)
                .count() as f64
        }),
    );
    let mut targets = Vec::new();
    for b in s.broadcasts.values() {
        for state in TARGET_STATES {
            let n = b.rtmp.iter().filter(|r| r.state == state).count();
            targets.push((
                format!(
                    "{{broadcast=\"{}\",state=\"{}\"}}",
                    b.name,
                    target_state_label(state)
                ),
                n as f64,
            ));
        }
    }
    family(
        "rtmp_targets",
        "gauge",
        "RTMP targets of the broadcast's running output, by state.",
        targets,
    );
    out
}

const TARGET_STATES: [RtmpState; 5] = [
    RtmpState::Idle,
    RtmpState::Connecting,
    RtmpState::Publishing,
    RtmpState::Reconnecting,
    RtmpState::Failed,
];

/// The `state` label: the same word the status API uses for the target.
fn target_state_label(state: RtmpState) -> &'static str {
    match state {
        RtmpState::Idle => "idle",
        RtmpState::Connecting => "connecting",
        RtmpState::Publishing => "publishing",
        RtmpState::Reconnecting => "reconnecting",
        RtmpState::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::super::{BroadcastStatus, RtmpStatus, StatusBoard};
    use super::*;

    #[test]
    fn targets_are_counted_by_state() {
        let (board, reader) = StatusBoard::new();
        board.update(|s| {
            let mut b = BroadcastStatus::new("allhands", "allhands.toml");
            for state in [RtmpState::Publishing, RtmpState::Failed, RtmpState::Failed] {
                b.rtmp.push(RtmpStatus {
                    state,
                    ..Default::default()
                });
            }
            s.broadcasts.insert("allhands".into(), b);
        });
        let text = reader.with(render_metrics);
        for line in [
            "sipcast_rtmp_targets{broadcast=\"allhands\",state=\"publishing\"} 1",
            "sipcast_rtmp_targets{broadcast=\"allhands\",state=\"failed\"} 2",
            "sipcast_rtmp_targets{broadcast=\"allhands\",state=\"reconnecting\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }
}
