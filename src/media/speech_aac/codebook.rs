//! What the encoder writes and how many bits it costs: the long-window scale factor bands and
//! the one spectral Huffman codebook it uses (ISO/IEC 14496-3, §4.5.4 Table 4.129 and Annex
//! 4.A Table 4.A.11).
//!
//! Codebook 11 codes a pair of magnitudes 0..=16, each nonzero one followed by its sign bit, and
//! 16 by an escape sequence carrying magnitudes up to 8191. It can code any spectrum, so the
//! encoder needs no other spectral codebook; bands that quantize to zero take codebook 0 and cost
//! nothing beyond their section.

/// The first spectral line of each scale factor band of a 1024-line frame at 44.1 and 48 kHz,
/// and the end of the last (Table 4.129).
pub const BAND_OFFSETS: [u16; 50] = [
    0, 4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 48, 56, 64, 72, 80, 88, 96, 108, 120, 132, 144, 160,
    176, 196, 216, 240, 264, 292, 320, 352, 384, 416, 448, 480, 512, 544, 576, 608, 640, 672, 704,
    736, 768, 800, 832, 864, 896, 928, 1024,
];

/// The codebook that codes a band of zeros with no spectral data.
pub const ZERO_CODEBOOK: u8 = 0;
/// The escape codebook.
pub const ESCAPE_CODEBOOK: u8 = 11;
/// Codebook 11 codes magnitudes up to 15 directly; 16 announces an escape sequence.
pub const ESCAPE: u16 = 16;
/// The largest magnitude AAC can carry (an escape of 13 bits).
pub const MAX_MAGNITUDE: u16 = 8191;

/// Codebook 11, indexed by `y * 17 + z`: (codeword, length in bits).
#[rustfmt::skip]
const CODEBOOK_11: [(u16, u8); 289] = [
    // y = 0
    (0x0000, 4), (0x0006, 5), (0x0019, 6), (0x003d, 7), (0x009c, 8), (0x00c6, 8),
    (0x01a7, 9), (0x0390, 10), (0x03c2, 10), (0x03df, 10), (0x07e6, 11), (0x07f3, 11),
    (0x0ffb, 12), (0x07ec, 11), (0x0ffa, 12), (0x0ffe, 12), (0x038e, 10),
    // y = 1
    (0x0005, 5), (0x0001, 4), (0x0008, 5), (0x0014, 6), (0x0037, 7), (0x0042, 7),
    (0x0092, 8), (0x00af, 8), (0x0191, 9), (0x01a5, 9), (0x01b5, 9), (0x039e, 10),
    (0x03c0, 10), (0x03a2, 10), (0x03cd, 10), (0x07d6, 11), (0x00ae, 8),
    // y = 2
    (0x0017, 6), (0x0007, 5), (0x0009, 5), (0x0018, 6), (0x0039, 7), (0x0040, 7),
    (0x008e, 8), (0x00a3, 8), (0x00b8, 8), (0x0199, 9), (0x01ac, 9), (0x01c1, 9),
    (0x03b1, 10), (0x0396, 10), (0x03be, 10), (0x03ca, 10), (0x009d, 8),
    // y = 3
    (0x003c, 7), (0x0015, 6), (0x0016, 6), (0x001a, 6), (0x003b, 7), (0x0044, 7),
    (0x0091, 8), (0x00a5, 8), (0x00be, 8), (0x0196, 9), (0x01ae, 9), (0x01b9, 9),
    (0x03a1, 10), (0x0391, 10), (0x03a5, 10), (0x03d5, 10), (0x0094, 8),
    // y = 4
    (0x009a, 8), (0x0036, 7), (0x0038, 7), (0x003a, 7), (0x0041, 7), (0x008c, 8),
    (0x009b, 8), (0x00b0, 8), (0x00c3, 8), (0x019e, 9), (0x01ab, 9), (0x01bc, 9),
    (0x039f, 10), (0x038f, 10), (0x03a9, 10), (0x03cf, 10), (0x0093, 8),
    // y = 5
    (0x00bf, 8), (0x003e, 7), (0x003f, 7), (0x0043, 7), (0x0045, 7), (0x009e, 8),
    (0x00a7, 8), (0x00b9, 8), (0x0194, 9), (0x01a2, 9), (0x01ba, 9), (0x01c3, 9),
    (0x03a6, 10), (0x03a7, 10), (0x03bb, 10), (0x03d4, 10), (0x009f, 8),
    // y = 6
    (0x01a0, 9), (0x008f, 8), (0x008d, 8), (0x0090, 8), (0x0098, 8), (0x00a6, 8),
    (0x00b6, 8), (0x00c4, 8), (0x019f, 9), (0x01af, 9), (0x01bf, 9), (0x0399, 10),
    (0x03bf, 10), (0x03b4, 10), (0x03c9, 10), (0x03e7, 10), (0x00a8, 8),
    // y = 7
    (0x01b6, 9), (0x00ab, 8), (0x00a4, 8), (0x00aa, 8), (0x00b2, 8), (0x00c2, 8),
    (0x00c5, 8), (0x0198, 9), (0x01a4, 9), (0x01b8, 9), (0x038c, 10), (0x03a4, 10),
    (0x03c4, 10), (0x03c6, 10), (0x03dd, 10), (0x03e8, 10), (0x00ad, 8),
    // y = 8
    (0x03af, 10), (0x0192, 9), (0x00bd, 8), (0x00bc, 8), (0x018e, 9), (0x0197, 9),
    (0x019a, 9), (0x01a3, 9), (0x01b1, 9), (0x038d, 10), (0x0398, 10), (0x03b7, 10),
    (0x03d3, 10), (0x03d1, 10), (0x03db, 10), (0x07dd, 11), (0x00b4, 8),
    // y = 9
    (0x03de, 10), (0x01a9, 9), (0x019b, 9), (0x019c, 9), (0x01a1, 9), (0x01aa, 9),
    (0x01ad, 9), (0x01b3, 9), (0x038b, 10), (0x03b2, 10), (0x03b8, 10), (0x03ce, 10),
    (0x03e1, 10), (0x03e0, 10), (0x07d2, 11), (0x07e5, 11), (0x00b7, 8),
    // y = 10
    (0x07e3, 11), (0x01bb, 9), (0x01a8, 9), (0x01a6, 9), (0x01b0, 9), (0x01b2, 9),
    (0x01b7, 9), (0x039b, 10), (0x039a, 10), (0x03ba, 10), (0x03b5, 10), (0x03d6, 10),
    (0x07d7, 11), (0x03e4, 10), (0x07d8, 11), (0x07ea, 11), (0x00ba, 8),
    // y = 11
    (0x07e8, 11), (0x03a0, 10), (0x01bd, 9), (0x01b4, 9), (0x038a, 10), (0x01c4, 9),
    (0x0392, 10), (0x03aa, 10), (0x03b0, 10), (0x03bc, 10), (0x03d7, 10), (0x07d4, 11),
    (0x07dc, 11), (0x07db, 11), (0x07d5, 11), (0x07f0, 11), (0x00c1, 8),
    // y = 12
    (0x07fb, 11), (0x03c8, 10), (0x03a3, 10), (0x0395, 10), (0x039d, 10), (0x03ac, 10),
    (0x03ae, 10), (0x03c5, 10), (0x03d8, 10), (0x03e2, 10), (0x03e6, 10), (0x07e4, 11),
    (0x07e7, 11), (0x07e0, 11), (0x07e9, 11), (0x07f7, 11), (0x0190, 9),
    // y = 13
    (0x07f2, 11), (0x0393, 10), (0x01be, 9), (0x01c0, 9), (0x0394, 10), (0x0397, 10),
    (0x03ad, 10), (0x03c3, 10), (0x03c1, 10), (0x03d2, 10), (0x07da, 11), (0x07d9, 11),
    (0x07df, 11), (0x07eb, 11), (0x07f4, 11), (0x07fa, 11), (0x0195, 9),
    // y = 14
    (0x07f8, 11), (0x03bd, 10), (0x039c, 10), (0x03ab, 10), (0x03a8, 10), (0x03b3, 10),
    (0x03b9, 10), (0x03d0, 10), (0x03e3, 10), (0x03e5, 10), (0x07e2, 11), (0x07de, 11),
    (0x07ed, 11), (0x07f1, 11), (0x07f9, 11), (0x07fc, 11), (0x0193, 9),
    // y = 15
    (0x0ffd, 12), (0x03dc, 10), (0x03b6, 10), (0x03c7, 10), (0x03cc, 10), (0x03cb, 10),
    (0x03d9, 10), (0x03da, 10), (0x07d3, 11), (0x07e1, 11), (0x07ee, 11), (0x07ef, 11),
    (0x07f5, 11), (0x07f6, 11), (0x0ffc, 12), (0x0fff, 12), (0x019d, 9),
    // y = 16
    (0x01c2, 9), (0x00b5, 8), (0x00a1, 8), (0x0096, 8), (0x0097, 8), (0x0095, 8),
    (0x0099, 8), (0x00a0, 8), (0x00a2, 8), (0x00ac, 8), (0x00a9, 8), (0x00b1, 8),
    (0x00b3, 8), (0x00bb, 8), (0x00c0, 8), (0x018f, 9), (0x0004, 5),
];

/// A codeword: its value in the low `len` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Codeword {
    pub bits: u32,
    pub len: u32,
}

/// The escape sequence of a magnitude of 16 or more (§4.6.3.3): N − 4 ones, a zero, then the
/// magnitude's low N bits, where N is the position of its highest set bit.
pub fn escape(magnitude: u16) -> Codeword {
    let n = 15 - magnitude.leading_zeros();
    let prefix = (1u32 << (n - 4)) - 1;
    Codeword {
        bits: (prefix << (n + 1)) | (u32::from(magnitude) & ((1 << n) - 1)),
        len: 2 * n - 3,
    }
}

/// Codeword and sign bits of each pair of magnitudes up to 16, indexed like [`CODEBOOK_11`].
const PAIR_BITS: [u8; 289] = {
    let mut bits = [0u8; 289];
    let mut index = 0;
    while index < bits.len() {
        let signs = (index / 17 != 0) as u8 + (index % 17 != 0) as u8;
        bits[index] = CODEBOOK_11[index].1 + signs;
        index += 1;
    }
    bits
};

/// Codeword, sign bits and escapes of one pair of magnitudes, as written (§4.6.3.3: the
/// codeword, then the sign of each nonzero value, then the escape of each value of 16 or more).
#[inline]
pub fn pair_bits(y: u16, z: u16) -> u32 {
    let mut len = u32::from(PAIR_BITS[pair_index(y, z)]);
    if (y | z) >= ESCAPE {
        for magnitude in [y, z] {
            if magnitude >= ESCAPE {
                len += escape(magnitude).len;
            }
        }
    }
    len
}

/// The codeword of a pair of magnitudes, limited to 16.
pub fn pair(y: u16, z: u16) -> Codeword {
    let (bits, len) = CODEBOOK_11[pair_index(y, z)];
    Codeword {
        bits: u32::from(bits),
        len: u32::from(len),
    }
}

/// Where a pair of magnitudes, limited to 16, stands in [`CODEBOOK_11`].
fn pair_index(y: u16, z: u16) -> usize {
    usize::from(y.min(ESCAPE)) * 17 + usize::from(z.min(ESCAPE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codebook_11_is_a_complete_prefix_code() {
        // Kraft's sum is exactly one and no codeword starts another.
        let kraft: u64 = CODEBOOK_11.iter().map(|&(_, len)| 1u64 << (32 - len)).sum();
        assert_eq!(kraft, 1u64 << 32);
        for (i, &(a, la)) in CODEBOOK_11.iter().enumerate() {
            for &(b, lb) in &CODEBOOK_11[i + 1..] {
                let shorter = la.min(lb);
                assert_ne!(
                    u32::from(a) >> (la - shorter),
                    u32::from(b) >> (lb - shorter),
                    "prefix clash"
                );
            }
        }
    }

    #[test]
    fn escapes_carry_the_magnitude_in_the_spec_s_layout() {
        // 16: N = 4, no prefix ones, a zero, then 0000.
        assert_eq!(escape(16), Codeword { bits: 0, len: 5 });
        // 100 = 0b110_0100: N = 6, "11", "0", then 100100.
        assert_eq!(
            escape(100),
            Codeword {
                bits: (0b11 << 7) | 0b100100,
                len: 9
            }
        );
        assert_eq!(escape(MAX_MAGNITUDE).len, 21);
    }

    #[test]
    fn pair_bits_count_codeword_signs_and_escapes() {
        assert_eq!(pair_bits(0, 0), 4);
        assert_eq!(pair_bits(1, 1), 4 + 2);
        assert_eq!(pair_bits(16, 0), u32::from(CODEBOOK_11[16 * 17].1) + 1 + 5);
        assert_eq!(pair_bits(300, 300), 5 + 2 + 2 * 13);
    }
}
