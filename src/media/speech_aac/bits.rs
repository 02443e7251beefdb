//! A most-significant-bit-first writer into a caller's buffer, as AAC's bitstream is read.

/// Writes bits into `out`; what does not fit is counted but dropped (the encoder sizes its frames
/// to fit, so [`BitWriter::overflowed`] is a bug check, not a path).
pub struct BitWriter<'a> {
    out: &'a mut [u8],
    /// Bits not yet written out, in the low `pending_len` bits.
    pending: u64,
    pending_len: u32,
    bytes: usize,
    overflowed: bool,
}

impl<'a> BitWriter<'a> {
    pub fn new(out: &'a mut [u8]) -> Self {
        BitWriter {
            out,
            pending: 0,
            pending_len: 0,
            bytes: 0,
            overflowed: false,
        }
    }

    /// Appends the low `len` bits of `value` (`len` ≤ 32).
    #[inline]
    pub fn put(&mut self, value: u32, len: u32) {
        debug_assert!(len <= 32);
        // Fewer than 32 bits wait, so the 64-bit accumulator always has room for 32 more.
        let mask = (1u64 << len) - 1;
        self.pending = (self.pending << len) | (u64::from(value) & mask);
        self.pending_len += len;
        if self.pending_len >= 32 {
            self.pending_len -= 32;
            let word = (self.pending >> self.pending_len) as u32;
            match self.out.get_mut(self.bytes..self.bytes + 4) {
                Some(slot) => {
                    slot.copy_from_slice(&word.to_be_bytes());
                    self.bytes += 4;
                }
                None => {
                    for byte in word.to_be_bytes() {
                        self.push_byte(byte);
                    }
                }
            }
        }
    }

    fn push_byte(&mut self, byte: u8) {
        match self.out.get_mut(self.bytes) {
            Some(slot) => {
                *slot = byte;
                self.bytes += 1;
            }
            None => self.overflowed = true,
        }
    }

    /// Pads with zeros to a whole byte and returns the bytes written.
    pub fn finish(mut self) -> usize {
        let pad = (8 - self.pending_len % 8) % 8;
        let (bits, len) = (self.pending << pad, self.pending_len + pad);
        for shift in (0..len / 8).rev() {
            self.push_byte((bits >> (8 * shift)) as u8);
        }
        self.bytes
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_packed_most_significant_first_and_padded() {
        let mut out = [0u8; 8];
        let mut writer = BitWriter::new(&mut out);
        writer.put(0b101, 3);
        writer.put(0x3ff, 10);
        writer.put(0, 0);
        writer.put(1, 1);
        assert_eq!(writer.finish(), 2);
        assert_eq!(out[..2], [0b1011_1111, 0b1111_1100]);
        // Across the 32-bit flush: 3 + 32 + 5 bits.
        let mut writer = BitWriter::new(&mut out);
        writer.put(0b111, 3);
        writer.put(0x8000_0001, 32);
        writer.put(0b10101, 5);
        assert_eq!(writer.finish(), 5);
        assert_eq!(out[..5], [0b1111_0000, 0, 0, 0b0000_0000, 0b0011_0101]);
    }

    #[test]
    fn a_full_buffer_drops_bits_and_says_so() {
        let mut out = [0u8; 1];
        let mut writer = BitWriter::new(&mut out);
        writer.put(u32::MAX, 32);
        assert!(writer.overflowed());
        assert_eq!(writer.finish(), 1);
        assert_eq!(out, [0xff]);
    }
}
