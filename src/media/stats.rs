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
    /// Keyframe requests sent over RTCP (PLI or FIR).
    pub keyframe_requests: u64,
    /// Keyframe request episodes answered by an IDR.
    pub keyframe_answers: u64,
    /// Keyframe requests sent as SIP INFO picture_fast_update.
    pub keyframe_via_info: u64,
    /// RTCP keyframe requests that went unanswered.
    pub keyframe_rtcp_unanswered: u64,
    /// The sender's measured response time (request → IDR), smoothed.
    pub keyframe_response_ms: Option<u64>,
    /// Access units dropped because they were broken or preceded the first IDR.
    pub video_frames_dropped: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Frames the consumer could not take in time (channel full).
    pub frames_dropped: u64,
    /// RTP and RTCP datagrams refused before they reached a track, by reason.
    pub dropped: DroppedDatagrams,
    /// Times a track's sender (SSRC) was replaced by another (RFC 3550 §8.2).
    pub ssrc_changes: u64,
}

/// Why a received RTP or RTCP datagram was refused: a fixed set, used as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Not from the address the SDP answer gave nor the source latched for that port.
    ForeignSource,
    /// Larger than the receive buffer: never processed truncated.
    Oversize,
    /// Not a well-formed RTP or RTCP packet.
    Invalid,
    /// From the latched source, but a sender (SSRC) other than the track's current one.
    UnknownSsrc,
    /// SRTP/SRTCP that did not authenticate: a wrong key, a tampered or forged packet (or one
    /// too short, of an unknown MKI, or past the stream table).
    SrtpAuth,
    /// SRTP/SRTCP replayed, or older than the replay window.
    SrtpReplay,
}

impl DropReason {
    pub const ALL: [DropReason; 6] = [
        DropReason::ForeignSource,
        DropReason::Oversize,
        DropReason::Invalid,
        DropReason::UnknownSsrc,
        DropReason::SrtpAuth,
        DropReason::SrtpReplay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::ForeignSource => "foreign_source",
            DropReason::Oversize => "oversize",
            DropReason::Invalid => "invalid",
            DropReason::UnknownSsrc => "unknown_ssrc",
            DropReason::SrtpAuth => "srtp_auth",
            DropReason::SrtpReplay => "srtp_replay",
        }
    }
}

/// Refused datagrams per [`DropReason`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DroppedDatagrams {
    pub foreign_source: u64,
    pub oversize: u64,
    pub invalid: u64,
    pub unknown_ssrc: u64,
    pub srtp_auth: u64,
    pub srtp_replay: u64,
}

impl DroppedDatagrams {
    pub fn count(&mut self, reason: DropReason) {
        let counter = match reason {
            DropReason::ForeignSource => &mut self.foreign_source,
            DropReason::Oversize => &mut self.oversize,
            DropReason::Invalid => &mut self.invalid,
            DropReason::UnknownSsrc => &mut self.unknown_ssrc,
            DropReason::SrtpAuth => &mut self.srtp_auth,
            DropReason::SrtpReplay => &mut self.srtp_replay,
        };
        *counter = counter.saturating_add(1);
    }

    /// Both counts added, reason by reason.
    pub fn plus(self, other: DroppedDatagrams) -> DroppedDatagrams {
        DroppedDatagrams {
            foreign_source: self.foreign_source.saturating_add(other.foreign_source),
            oversize: self.oversize.saturating_add(other.oversize),
            invalid: self.invalid.saturating_add(other.invalid),
            unknown_ssrc: self.unknown_ssrc.saturating_add(other.unknown_ssrc),
            srtp_auth: self.srtp_auth.saturating_add(other.srtp_auth),
            srtp_replay: self.srtp_replay.saturating_add(other.srtp_replay),
        }
    }

    pub fn get(&self, reason: DropReason) -> u64 {
        match reason {
            DropReason::ForeignSource => self.foreign_source,
            DropReason::Oversize => self.oversize,
            DropReason::Invalid => self.invalid,
            DropReason::UnknownSsrc => self.unknown_ssrc,
            DropReason::SrtpAuth => self.srtp_auth,
            DropReason::SrtpReplay => self.srtp_replay,
        }
    }
}
