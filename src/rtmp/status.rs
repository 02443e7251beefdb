//! What one target reports: exactly the `rtmp` entries of DESIGN.md's `Broadcast` status (the
//! status model re-exports these types as `RtmpStatus` / `RtmpState`).

use serde::Serialize;

/// Where a target is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Not started, or stopped.
    #[default]
    Idle,
    /// First connection attempt under way.
    Connecting,
    /// `NetStream.Publish.Start` received; media flows.
    Publishing,
    /// The connection was lost or could not be made; retrying after a backoff.
    Reconnecting,
    /// The server refused us (app, key, publish) or the target is misconfigured (URL, key
    /// file); still retried with backoff, since keys get fixed and ingests come back.
    Failed,
}

/// One target's status. The URL is redacted (`rtmps://host/app/****`) and errors never carry
/// the stream key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TargetStatus {
    pub url: String,
    pub state: TargetState,
    /// RTMP bytes written (chunk headers included), over all connections.
    pub bytes_sent: u64,
    /// Connection attempts after the first.
    pub reconnects: u64,
    /// Frames dropped because the target could not keep up.
    pub dropped_frames: u64,
    /// What is wrong now (redacted); `None` while publishing.
    pub error: Option<String>,
    /// The most recent failure and when it happened, kept after recovery.
    pub last_error: Option<String>,
    pub last_error_at: Option<jiff::Timestamp>,
    /// What the viewers see: the call, or the slate (no usable video from the call).
    pub showing: Option<Showing>,
    /// Whole seconds this broadcast's output has shown the slate.
    pub slate_seconds: u64,
    /// Switches between call and slate.
    pub switches: u64,
    /// This entry is a target's `backup_url` (it follows its primary in the list).
    pub backup: bool,
    /// The longest interval between two keyframes this target has published (ms): what the
    /// CDN sees as the keyframe interval.
    pub longest_keyframe_interval_ms: u32,
}

/// What a target's viewers see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Showing {
    Call,
    Slate,
}

impl TargetStatus {
    pub fn new(url: String) -> Self {
        TargetStatus {
            url,
            state: TargetState::Idle,
            bytes_sent: 0,
            reconnects: 0,
            dropped_frames: 0,
            error: None,
            last_error: None,
            last_error_at: None,
            showing: None,
            slate_seconds: 0,
            switches: 0,
            backup: false,
            longest_keyframe_interval_ms: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_design_md_shows() {
        let mut status = TargetStatus::new("rtmps://a.rtmps.youtube.com/live2/****".into());
        status.state = TargetState::Publishing;
        status.bytes_sent = 734003200;
        status.showing = Some(Showing::Call);
        status.switches = 2;
        status.slate_seconds = 14;
        let json = serde_json::to_value(&status).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "url": "rtmps://a.rtmps.youtube.com/live2/****",
                "state": "publishing",
                "bytes_sent": 734003200u64,
                "reconnects": 0,
                "dropped_frames": 0,
                "error": null,
                "last_error": null,
                "last_error_at": null,
                "showing": "call",
                "slate_seconds": 14,
                "switches": 2,
                "backup": false,
                "longest_keyframe_interval_ms": 0,
            })
        );
    }
}
