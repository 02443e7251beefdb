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
    /// The last error, kept after recovery (redacted).
    pub error: Option<String>,
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
            })
        );
    }
}
