//! The frame structure of a Speex RTP payload (RFC 5574 §3), read without decoding.
//!
//! libspeex answers a corrupt frame with a return code, but also prints a line on stderr for
//! every one; a peer sending garbage would flood the journal with text outside our log format.
//! So a payload is walked here first, and only its well-formed frames reach the decoder.
//!
//! A frame, as libspeex's decoders read it, is in-band signalling, then a narrowband layer,
//! then up to two high-band layers (wideband, then ultra-wideband):
//!
//! ```text
//! inband   = '0' mode:4 (13 user data | 14 request) payload
//! nb_layer = '0' mode:4 (0..=8) bits        (mode 15 is the terminator)
//! hb_layer = '1' submode:3 bits
//! ```
//!
//! Sizes are libspeex's `bits_per_frame` for each submode, header included.

use super::{MAX_FRAMES_PER_PACKET, SpeexBand, SpeexError};

/// Narrowband layer bits by mode 0..=8.
const NB_LAYER_BITS: [usize; 9] = [5, 43, 119, 160, 220, 300, 364, 492, 79];
/// Wideband layer bits by submode 0..=4 (5..=7 do not exist).
const WB_LAYER_BITS: [usize; 5] = [4, 36, 112, 192, 352];
/// Ultra-wideband layer bits by submode 0..=1.
const UWB_LAYER_BITS: [usize; 2] = [4, 36];

const TERMINATOR: u32 = 0b0_1111;

/// Counts the complete frames of `payload` a decoder of `band` would decode, up to
/// [`MAX_FRAMES_PER_PACKET`]. Padding and a trailing partial frame end the count, and so does a
/// corrupt frame after good ones; a corrupt first frame makes the payload corrupt.
pub fn count_frames(payload: &[u8], band: SpeexBand) -> Result<usize, SpeexError> {
    let mut bits = BitReader::new(payload);
    let mut frames = 0;
    while frames < MAX_FRAMES_PER_PACKET {
        if bits.remaining() < 5 || bits.peek(5) == Some(TERMINATOR) {
            break;
        }
        match frame(&mut bits, band) {
            Ok(Some(())) => frames += 1,
            Ok(None) => break,
            Err(corrupt) if frames == 0 => return Err(corrupt),
            Err(_) => break,
        }
    }
    Ok(frames)
}

/// Reads one frame as one `speex_decode_int` call does: `Ok(None)` if the payload ends (or is
/// cut) before the frame does.
fn frame(bits: &mut BitReader<'_>, band: SpeexBand) -> Result<Option<()>, SpeexError> {
    let Some(()) = signalling_and_narrowband(bits)? else {
        return Ok(None);
    };
    // The high-band layers this decoder decodes; layers above are left for the next call to
    // skip, as the previous frame's were.
    let decoded_layers = match band {
        SpeexBand::Narrow => 0,
        SpeexBand::Wide => 1,
        SpeexBand::UltraWide => 2,
    };
    for layer in 0..decoded_layers {
        if bits.peek(1) != Some(1) {
            break;
        }
        bits.skip(1);
        let Some(submode) = bits.read(3) else {
            return Ok(None);
        };
        let table: &[usize] = if layer == 0 {
            &WB_LAYER_BITS
        } else {
            &UWB_LAYER_BITS
        };
        let size = table.get(submode as usize).ok_or(SpeexError::Corrupt)?;
        if !bits.skip(size - 4) {
            return Ok(None);
        }
    }
    Ok(Some(()))
}

/// Skipped high-band layers and in-band signalling, then the narrowband layer.
fn signalling_and_narrowband(bits: &mut BitReader<'_>) -> Result<Option<()>, SpeexError> {
    loop {
        let Some(()) = skip_high_band_layers(bits)? else {
            return Ok(None);
        };
        match bits.read(5) {
            Some(mode @ 0..=8) => {
                return Ok(bits.skip(NB_LAYER_BITS[mode as usize] - 5).then_some(()));
            }
            Some(9..=12) => return Err(SpeexError::Corrupt),
            Some(13) => {
                // User data: a 4-bit size in bytes, then 5 + 8 × size bits.
                let Some(size) = bits.read(4) else {
                    return Ok(None);
                };
                if !bits.skip(5 + 8 * size as usize) {
                    return Ok(None);
                }
            }
            Some(14) => {
                let Some(request) = bits.read(4) else {
                    return Ok(None);
                };
                if !bits.skip(inband_request_bits(request)) {
                    return Ok(None);
                }
            }
            // Mode 15, the terminator, or the end.
            _ => return Ok(None),
        }
    }
}

/// Skips the high-band layers above the decoder's band, as libspeex's narrowband decoder does:
/// at most two, sized by the wideband table. That skip mishandles submode 0 (it steps back),
/// so such a layer is refused here rather than handed to libspeex.
fn skip_high_band_layers(bits: &mut BitReader<'_>) -> Result<Option<()>, SpeexError> {
    for skipped in 0..=2 {
        if bits.remaining() < 5 {
            return Ok(None);
        }
        if bits.peek(1) != Some(1) {
            return Ok(Some(()));
        }
        if skipped == 2 {
            // libspeex: "More than two wideband layers found".
            return Err(SpeexError::Corrupt);
        }
        bits.skip(1);
        let submode = bits.read(3).unwrap_or(0) as usize;
        let size = WB_LAYER_BITS
            .get(submode)
            .filter(|_| submode != 0)
            .ok_or(SpeexError::Corrupt)?;
        if !bits.skip(size - 4) {
            return Ok(None);
        }
    }
    Ok(Some(()))
}

/// The data size of a Speex in-band request, by its id (libspeex `speex_inband_handler`).
fn inband_request_bits(request: u32) -> usize {
    match request {
        0..=1 => 1,
        2..=7 => 4,
        8..=9 => 8,
        10..=11 => 16,
        12..=13 => 32,
        _ => 64,
    }
}

/// Most-significant-bit-first reader, as Speex packs its bits.
struct BitReader<'a> {
    data: &'a [u8],
    position: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, position: 0 }
    }

    fn remaining(&self) -> usize {
        self.data.len() * 8 - self.position
    }

    fn peek(&self, n: usize) -> Option<u32> {
        if n > self.remaining() {
            return None;
        }
        let value = (self.position..self.position + n).fold(0, |value, bit| {
            let byte = self.data[bit / 8];
            value << 1 | u32::from(byte >> (7 - bit % 8) & 1)
        });
        Some(value)
    }

    fn read(&mut self, n: usize) -> Option<u32> {
        let value = self.peek(n)?;
        self.position += n;
        Some(value)
    }

    /// Advances `n` bits; false (and at the end) if fewer remain.
    fn skip(&mut self, n: usize) -> bool {
        if n > self.remaining() {
            self.position = self.data.len() * 8;
            return false;
        }
        self.position += n;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs a string of '0'/'1' (spaces ignored) MSB first, padding the last byte with 1s.
    fn packed(bits: &str) -> Vec<u8> {
        let bits: Vec<u8> = bits
            .bytes()
            .filter(|b| *b != b' ')
            .map(|b| b - b'0')
            .collect();
        bits.chunks(8)
            .map(|chunk| (0..8).fold(0, |byte, i| byte << 1 | chunk.get(i).copied().unwrap_or(1)))
            .collect()
    }

    #[test]
    fn the_bit_reader_reads_msb_first_and_stops_at_the_end() {
        let mut bits = BitReader::new(&[0b1010_0000, 0xff]);
        assert_eq!(bits.read(3), Some(0b101));
        assert_eq!(bits.peek(5), Some(0));
        assert!(bits.skip(5));
        assert_eq!(bits.read(8), Some(0xff));
        assert_eq!(bits.read(1), None);
        assert!(!bits.skip(1));
    }

    #[test]
    fn padding_and_terminators_end_the_payload() {
        // Mode 0 (5 bits) then the terminator-like padding 0111.
        assert_eq!(count_frames(&[0b0000_0011, 0xff], SpeexBand::Narrow), Ok(1));
        // Mode 0, then the terminator 01111.
        assert_eq!(
            count_frames(&[0b0000_0011, 0b1100_0000], SpeexBand::Narrow),
            Ok(1)
        );
        assert_eq!(count_frames(&[0b0111_1000], SpeexBand::Narrow), Ok(0));
        assert_eq!(count_frames(&[], SpeexBand::Wide), Ok(0));
    }

    #[test]
    fn modes_that_do_not_exist_are_corrupt() {
        for mode in 9..=12u8 {
            assert_eq!(
                count_frames(&[mode << 3, 0, 0], SpeexBand::Wide),
                Err(SpeexError::Corrupt)
            );
        }
        // Mode 0 then wideband submode 5.
        assert_eq!(
            count_frames(&[0b0000_0110, 0b1000_0000], SpeexBand::Wide),
            Err(SpeexError::Corrupt)
        );
        // Ultra-wideband knows only submodes 0 and 1 in its top layer: mode 0, wb 0, uwb 2.
        assert_eq!(
            count_frames(&[0b0000_0100, 0b0101_0000], SpeexBand::UltraWide),
            Err(SpeexError::Corrupt)
        );
        // A decoder skipping a wideband submode 0 layer would step back into it.
        assert_eq!(
            count_frames(&[0b1000_0000, 0, 0], SpeexBand::Wide),
            Err(SpeexError::Corrupt)
        );
        // Three high-band layers (wideband submode 1, 36 bits each) before a frame.
        let layer = format!("1001{}", "0".repeat(32));
        let three = packed(&format!("{layer}{layer}{layer}00000"));
        assert_eq!(
            count_frames(&three, SpeexBand::Narrow),
            Err(SpeexError::Corrupt)
        );
    }

    #[test]
    fn inband_signalling_is_skipped() {
        // Request 0 (1 bit), then mode 0, then padding.
        let payload = [0b0111_0000, 0b0000_0000, 0xff];
        assert_eq!(count_frames(&payload, SpeexBand::Narrow), Ok(1));
        // User data of 0 bytes (4 + 5 bits), then mode 0.
        let payload = [0b0110_1000, 0b0000_0000, 0b0000_1111];
        assert_eq!(count_frames(&payload, SpeexBand::Narrow), Ok(1));
    }

    #[test]
    fn layers_above_the_band_are_left_to_the_next_frame() {
        // Mode 0, then a wideband submode 0 layer, then padding: a narrowband decoder never
        // reads that layer, a wideband one decodes it.
        let payload = [0b0000_0100, 0b0011_1111];
        assert_eq!(count_frames(&payload, SpeexBand::Narrow), Ok(1));
        assert_eq!(count_frames(&payload, SpeexBand::Wide), Ok(1));
        // Mode 0 and a wideband submode 0 layer, twice: the narrowband decoder would have to
        // skip the first layer, which libspeex gets wrong, so only the first frame decodes.
        let payload = packed("00000 1000 00000 1000 0111111");
        assert_eq!(count_frames(&payload, SpeexBand::Narrow), Ok(1));
        assert_eq!(count_frames(&payload, SpeexBand::Wide), Ok(2));
    }

    #[test]
    fn a_cut_frame_is_not_counted() {
        // Mode 1 needs 43 bits; give 16.
        assert_eq!(count_frames(&[0b0000_1000, 0], SpeexBand::Narrow), Ok(0));
    }

    #[test]
    fn the_count_is_capped() {
        // 5-bit mode-0 frames, 40 of them in 25 bytes.
        let payload = [0u8; 25];
        assert_eq!(
            count_frames(&payload, SpeexBand::Narrow),
            Ok(MAX_FRAMES_PER_PACKET)
        );
    }
}
