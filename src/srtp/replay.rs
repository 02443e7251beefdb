//! Packet index estimation (RFC 3711 §3.3.1 and Appendix A) and the replay list (§3.3.2) as a
//! 64-packet sliding window.

/// How many packets behind the highest one received are still accepted (once each).
pub(crate) const WINDOW: u64 = 64;

/// What one direction knows of one SSRC's SRTP or SRTCP packets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexState {
    /// The highest index authenticated so far (for SRTP, `ROC * 2^16 + s_l`).
    pub(crate) highest: u64,
    /// Bit n set: index `highest - n` was received.
    seen: u64,
}

impl IndexState {
    pub(crate) fn first(index: u64) -> IndexState {
        IndexState {
            highest: index,
            seen: 1,
        }
    }

    /// The rollover counter, the high 32 bits of the 48-bit SRTP index.
    pub(crate) fn roc(&self) -> u32 {
        (self.highest >> 16) as u32
    }

    /// The 48-bit index of a packet with sequence number `seq` (Appendix A), or `None` when the
    /// guess falls before the first ROC or past the last.
    pub(crate) fn estimate_rtp_index(&self, seq: u16) -> Option<u64> {
        let roc = i64::from(self.roc());
        let s_l = (self.highest & 0xffff) as i64;
        let seq_i = i64::from(seq);
        let v = if s_l < 32768 {
            if seq_i - s_l > 32768 { roc - 1 } else { roc }
        } else if s_l - 32768 > seq_i {
            roc + 1
        } else {
            roc
        };
        let v = u32::try_from(v).ok()?;
        Some((u64::from(v) << 16) | u64::from(seq))
    }

    /// Whether `index` is new: ahead of the window, or inside it and not yet seen.
    pub(crate) fn is_fresh(&self, index: u64) -> bool {
        if index > self.highest {
            return true;
        }
        let behind = self.highest - index;
        behind < WINDOW && self.seen & (1u64 << behind) == 0
    }

    /// Records an authenticated `index` (checked fresh).
    pub(crate) fn accept(&mut self, index: u64) {
        if index > self.highest {
            let ahead = index - self.highest;
            self.seen = if ahead >= WINDOW {
                1
            } else {
                (self.seen << ahead) | 1
            };
            self.highest = index;
        } else {
            let behind = self.highest - index;
            if behind < WINDOW {
                self.seen |= 1u64 << behind;
            }
        }
    }

    /// For what we send: moves the highest index forward without a window.
    pub(crate) fn advance(&mut self, index: u64) {
        if index > self.highest {
            self.highest = index;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_accepts_each_index_once_and_forgets_old_ones() {
        let mut state = IndexState::first(100);
        assert!(!state.is_fresh(100));
        assert!(state.is_fresh(101));
        state.accept(101);
        assert!(state.is_fresh(99), "out of order inside the window");
        state.accept(99);
        assert!(!state.is_fresh(99));
        state.accept(200);
        assert!(!state.is_fresh(200 - 64), "just outside the window");
        assert!(state.is_fresh(200 - 63));
        assert!(!state.is_fresh(101));
        state.accept(1_000_000);
        assert!(state.is_fresh(1_000_000 - 1));
        assert!(!state.is_fresh(200));
    }

    #[test]
    fn index_follows_sequence_wrap_both_ways() {
        let state = IndexState::first(0xfff0);
        assert_eq!(state.estimate_rtp_index(0x0005), Some(0x1_0005));
        assert_eq!(state.estimate_rtp_index(0xffe0), Some(0xffe0));
        let wrapped = IndexState::first(0x1_0005);
        assert_eq!(wrapped.roc(), 1);
        assert_eq!(
            wrapped.estimate_rtp_index(0xfff0),
            Some(0xfff0),
            "late packet of ROC 0"
        );
        assert_eq!(IndexState::first(10).estimate_rtp_index(0xfff0), None);
        let last = IndexState::first(0xffff_ffff_fff0);
        assert_eq!(last.estimate_rtp_index(3), None);
    }
}
