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
/// Datagrams larger than this are truncated into the slot (MTU-sized RTP is far smaller).
const MAX_PACKET: usize = 2048;

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
        let ext_seq = next.wrapping_add_signed(delta);
        self.stats.received += 1;
        self.update_jitter(now, timestamp);

        if !(-MAX_MISORDER..MAX_DROPOUT).contains(&delta) {
            self.resync(ext_seq, emit);
        } else if delta < 0 {
            self.stats.late += 1;
            return;
        } else if delta >= self.slots.len() as i64 {
            self.release_until(ext_seq + 1 - self.slots.len() as u64, emit);
        }
        self.stats.highest_seq = self.stats.highest_seq.max(ext_seq);

        let index = (ext_seq % self.slots.len() as u64) as usize;
        let slot = &mut self.slots[index];
        if slot.filled {
            self.stats.duplicates += 1;
            return;
        }
        slot.filled = true;
        slot.ext_seq = ext_seq;
        slot.arrived = now;
        slot.data.clear();
        slot.data
            .extend_from_slice(&datagram[..datagram.len().min(MAX_PACKET)]);
        self.held += 1;
        self.release_expired(now, emit);
    }

    /// Releases in-order packets and gives up holes older than `max_delay`.
    pub fn release_expired(&mut self, now: Instant, emit: &mut impl FnMut(&[u8], u32)) {
        while let Some(next) = self.next {
            if self.held == 0 {
                return;
            }
            let index = (next % self.slots.len() as u64) as usize;
            if self.slots[index].filled {
                self.release_slot(index, emit);
                continue;
            }
            let Some(first) = self.first_held() else {
                return;
            };
            let (arrived, held_seq) = (self.slots[first].arrived, self.slots[first].ext_seq);
            if now.saturating_duration_since(arrived) < self.config.max_delay {
                return;
            }
            self.give_up(held_seq - next);
            self.next = Some(held_seq);
        }
    }

    /// When [`Self::release_expired`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let first = self.first_held()?;
        Some(self.slots[first].arrived + self.config.max_delay)
    }

    /// Report block figures since the previous call (RFC 3550 A.3).
    pub fn report(&mut self) -> ReportFigures {
        let expected = (self.stats.highest_seq + 1).saturating_sub(self.base_seq);
        let cumulative = expected as i64 - self.stats.received as i64;
        let expected_interval = expected - self.prior_expected;
        let received_interval = self.stats.received - self.prior_received;
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

    fn first_held(&self) -> Option<usize> {
        let next = self.next?;
        if self.held == 0 {
            return None;
        }
        let len = self.slots.len() as u64;
        (0..len)
            .map(|offset| ((next + offset) % len) as usize)
            .find(|&index| self.slots[index].filled)
    }

    fn release_slot(&mut self, index: usize, emit: &mut impl FnMut(&[u8], u32)) {
        let slot = &mut self.slots[index];
        slot.filled = false;
        self.held -= 1;
        self.next = Some(slot.ext_seq + 1);
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
            let index = (next % self.slots.len() as u64) as usize;
            if self.slots[index].filled && self.slots[index].ext_seq == next {
                self.release_slot(index, emit);
            } else {
                self.give_up(1);
                self.next = Some(next + 1);
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
        let expected = (self.stats.highest_seq + 1).saturating_sub(self.base_seq);
        let lost_so_far = expected as i64 - (self.stats.received as i64 - 1);
        let base = ext_seq as i64 + 1 - self.stats.received as i64 - lost_so_far;
        self.base_seq = base.max(0) as u64;
        self.next = Some(ext_seq);
        self.stats.highest_seq = ext_seq;
        self.prior_expected = self.prior_expected.min(ext_seq + 1 - self.base_seq);
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
