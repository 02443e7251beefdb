//! The receive side of one track: the current source (SSRC), its reorder buffer and the
//! reception figures that status reports.
//!
//! One sender at a time. A packet of another SSRC (a re-INVITE or sender restart, RFC 3550
//! §8.2, or a flood of forged SSRCs) replaces the current sender only once the current one
//! has been silent for [`TAKEOVER_SILENCE`] and the newcomer has sent [`PROBATION`] packets
//! in sequence (RFC 3550 A.1's probation); until then its packets are refused and counted.
//! Only one candidate is tracked, so any number of SSRCs costs no memory, and the current
//! stream (and so the timeline) never flips back and forth between interleaved senders. The
//! replacement resets the reorder buffer in place (no allocation); the figures carry over.

use std::time::{Duration, Instant};

use super::reorder::{ReorderBuffer, ReorderConfig};
use super::rtp::RtpPacket;
use super::stats::TrackStats;

/// The current sender must have been silent this long before another SSRC may replace it.
pub const TAKEOVER_SILENCE: Duration = Duration::from_millis(300);
/// Packets in sequence a new SSRC must send before it replaces the current one.
pub const PROBATION: u32 = 2;

/// What became of a packet offered to [`SourceReception::admit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// From the current sender (or the first one).
    Current,
    /// From a sender that just replaced the previous one: reset what depended on it.
    Replaced,
    /// From another sender while the current one holds the track: drop it.
    Refused,
}

/// A sender seen while another held the track: its SSRC and how far its probation got.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    ssrc: u32,
    next_sequence: u16,
    in_sequence: u32,
}

#[derive(Debug)]
pub struct SourceReception {
    reorder: ReorderBuffer,
    clock_rate: u32,
    codec: String,
    ssrc: Option<u32>,
    /// When the current sender's last packet came.
    last_packet: Option<Instant>,
    candidate: Option<Candidate>,
    /// Senders replaced so far.
    changes: u64,
    /// Figures of the reorder buffers of earlier sources.
    earlier: TrackStats,
}

impl SourceReception {
    pub fn new(config: ReorderConfig, clock_rate: u32, codec: &str, now: Instant) -> Self {
        SourceReception {
            reorder: ReorderBuffer::new(config, clock_rate, now),
            clock_rate: clock_rate.max(1),
            codec: codec.to_string(),
            ssrc: None,
            last_packet: None,
            candidate: None,
            changes: 0,
            earlier: TrackStats::default(),
        }
    }

    /// Decides whether `packet`'s sender is (or now becomes) the track's; see the module docs.
    pub fn admit(&mut self, now: Instant, packet: &RtpPacket<'_>) -> Admission {
        let current = match self.ssrc {
            Some(current) => current,
            None => {
                self.ssrc = Some(packet.ssrc);
                self.last_packet = Some(now);
                return Admission::Current;
            }
        };
        if packet.ssrc == current {
            self.last_packet = Some(now);
            self.candidate = None;
            return Admission::Current;
        }
        let in_sequence = match self.candidate {
            Some(c) if c.ssrc == packet.ssrc && c.next_sequence == packet.sequence => {
                c.in_sequence.saturating_add(1)
            }
            _ => 1,
        };
        self.candidate = Some(Candidate {
            ssrc: packet.ssrc,
            next_sequence: packet.sequence.wrapping_add(1),
            in_sequence,
        });
        let silent = self
            .last_packet
            .is_none_or(|last| now.saturating_duration_since(last) >= TAKEOVER_SILENCE);
        if !silent || in_sequence < PROBATION {
            return Admission::Refused;
        }
        self.earlier = self.stats(1, 0);
        self.reorder.reset(now);
        self.ssrc = Some(packet.ssrc);
        self.last_packet = Some(now);
        self.candidate = None;
        self.changes = self.changes.saturating_add(1);
        Admission::Replaced
    }

    /// Admits the packet's sender, then hands the packet to the reorder buffer, which releases
    /// what is ready to `emit(datagram, lost_before)`. A refused packet goes nowhere.
    pub fn push(
        &mut self,
        now: Instant,
        packet: &RtpPacket<'_>,
        datagram: &[u8],
        emit: &mut impl FnMut(&[u8], u32),
    ) -> Admission {
        let admission = self.admit(now, packet);
        if admission != Admission::Refused {
            self.reorder
                .push(now, packet.sequence, packet.timestamp, datagram, emit);
        }
        admission
    }

    /// Senders replaced so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    pub fn reorder(&mut self) -> &mut ReorderBuffer {
        &mut self.reorder
    }

    pub fn ssrc(&self) -> Option<u32> {
        self.ssrc
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reorder.poll_timeout()
    }

    /// Figures across all sources so far, plus the timeline's and the codec's own counts.
    pub fn stats(&self, discontinuities: u64, errors: u64) -> TrackStats {
        let reception = self.reorder.stats();
        TrackStats {
            codec: self.codec.clone(),
            ssrc: self.ssrc,
            packets: self.earlier.packets + reception.received,
            lost: self.earlier.lost + reception.lost,
            late: self.earlier.late + reception.late,
            duplicates: self.earlier.duplicates + reception.duplicates,
            jitter_ms: reception.jitter * 1000.0 / f64::from(self.clock_rate),
            discontinuities: self.earlier.discontinuities + reception.resyncs + discontinuities,
            errors,
        }
    }
}
