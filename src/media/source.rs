//! The receive side of one track: the current source (SSRC), its reorder buffer and the
//! reception figures that status reports. A new SSRC (re-INVITE, sender restart) gets a fresh
//! reorder buffer; the figures carry over.

use std::time::Instant;

use super::reorder::{ReorderBuffer, ReorderConfig};
use super::rtp::RtpPacket;
use super::stats::TrackStats;

#[derive(Debug)]
pub struct SourceReception {
    reorder: ReorderBuffer,
    config: ReorderConfig,
    clock_rate: u32,
    codec: String,
    ssrc: Option<u32>,
    /// Figures of the reorder buffers of earlier sources.
    earlier: TrackStats,
}

impl SourceReception {
    pub fn new(config: ReorderConfig, clock_rate: u32, codec: &str, now: Instant) -> Self {
        SourceReception {
            reorder: ReorderBuffer::new(config, clock_rate, now),
            config,
            clock_rate: clock_rate.max(1),
            codec: codec.to_string(),
            ssrc: None,
            earlier: TrackStats::default(),
        }
    }

    /// Switches to `ssrc` if it is new; true when it replaced an earlier source (the caller
    /// resets what depends on the old one; [`Self::push`] follows by itself otherwise).
    pub fn follow(&mut self, now: Instant, ssrc: u32) -> bool {
        if self.ssrc == Some(ssrc) {
            return false;
        }
        let replaced = self.ssrc.replace(ssrc).is_some();
        if replaced {
            self.earlier = self.stats(1, 0);
            self.reorder = ReorderBuffer::new(self.config, self.clock_rate, now);
        }
        replaced
    }

    /// Follows the packet's source, then hands it to the reorder buffer, which releases what is
    /// ready to `emit(datagram, lost_before)`. True when the packet began a new source.
    pub fn push(
        &mut self,
        now: Instant,
        packet: &RtpPacket<'_>,
        datagram: &[u8],
        emit: &mut impl FnMut(&[u8], u32),
    ) -> bool {
        let replaced = self.follow(now, packet.ssrc);
        self.reorder
            .push(now, packet.sequence, packet.timestamp, datagram, emit);
        replaced
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
