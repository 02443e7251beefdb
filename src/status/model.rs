//! What the daemon reports: the JSON shapes of DESIGN.md's status API.

use serde::Serialize;

/// One RTMP target's state and counters: the publisher reports them in this very shape.
pub use crate::rtmp::status::{TargetState as RtmpState, TargetStatus as RtmpStatus};

/// Refused RTP/RTCP datagrams per reason (the `reason` label of `sipcast_rtp_dropped_total`).
pub use crate::media::{DropReason as RtpDropReason, DroppedDatagrams as RtpDropped};

/// Desired state of a broadcast.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Desired {
    Live,
    #[default]
    Idle,
}

/// Where a broadcast's supervisor is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Idle,
    Waiting,
    Registering,
    Dialing,
    Ringing,
    Connected,
    Streaming,
    Backoff,
    HangingUp,
}

impl Phase {
    pub const ALL: [Phase; 9] = [
        Phase::Idle,
        Phase::Waiting,
        Phase::Registering,
        Phase::Dialing,
        Phase::Ringing,
        Phase::Connected,
        Phase::Streaming,
        Phase::Backoff,
        Phase::HangingUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Waiting => "waiting",
            Phase::Registering => "registering",
            Phase::Dialing => "dialing",
            Phase::Ringing => "ringing",
            Phase::Connected => "connected",
            Phase::Streaming => "streaming",
            Phase::Backoff => "backoff",
            Phase::HangingUp => "hanging_up",
        }
    }
}

/// The SIP call's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    #[default]
    Idle,
    Registering,
    Dialing,
    Ringing,
    Established,
    Finished,
    Failed,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ScheduleStatus {
    pub in_window: bool,
    pub next_start: Option<jiff::Timestamp>,
    pub next_end: Option<jiff::Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallStatus {
    pub state: CallState,
    pub call_id: Option<String>,
    pub sip_status: Option<u16>,
    pub reason: Option<String>,
    pub since: Option<jiff::Timestamp>,
    pub audio_codec: Option<String>,
    pub video_codec: Option<String>,
    pub dtmf_sent: Option<String>,
    /// How the call's media is doing, while it is up.
    pub media: Option<CallMedia>,
}

/// The call's media as received, for status and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallMedia {
    /// `none`, or the SRTP suite protecting the media (e.g. `AES_256_CM_HMAC_SHA1_80`).
    pub encryption: String,
    /// Why `media_encryption = "prefer"` went to plain RTP, when it did.
    pub encryption_fallback: Option<String>,
    pub rtp_packets: u64,
    /// Packets missing from the sequence (RFC 3550 cumulative loss).
    pub rtp_lost: u64,
    /// Audio packets that arrived but could not be decoded: a corrupt payload, or a codec
    /// other than the one negotiated. AAC targets get silence in their place.
    pub audio_decode_errors: u64,
    /// Interarrival jitter (RFC 3550 A.8), the larger of audio and video.
    pub jitter_ms: Option<f64>,
    /// Time between the last two keyframes the caller sent.
    pub keyframe_interval_ms: Option<u64>,
    /// Video lag minus audio lag (positive: video late), once sender reports allow measuring.
    pub av_offset_ms: Option<i64>,
    /// RTP and RTCP datagrams refused, by reason: not from the callee (`foreign_source`),
    /// larger than the receive buffer (`oversize`), malformed (`invalid`), from the callee's
    /// address but a sender (SSRC) other than the stream's (`unknown_ssrc`), SRTP/SRTCP that
    /// failed authentication (`srtp_auth`) or was replayed (`srtp_replay`).
    pub rtp_dropped: RtpDropped,
    /// Times a track's sender (SSRC) was replaced by another.
    pub ssrc_changes: u64,
    /// Our RTP ports for the call (RTCP is each plus one), where the callee sends.
    pub local_audio_port: Option<u16>,
    pub local_video_port: Option<u16>,
    /// Keyframe requests to the caller over RTCP (PLI or FIR): the governor asks ahead of the
    /// targets' shortest `keyframe_interval`.
    pub keyframe_requests: u64,
    /// Requests answered by an IDR.
    pub keyframe_answers: u64,
    /// Requests sent as SIP INFO picture_fast_update (RTCP went unanswered, or this caller is
    /// known to ignore it).
    pub keyframe_via_info: u64,
    /// RTCP requests the caller left unanswered.
    pub keyframe_rtcp_unanswered: u64,
    /// The caller's measured response time, request to IDR (smoothed).
    pub keyframe_response_ms: Option<u64>,
}

/// A Kubernetes-style condition: a fact about the broadcast, with when it last changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
    pub last_transition_time: jiff::Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One broadcast as reported by `GET /v1/broadcasts/{name}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BroadcastStatus {
    pub name: String,
    pub file: String,
    pub description: Option<String>,
    /// Counts accepted versions of the file; the running version is this one.
    pub generation: u64,
    /// Whether the file's current content is valid (false: the last valid version still runs).
    pub accepted: bool,
    /// Why the current content was rejected, `FILE:LINE:COL: message` per problem.
    pub error: Option<String>,
    pub desired: Desired,
    pub phase: Phase,
    pub schedule: Option<ScheduleStatus>,
    pub call: CallStatus,
    pub rtmp: Vec<RtmpStatus>,
    /// Call attempts since the broadcast last became desired live.
    pub attempts: u64,
    pub next_attempt_at: Option<jiff::Timestamp>,
    pub conditions: Vec<Condition>,
    /// The last preflight (`sipcast probe`'s checks, run at `lead` before a scheduled window);
    /// `null` until one ran.
    pub preflight: Option<PreflightStatus>,
    /// Lifetime counters for metrics; not part of the JSON contract.
    #[serde(skip)]
    pub counters: BroadcastCounters,
}

/// The outcome of the last preflight of a broadcast.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PreflightStatus {
    /// No check failed.
    pub ok: bool,
    pub checked_at: jiff::Timestamp,
    /// The checks that failed, with their causes (never a secret).
    pub failures: Vec<PreflightFailure>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PreflightFailure {
    /// `sip`, `rtmp[0]`, `sip password`, `schedule`, …
    pub check: String,
    pub cause: String,
}

/// Monotonic counters behind `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BroadcastCounters {
    /// Call attempts by how they ended: established, failed, timeout, busy, rejected.
    pub attempts_by_result: std::collections::BTreeMap<&'static str, u64>,
    /// Seconds spent with the call established (summed at each state change).
    pub connected_seconds: f64,
    /// Preflights run, and how many of them found a failure.
    pub preflights: u64,
    pub preflight_failures: u64,
    /// Media and RTMP counts of the attempts that ended.
    pub finished: Totals,
    /// The same counts for the attempt under way (they start at zero with each attempt).
    pub current: Totals,
}

/// Counts that only grow over a broadcast's life, summed over its call attempts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub rtp_packets: u64,
    pub rtp_lost: u64,
    pub audio_decode_errors: u64,
    pub rtmp_bytes_sent: u64,
    pub rtmp_reconnects: u64,
    pub rtmp_dropped_frames: u64,
    pub rtp_dropped: RtpDropped,
    pub ssrc_changes: u64,
    pub keyframe_requests: u64,
    pub keyframe_answers: u64,
    pub keyframe_via_info: u64,
}

impl Totals {
    fn plus(self, other: Totals) -> Totals {
        Totals {
            rtp_packets: self.rtp_packets + other.rtp_packets,
            rtp_lost: self.rtp_lost + other.rtp_lost,
            audio_decode_errors: self.audio_decode_errors + other.audio_decode_errors,
            rtmp_bytes_sent: self.rtmp_bytes_sent + other.rtmp_bytes_sent,
            rtmp_reconnects: self.rtmp_reconnects + other.rtmp_reconnects,
            rtmp_dropped_frames: self.rtmp_dropped_frames + other.rtmp_dropped_frames,
            rtp_dropped: self.rtp_dropped.plus(other.rtp_dropped),
            ssrc_changes: self.ssrc_changes + other.ssrc_changes,
            keyframe_requests: self.keyframe_requests + other.keyframe_requests,
            keyframe_answers: self.keyframe_answers + other.keyframe_answers,
            keyframe_via_info: self.keyframe_via_info + other.keyframe_via_info,
        }
    }
}

impl BroadcastCounters {
    /// Lifetime totals: finished attempts plus the current one. Never decrease.
    pub fn total(&self) -> Totals {
        self.finished.plus(self.current)
    }

    /// Folds the current attempt into the finished ones.
    pub fn close_attempt(&mut self) {
        self.finished = self.total();
        self.current = Totals::default();
    }

    /// Takes the current attempt's media counts (they only grow within an attempt).
    pub fn observe_media(&mut self, media: &CallMedia) {
        let c = &mut self.current;
        c.rtp_packets = media.rtp_packets;
        c.rtp_lost = media.rtp_lost;
        c.audio_decode_errors = media.audio_decode_errors;
        c.rtp_dropped = media.rtp_dropped;
        c.ssrc_changes = media.ssrc_changes;
        c.keyframe_requests = media.keyframe_requests;
        c.keyframe_answers = media.keyframe_answers;
        c.keyframe_via_info = media.keyframe_via_info;
    }

    /// Takes the current attempt's RTMP counts (a target removed mid-call never lowers them).
    pub fn observe_targets(&mut self, targets: &[RtmpStatus]) {
        let c = &mut self.current;
        c.rtmp_bytes_sent = c
            .rtmp_bytes_sent
            .max(targets.iter().map(|t| t.bytes_sent).sum());
        c.rtmp_reconnects = c
            .rtmp_reconnects
            .max(targets.iter().map(|t| t.reconnects).sum());
        c.rtmp_dropped_frames = c
            .rtmp_dropped_frames
            .max(targets.iter().map(|t| t.dropped_frames).sum());
    }
}

impl BroadcastStatus {
    pub fn new(name: &str, file: &str) -> Self {
        BroadcastStatus {
            name: name.to_string(),
            file: file.to_string(),
            description: None,
            generation: 0,
            accepted: false,
            error: None,
            desired: Desired::Idle,
            phase: Phase::Idle,
            schedule: None,
            call: CallStatus::default(),
            rtmp: Vec::new(),
            attempts: 0,
            next_attempt_at: None,
            conditions: Vec::new(),
            preflight: None,
            counters: BroadcastCounters::default(),
        }
    }

    /// Sets a condition, keeping its transition time unless its status changes.
    pub fn set_condition(
        &mut self,
        kind: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        now: jiff::Timestamp,
    ) {
        set_condition(&mut self.conditions, kind, status, reason, message, now);
    }
}

/// Sets a condition in a list, keeping its transition time unless its status changes.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: &str,
    status: ConditionStatus,
    reason: &str,
    message: impl Into<String>,
    now: jiff::Timestamp,
) {
    let message = message.into();
    match conditions.iter_mut().find(|c| c.kind == kind) {
        Some(c) => {
            if c.status != status {
                c.last_transition_time = now;
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message;
        }
        None => conditions.push(Condition {
            kind: kind.to_string(),
            status,
            reason: reason.to_string(),
            message,
            last_transition_time: now,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_never_go_back_across_attempts_or_removed_targets() {
        let mut c = BroadcastCounters::default();
        let target = |bytes| RtmpStatus {
            bytes_sent: bytes,
            ..Default::default()
        };
        c.current.rtp_packets = 100;
        c.observe_targets(&[target(5000), target(7000)]);
        assert_eq!(c.total().rtmp_bytes_sent, 12_000);
        c.observe_targets(&[target(6000)]); // one target removed mid-call
        assert_eq!(c.total().rtmp_bytes_sent, 12_000);
        c.close_attempt();
        c.current.rtp_packets = 10; // the next attempt starts from zero
        assert_eq!(c.total().rtp_packets, 110);
        assert_eq!(c.total().rtmp_bytes_sent, 12_000);
    }

    #[test]
    fn refused_datagrams_add_up_across_attempts_by_reason() {
        let mut c = BroadcastCounters::default();
        let media = |foreign_source, oversize| CallMedia {
            rtp_dropped: RtpDropped {
                foreign_source,
                oversize,
                ..Default::default()
            },
            ssrc_changes: 1,
            ..Default::default()
        };
        c.observe_media(&media(2131, 1));
        c.close_attempt();
        c.observe_media(&media(5, 0));
        let total = c.total();
        assert_eq!(total.rtp_dropped.get(RtpDropReason::ForeignSource), 2136);
        assert_eq!(total.rtp_dropped.get(RtpDropReason::Oversize), 1);
        assert_eq!(total.ssrc_changes, 2);
    }
}
