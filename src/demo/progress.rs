//! Progress lines for the demo: one readable line per change of the broadcast's call state,
//! DTMF sent, RTMP target state and backoff, read from the daemon's own status (the same
//! snapshot the status API serves), plus what the callee and the receiver report.

use std::fmt::Write as _;

use super::DemoEvent;
use super::callee::DtmfVia;
use super::recording::RecordingStats;
use crate::rtmp::Showing;
use crate::status::{BroadcastStatus, CallState, Phase, RtmpState};

/// Remembers what was last printed, so each change prints once.
#[derive(Debug, Default)]
pub struct ProgressTracker {
    call: Option<CallState>,
    dtmf_sent: Option<String>,
    rtmp: Vec<RtmpState>,
    showing: Option<Showing>,
    backoff: bool,
    /// Whether the call reached `established` at any point.
    pub established: bool,
    frames: (u64, u64, u64),
}

impl ProgressTracker {
    /// Lines for whatever changed in the broadcast since the last call.
    pub fn status_lines(&mut self, b: &BroadcastStatus) -> Vec<String> {
        let mut lines = Vec::new();
        if self.call != Some(b.call.state) {
            self.call = Some(b.call.state);
            if let Some(line) = call_line(b) {
                lines.push(line);
            }
            self.established |= b.call.state == CallState::Established;
        }
        if b.call.dtmf_sent.is_some() && self.dtmf_sent != b.call.dtmf_sent {
            self.dtmf_sent = b.call.dtmf_sent.clone();
            lines.push(format!(
                "call: DTMF sent so far: {}",
                b.call.dtmf_sent.as_deref().unwrap_or_default()
            ));
        }
        self.rtmp.resize(b.rtmp.len(), RtmpState::Idle);
        for (last, target) in self.rtmp.iter_mut().zip(&b.rtmp) {
            if *last != target.state {
                *last = target.state;
                lines.push(rtmp_line(
                    target.state,
                    &target.url,
                    target.error.as_deref(),
                ));
            }
        }
        let showing = b.rtmp.first().and_then(|t| t.showing);
        if let Some(now) = showing.filter(|s| self.showing != Some(*s)) {
            lines.push(match now {
                Showing::Slate => "rtmp: viewers see the slate (no video from the call yet)".into(),
                Showing::Call => "rtmp: viewers see the call".into(),
            });
        }
        self.showing = showing;
        let backoff = b.phase == Phase::Backoff;
        if backoff && !self.backoff {
            let mut line = "broadcast: waiting before redialing".to_string();
            if let Some(at) = b.next_attempt_at {
                let _ = write!(line, " (next attempt at {at})");
            }
            lines.push(line);
        }
        self.backoff = backoff;
        lines
    }

    /// A line when the receiver's frame counts moved since the last one.
    pub fn frames_line(&mut self, stats: &RecordingStats) -> Option<String> {
        let now = (stats.video_frames, stats.keyframes, stats.audio_frames);
        if now == self.frames {
            return None;
        }
        self.frames = now;
        Some(format!(
            "receiver: {} video frames ({} keyframes), {} audio frames, {:.1} s recorded",
            now.0,
            now.1,
            now.2,
            stats.duration().as_secs_f64()
        ))
    }
}

fn call_line(b: &BroadcastStatus) -> Option<String> {
    let call = &b.call;
    Some(match call.state {
        CallState::Idle => return None,
        CallState::Registering => "call: registering".into(),
        CallState::Dialing => "call: dialing".into(),
        CallState::Ringing => match call.sip_status {
            Some(status) => format!("call: ringing ({status})"),
            None => "call: ringing".into(),
        },
        CallState::Established => format!(
            "call: established (audio {}, video {})",
            call.audio_codec.as_deref().unwrap_or("none"),
            call.video_codec.as_deref().unwrap_or("none")
        ),
        CallState::Finished => "call: finished".into(),
        CallState::Failed => format!(
            "call: failed: {}",
            call.reason.as_deref().unwrap_or("no reason given")
        ),
    })
}

fn rtmp_line(state: RtmpState, url: &str, error: Option<&str>) -> String {
    let state = match state {
        RtmpState::Idle => "idle",
        RtmpState::Connecting => "connecting",
        RtmpState::Publishing => "publishing",
        RtmpState::Reconnecting => "reconnecting",
        RtmpState::Failed => "failed",
    };
    match error {
        Some(error) if state != "publishing" => format!("rtmp: {state} ({url}): {error}"),
        _ => format!("rtmp: {state} ({url})"),
    }
}

/// The line for something the callee or the receiver reported.
pub fn event_line(event: &DemoEvent) -> String {
    match event {
        DemoEvent::CalleeInvited => "callee: INVITE received; ringing, then answering".into(),
        DemoEvent::CalleePlaying { audio, video } => format!(
            "callee: ACK received; playing the clip (PCMU to {audio}; H.264 to {video} once its camera is on)"
        ),
        DemoEvent::CalleeCameraOn => "callee: camera on; H.264 flows".into(),
        DemoEvent::CalleeDigit(digit, via) => {
            let via = match via {
                DtmfVia::Rfc4733 => "RFC 4733 event",
                DtmfVia::Info => "SIP INFO",
            };
            format!("callee: DTMF '{digit}' received ({via})")
        }
        DemoEvent::CalleeHungUp => "callee: BYE received; call over".into(),
        DemoEvent::ReceiverConnected(peer) => format!("receiver: RTMP connection from {peer}"),
        DemoEvent::ReceiverPublishing(app) => {
            format!("receiver: publish accepted on app '{app}'; recording")
        }
        DemoEvent::ReceiverClosed(None) => "receiver: publisher disconnected".into(),
        DemoEvent::ReceiverClosed(Some(error)) => format!("receiver: connection closed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::RtmpStatus;

    #[test]
    fn each_change_prints_once() {
        let mut tracker = ProgressTracker::default();
        let mut b = BroadcastStatus::new("demo", "demo.toml");
        assert!(tracker.status_lines(&b).is_empty());
        b.call.state = CallState::Dialing;
        assert_eq!(tracker.status_lines(&b), vec!["call: dialing"]);
        assert!(tracker.status_lines(&b).is_empty());
        b.call.state = CallState::Established;
        b.call.audio_codec = Some("PCMU".into());
        b.call.video_codec = Some("H264".into());
        b.rtmp = vec![RtmpStatus {
            url: "rtmp://127.0.0.1:1935/live/****".into(),
            state: RtmpState::Connecting,
            ..Default::default()
        }];
        assert_eq!(
            tracker.status_lines(&b),
            vec![
                "call: established (audio PCMU, video H264)",
                "rtmp: connecting (rtmp://127.0.0.1:1935/live/****)"
            ]
        );
        assert!(tracker.established);
        b.call.dtmf_sent = Some("12".into());
        assert_eq!(tracker.status_lines(&b), vec!["call: DTMF sent so far: 12"]);

        let mut stats = RecordingStats::default();
        assert_eq!(tracker.frames_line(&stats), None);
        stats.video_frames = 3;
        stats.keyframes = 1;
        assert!(
            tracker
                .frames_line(&stats)
                .unwrap()
                .starts_with("receiver: 3 video frames (1 keyframes)")
        );
        assert_eq!(tracker.frames_line(&stats), None);
    }
}
