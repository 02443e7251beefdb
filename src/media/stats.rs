//! Per-call media figures for status and metrics (issue item 8).

use serde::Serialize;

/// One received track.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TrackStats {
    /// Encoding name as negotiated (`PCMU`, `H264`, ...).
    pub codec: String,
    pub ssrc: Option<u32>,
    pub packets: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Interarrival jitter (RFC 3550 A.8) in milliseconds.
    pub jitter_ms: f64,
    /// SSRC changes, sequence resyncs and timestamp jumps absorbed.
    pub discontinuities: u64,
    /// Packets the codec path could not use (malformed, unsupported).
    pub errors: u64,
}

/// The media path of one call.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MediaStats {
    pub audio: Option<TrackStats>,
    pub video: Option<TrackStats>,
    /// Time between the last two keyframes.
    pub keyframe_interval_ms: Option<u64>,
    /// Video lag minus audio lag (positive: video late), once sender reports allow measuring.
    pub av_offset_ms: Option<i64>,
    pub keyframe_requests: u64,
    pub keyframe_escalations: u64,
    /// Access units dropped because they were broken or preceded the first IDR.
    pub video_frames_dropped: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Frames the consumer could not take in time (channel full).
    pub frames_dropped: u64,
}
