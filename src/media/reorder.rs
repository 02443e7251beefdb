//! Per-SSRC reorder buffer with a bounded delay, and the reception statistics that RTCP receiver
//! reports carry (RFC 3550 §6.4.1, Appendix A.1, A.3, A.8).
//!
//! Packets are copied into preallocated slots indexed by extended sequence number and released
//! in order. A hole is waited for at most `max_delay` after the first packet behind it arrived;
//! then it is declared lost and the next released packet carries `lost_before > 0`, which the
//! depacketizers treat as loss. Sequence jumps beyond RFC 3550's MAX_DROPOUT / MAX_MISORDER are a
//! restarted sender: the buffer flushes what it holds and resynchronises (counted, not lost).
//!
//! Drive it with [`ReorderBuffer::push`] for each packet and [`ReorderBuffer::release_expired`]
//! when [`ReorderBuffer::poll_timeout`] passes; both hand released packets to a callback, which
//! keeps the steady state free of allocation and copies beyond the one into the slot.

use std::time::{Duration, Instant};

/// RFC 3550 A.1: a jump this far ahead is a restart, not loss.
const MAX_DROPOUT: i64 = 3000;
/// RFC 3550 A.1: a packet this far behind is a restart, not a straggler.
const MAX_MISORDER: i64 = 100;
/// The largest datagram a slot holds: the receiver refuses larger ones before they get here,
/// so nothing is ever truncated (MTU-sized RTP is far smaller).
const MAX_PACKET: usize = super::receiver::MAX_DATAGRAM;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReorderConfig {
    /// How long a hole is waited for before it is declared lost.
    pub max_delay: Duration,
    /// Packets held at most; a packet further ahead forces the oldest hole to be given up.
    pub capacity: usize,
}

impl Default for ReorderConfig {
    fn default() -> Self {
        ReorderConfig {
            max_delay: Duration::from_millis(50),
            capacity: 128,
        }
    }
}

/// Reception counters for status and for RTCP report blocks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReceptionStats {
    pub received: u64,
    /// Sequence numbers given up on (never released).
    pub lost: u64,
    /// Packets that arrived after their slot had been released or given up.
    pub late: u64,
    pub duplicates: u64,
    /// Sender restarts detected from sequence jumps.
    pub resyncs: u64,
    /// Interarrival jitter in RTP timestamp units (RFC 3550 A.8).
    pub jitter: f64,
    /// Highest extended sequence number received.
    pub highest_seq: u64,
}

/// What RFC 3550 §6.4.1 puts in a report block, computed since the previous call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReportFigures {
    pub fraction_lost: u8,
    pub cumulative_lost: i32,
    pub extended_highest_seq: u32,
    pub jitter: u32,
}

#[derive(Clone, Debug)]
struct Slot {
    filled: bool,
    ext_seq: u64,
    arrived: Instant,
    data: Vec<u8>,
}

/// A reorder buffer for one SSRC; see the module docs for how to drive it.
#[derive(Debug)]
pub struct ReorderBuffer {
    config: ReorderConfig,
    clock_rate: u32,
    slots: Vec<Slot>,
    /// Extended sequence number to release next; `None` before the first packet.
    next: Option<u64>,
    held: usize,
    lost_pending: u32,
    stats: ReceptionStats,
    base_seq: u64,
    jitter_epoch: Option<Instant>,
    last_transit: Option<u32>,
    prior_expected: u64,
    prior_received: u64,
}

impl ReorderBuffer {
    pub fn new(config: ReorderConfig, clock_rate: u32, epoch: Instant) -> Self {
        let capacity = config.capacity.clamp(1, 1024);
        let slot = Slot {
            filled: false,
            ext_seq: 0,
            arrived: epoch,
            data: Vec::with_capacity(1500),
        };
        ReorderBuffer {
            config: ReorderConfig { capacity, ..config },
            clock_rate: clock_rate.max(1),
            slots: vec![slot; capacity],
            next: None,
            held: 0,
            lost_pending: 0,
            stats: ReceptionStats::default(),
            base_seq: 0,
            jitter_epoch: None,
            last_transit: None,
            prior_expected: 0,
            prior_received: 0,
        }
    }

    pub fn stats(&self) -> ReceptionStats {
        self.stats
    }

    /// Starts afresh for a new sender, keeping the slots' memory (no allocation).
    pub fn reset(&mut self, epoch: Instant) {
        for slot in &mut self.slots {
            slot.filled = false;
            slot.ext_seq = 0;
            slot.arrived = epoch;
            slot.data.clear();
        }
        self.next = None;
        self.held = 0;
        self.lost_pending = 0;
        self.stats = ReceptionStats::default();
        self.base_seq = 0;
        self.jitter_epoch = None;
        self.last_transit = None;
        self.prior_expected = 0;
        self.prior_received = 0;
    }

    /// Adds one RTP datagram (header included) with its sequence number and timestamp; releases
    /// every packet that became ready, in order, as `emit(datagram, lost_before)`.
    pub fn push(
        &mut self,
        now: Instant,
        sequence: u16,
        timestamp: u32,
        datagram: &[u8],
        emit: &mut impl FnMut(&[u8], u32),
    ) {
        let next = *self.next.get_or_insert_with(|| {
            self.base_seq = u64::from(sequence) + (1 << 16);
            self.base_seq
        });
        let delta = i64::from(sequence.wrapping_sub(next as u16) as i16);
        let mut ext_seq = next.saturating_add_signed(delta);
        self.stats.received += 1;
        self.update_jitter(now, timestamp);

        if !(-MAX_MISORDER..MAX_DROPOUT).contains(&delta) {
            // A restart always moves forward, so the extended numbers never run backwards
            // (below zero) however the sequence numbers jump.
            ext_seq = next.saturating_add(u64::from(sequence.wrapping_sub(next as u16)));
            self.resync(ext_seq, emit);
        } else if delta < 0 {
            self.stats.late += 1;
            return;
        } else if delta >= self.slots.len() as i64 {
            let target = ext_seq
                .saturating_add(1)
                .saturating_sub(self.slots.len() as u64);
            self.release_until(target, emit);
        }
        self.stats.highest_seq = self.stats.highest_seq.max(ext_seq);

        let len = self.slots.len() as u64;
        let Some(slot) = self.slots.get_mut((ext_seq % len) as usize) else {
            return;
        };
        if slot.filled {
            self.stats.duplicates += 1;
            return;
        }
        slot.filled = true;
        slot.ext_seq = ext_seq;
        slot.arrived = now;
        slot.data.clear();
        slot.data
            .extend_from_slice(datagram.get(..MAX_PACKET).unwrap_or(datagram));
        self.held += 1;
        self.release_expired(now, emit);
    }

    /// Releases in-order packets and gives up holes older than `max_delay`.
    pub fn release_expired(&mut self, now: Instant, emit: &mut impl FnMut(&[u8], u32)) {
        while let Some(next) = self.next {
            if self.held == 0 {
                return;
            }
            let index = self.index(next);
            if self.slots.get(index).is_some_and(|slot| slot.filled) {
                self.release_slot(index, emit);
                continue;
            }
            let Some(first) = self.first_held().and_then(|first| self.slots.get(first)) else {
                return;
            };
            let (arrived, held_seq) = (first.arrived, first.ext_seq);
            if now.saturating_duration_since(arrived) < self.config.max_delay {
                return;
            }
            self.give_up(held_seq.saturating_sub(next));
            self.next = Some(held_seq);
        }
    }

    /// When [`Self::release_expired`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first = self.slots.get(self.first_held()?)?;
        Some(first.arrived + self.config.max_delay)
    }

    /// Report block figures since the previous call (RFC 3550 A.3).
    pub fn report(&mut self) -> ReportFigures {
        let expected = self.expected();
        let cumulative = expected as i64 - self.stats.received as i64;
        let expected_interval = expected.saturating_sub(self.prior_expected);
        let received_interval = self.stats.received.saturating_sub(self.prior_received);
        self.prior_expected = expected;
        self.prior_received = self.stats.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReportFigures {
            fraction_lost,
            cumulative_lost: cumulative.clamp(-0x80_0000, 0x7f_ffff) as i32,
            extended_highest_seq: self.stats.highest_seq as u32,
            jitter: self.stats.jitter as u32,
        }
    }

    /// Sequence numbers expected so far (RFC 3550 A.3).
    fn expected(&self) -> u64 {
        self.stats
            .highest_seq
            .saturating_add(1)
            .saturating_sub(self.base_seq)
    }

    /// The slot of an extended sequence number.
    fn index(&self, ext_seq: u64) -> usize {
        (ext_seq % self.slots.len().max(1) as u64) as usize
    }

    fn first_held(&self) -> Option<usize> {
        let next = self.next?;
        if self.held == 0 {
            return None;
        }
        (0..self.slots.len() as u64)
            .map(|offset| self.index(next.wrapping_add(offset)))
            .find(|&index| self.slots.get(index).is_some_and(|slot| slot.filled))
    }

    fn release_slot(&mut self, index: usize, emit: &mut impl FnMut(&[u8], u32)) {
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        slot.filled = false;
        self.held = self.held.saturating_sub(1);
        self.next = Some(slot.ext_seq.saturating_add(1));
        emit(&slot.data, std::mem::take(&mut self.lost_pending));
    }

    fn give_up(&mut self, count: u64) {
        self.stats.lost += count;
        self.lost_pending = self
            .lost_pending
            .saturating_add(u32::try_from(count).unwrap_or(u32::MAX));
    }

    /// Releases or gives up everything before `target`.
    fn release_until(&mut self, target: u64, emit: &mut impl FnMut(&[u8], u32)) {
        while let Some(next) = self.next.filter(|&next| next < target) {
            let index = self.index(next);
            if self
                .slots
                .get(index)
                .is_some_and(|slot| slot.filled && slot.ext_seq == next)
            {
                self.release_slot(index, emit);
            } else {
                self.give_up(1);
                self.next = Some(next.saturating_add(1));
            }
        }
    }

    /// A restarted sender: flush what is held in order, then continue from `ext_seq`, keeping
    /// the cumulative loss figure where it was (RFC 3550 A.1 re-initialises on restart).
    fn resync(&mut self, ext_seq: u64, emit: &mut impl FnMut(&[u8], u32)) {
        while let Some(first) = self.first_held() {
            self.release_slot(first, emit);
        }
        self.stats.resyncs += 1;
        // Expected minus received stays what it was: the new base is as far behind `ext_seq`
        // as the packets expected so far (this packet, counted received, is expected too).
        self.base_seq = ext_seq.saturating_sub(self.expected());
        self.next = Some(ext_seq);
        self.stats.highest_seq = ext_seq;
        self.prior_expected = self.prior_expected.min(self.expected());
        // The depacketizers must see the break even though nothing was lost.
        self.lost_pending = self.lost_pending.max(1);
    }

    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let epoch = *self.jitter_epoch.get_or_insert(now);
        let elapsed = now.saturating_duration_since(epoch);
        let arrival = (elapsed.as_nanos() * u128::from(self.clock_rate) / 1_000_000_000) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(last) = self.last_transit.replace(transit) {
            let d = f64::from((transit.wrapping_sub(last) as i32).unsigned_abs());
            self.stats.jitter += (d - self.stats.jitter) / 16.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Harness {
        buffer: ReorderBuffer,
        start: Instant,
        out: Vec<(u16, u32)>,
    }

    impl Harness {
        fn new(capacity: usize) -> Self {
            let start = crate::clock::monotonic().into_std();
            let config = ReorderConfig {
                max_delay: Duration::from_millis(50),
                capacity,
            };
            Harness {
                buffer: ReorderBuffer::new(config, 8000, start),
                start,
                out: Vec::new(),
            }
        }

        fn push(&mut self, at_ms: u64, seq: u16) {
            let now = self.start + Duration::from_millis(at_ms);
            let datagram = seq.to_be_bytes();
            let out = &mut self.out;
            self.buffer
                .push(now, seq, u32::from(seq) * 160, &datagram, &mut |d, lost| {
                    out.push((u16::from_be_bytes([d[0], d[1]]), lost))
                });
        }

        fn tick(&mut self, at_ms: u64) {
            let out = &mut self.out;
            self.buffer
                .release_expired(self.start + Duration::from_millis(at_ms), &mut |d, lost| {
                    out.push((u16::from_be_bytes([d[0], d[1]]), lost))
                });
        }
    }

    #[test]
    fn in_order_packets_pass_straight_through_across_the_wrap() {
        let mut h = Harness::new(16);
        for (i, seq) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            h.push(i as u64 * 20, seq);
        }
        assert_eq!(h.out, vec![(65534, 0), (65535, 0), (0, 0), (1, 0)]);
        assert_eq!(h.buffer.stats().lost, 0);
    }

    #[test]
    fn swapped_packets_are_reordered_without_loss() {
        let mut h = Harness::new(16);
        h.push(0, 10);
        h.push(1, 12);
        h.push(2, 11);
        assert_eq!(h.out, vec![(10, 0), (11, 0), (12, 0)]);
        assert_eq!(h.buffer.poll_timeout(), None);
    }

    #[test]
    fn a_hole_is_given_up_after_the_delay_and_reported_with_the_next_packet() {
        let mut h = Harness::new(16);
        h.push(0, 10);
        h.push(10, 13);
        h.tick(59);
        assert_eq!(h.out, vec![(10, 0)]);
        assert_eq!(
            h.buffer.poll_timeout(),
            Some(h.start + Duration::from_millis(60))
        );
        h.tick(60);
        assert_eq!(h.out, vec![(10, 0), (13, 2)]);
        h.push(61, 11); // too late now
        assert_eq!(h.buffer.stats().late, 1);
        assert_eq!(h.buffer.stats().lost, 2);
    }

    #[test]
    fn overflowing_the_capacity_gives_up_the_oldest_hole() {
        let mut h = Harness::new(4);
        h.push(0, 1);
        h.push(1, 3);
        h.push(2, 4);
        h.push(3, 5);
        h.push(4, 6);
        assert_eq!(h.out, vec![(1, 0), (3, 1), (4, 0), (5, 0), (6, 0)]);
    }

    #[test]
    fn a_sequence_jump_is_a_resync_not_thousands_of_losses() {
        let mut h = Harness::new(16);
        h.push(0, 100);
        h.push(20, 40_000);
        h.push(40, 40_001);
        assert_eq!(h.out, vec![(100, 0), (40_000, 1), (40_001, 0)]);
        let stats = h.buffer.stats();
        assert_eq!((stats.lost, stats.resyncs), (0, 1));
    }

    #[test]
    fn backward_jumps_never_run_the_extended_numbers_below_zero() {
        let mut h = Harness::new(16);
        h.push(0, 0);
        // Each packet 32 000 behind the last: a restart every time, forever.
        let mut seq = 0u16;
        for i in 1..2000u64 {
            seq = seq.wrapping_sub(32_000);
            h.push(i, seq);
        }
        let stats = h.buffer.stats();
        assert_eq!(stats.resyncs, 1999);
        assert!(stats.highest_seq > 65_536, "{stats:?}");
        assert_eq!(h.out.len(), 2000, "every packet released once");
        let report = h.buffer.report();
        assert_eq!(report.cumulative_lost, 0, "restarts are not loss");
    }

    #[test]
    fn a_reset_starts_afresh_without_releasing_the_old_sender() {
        let mut h = Harness::new(16);
        h.push(0, 10);
        h.push(1, 12); // held behind the hole at 11
        h.buffer.reset(h.start);
        assert_eq!(h.buffer.poll_timeout(), None);
        h.push(2, 5000);
        assert_eq!(h.out, vec![(10, 0), (5000, 0)]);
        assert_eq!(h.buffer.stats().received, 1);
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut h = Harness::new(16);
        h.push(0, 1);
        h.push(1, 3);
        h.push(2, 3);
        assert_eq!(h.buffer.stats().duplicates, 1);
    }

    #[test]
    fn report_counts_fraction_lost_since_the_last_report() {
        let mut h = Harness::new(16);
        for seq in (0..100u16).filter(|s| s % 4 != 3) {
            h.push(u64::from(seq) * 20, seq);
        }
        h.tick(10_000);
        let report = h.buffer.report();
        assert_eq!(report.cumulative_lost, 24);
        assert_eq!(report.fraction_lost, (24 * 256 / 99) as u8);
        assert_eq!(h.buffer.report().fraction_lost, 0);
    }

    #[test]
    fn steady_arrival_has_no_jitter() {
        let mut h = Harness::new(16);
        for seq in 0..50u16 {
            h.push(u64::from(seq) * 20, seq);
        }
        assert!(h.buffer.stats().jitter < 1.0, "{:?}", h.buffer.stats());
    }
}
