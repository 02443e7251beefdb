//! An AAC-LC encoder for telephone-band audio: what a G.711 call sounds like, published as the
//! AAC-LC that CDNs require, at a fraction of a general-purpose encoder's work.
//!
//! Call audio resampled to 48 kHz has nothing above 4 kHz, and the rate it is given (64 kbit/s,
//! ~1,360 bits per frame) is several times what those 170-odd spectral lines need. So the encoder
//! does only what every AAC-LC decoder must understand and that signal needs: long blocks with
//! the sine window (no block switching, TNS or psychoacoustic model), one scale factor for all
//! bands (quantization noise spread evenly, which at this rate lies below the G.711 call's own),
//! codebook 11 for every band that carries anything, and a rate loop that picks the finest
//! global step whose frame fits the bit budget. Bands above the call's band are not coded.
//!
//! Each frame is a raw `raw_data_block()` (ISO/IEC 14496-3 §4.4.2.1) holding one
//! `single_channel_element()`, as FLV carries it. It decodes to the input delayed by one frame
//! ([`DELAY_SAMPLES`]).

mod bits;
mod codebook;
mod mdct;

use bits::BitWriter;
use codebook::{BAND_OFFSETS, ESCAPE_CODEBOOK, MAX_MAGNITUDE, ZERO_CODEBOOK};
use mdct::{LINES, Mdct};

/// Samples between the input and the decoded output: one frame of MDCT overlap.
pub const DELAY_SAMPLES: u32 = LINES as u32;
/// An AAC channel never takes more than 6,144 bits per frame (the decoder input buffer the
/// standard requires per channel).
const MAX_CHANNEL_BITS: usize = 6144;
/// Scale factor bands of a long block at 44.1 and 48 kHz.
const BANDS: usize = BAND_OFFSETS.len() - 1;
/// The quantizer's rounding offset, as the standard's reference encoder uses it (plain rounding
/// would be 0.5; 0.4054 suits the |x|^¾ law).
const ROUNDING: f32 = 0.4054;
/// Element id, tag, global gain, ics_info, the three absent-tool flags and the end element.
const FIXED_BITS: usize = 3 + 4 + 8 + (1 + 2 + 1 + 6 + 1) + 3 + 3;
/// A section's codebook and its first length field (long windows: 4 + 5 bits).
const SECTION_BITS: usize = 4 + 5;
/// A section length field's escape value for long windows.
const SECTION_ESCAPE: usize = 31;
/// Scale factor of a band relative to the one before, all zero here: Huffman code "0".
const SAME_SCALE_FACTOR_BITS: usize = 1;

/// The sample rates whose long-window band layout [`BAND_OFFSETS`] is.
pub fn supports(sample_rate: u32) -> bool {
    matches!(sample_rate, 44_100 | 48_000)
}

/// One mono encoder.
pub struct SpeechEncoder {
    mdct: Mdct,
    previous: Vec<f32>,
    current: Vec<f32>,
    /// The coded spectral lines.
    lines: Vec<f32>,
    /// |X|^¾ of every coded line: what the quantizer scales.
    powered: Vec<f32>,
    /// The largest of `powered`: whether a step overflows is known before quantizing.
    peak_powered: f32,
    quantized: Vec<u16>,
    /// The gain `quantized` holds the lines at, if any.
    quantized_at: Option<u8>,
    /// The last frame's gain, where the search for the next one starts.
    last_gain: u8,
    /// Scale factor bands coded (those at or below the input's band).
    bands: usize,
    budget_bits: usize,
}

impl std::fmt::Debug for SpeechEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeechEncoder")
            .field("bands", &self.bands)
            .field("budget_bits", &self.budget_bits)
            .finish_non_exhaustive()
    }
}

impl SpeechEncoder {
    /// An encoder at `sample_rate` (44.1 or 48 kHz) for audio with nothing above `band_hz`,
    /// spending at most `bitrate` bits per second.
    pub fn new(sample_rate: u32, bitrate: u32, band_hz: u32) -> Option<Self> {
        if !supports(sample_rate) {
            return None;
        }
        let line_hz = |line: u16| u64::from(line) * u64::from(sample_rate) / (2 * LINES as u64);
        let bands = (1..BAND_OFFSETS.len())
            .find(|&band| line_hz(BAND_OFFSETS[band]) >= u64::from(band_hz))
            .unwrap_or(BAND_OFFSETS.len() - 1);
        let coded_lines = usize::from(BAND_OFFSETS[bands]);
        let per_frame = u64::from(bitrate) * LINES as u64 / u64::from(sample_rate);
        Some(SpeechEncoder {
            mdct: Mdct::default(),
            previous: vec![0.0; LINES],
            current: vec![0.0; LINES],
            lines: vec![0.0; coded_lines],
            powered: vec![0.0; coded_lines],
            peak_powered: 0.0,
            quantized: vec![0; coded_lines],
            quantized_at: None,
            last_gain: 100,
            bands,
            budget_bits: (per_frame as usize).clamp(FIXED_BITS + 8, MAX_CHANNEL_BITS),
        })
    }

    /// Encodes one frame of 1,024 samples into `out` (at least 768 bytes); returns the bytes
    /// written. Missing samples count as silence.
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        std::mem::swap(&mut self.previous, &mut self.current);
        let (given, missing) = self.current.split_at_mut(pcm.len().min(LINES));
        for (slot, &sample) in given.iter_mut().zip(pcm) {
            *slot = f32::from(sample);
        }
        missing.fill(0.0);
        self.mdct
            .forward(&self.previous, &self.current, &mut self.lines);
        for (powered, line) in self.powered.iter_mut().zip(&self.lines) {
            // |x|^¾ as two square roots: exact enough, a fraction of powf's cost, and a loop
            // the compiler turns into vector instructions.
            let root = line.abs().sqrt();
            *powered = root * root.sqrt();
        }
        self.peak_powered = self.powered.iter().fold(0.0, |peak, &p| peak.max(p));
        self.quantized_at = None;
        let gain = self.finest_fitting_gain();
        if self.quantized_at != Some(gain) {
            self.quantize_lines(gain);
        }
        self.last_gain = gain;
        self.write(gain, out)
    }

    fn fits(&mut self, gain: u8) -> bool {
        self.quantize(gain)
            .is_some_and(|bits| bits <= self.budget_bits)
    }

    /// The smallest global gain (finest step) whose frame fits the budget. Consecutive frames
    /// need similar gains, so the search gallops out from the last frame's and then bisects.
    fn finest_fitting_gain(&mut self) -> u8 {
        let start = self.last_gain;
        // Invariant once bracketed: `high` fits, everything below `low` does not.
        let (mut low, mut high);
        let mut step = 1u8;
        if self.fits(start) {
            high = start;
            loop {
                let Some(candidate) = high.checked_sub(step) else {
                    low = 0;
                    break;
                };
                if self.fits(candidate) {
                    high = candidate;
                    step = step.saturating_mul(2);
                } else {
                    low = candidate + 1;
                    break;
                }
            }
        } else {
            low = start + 1;
            loop {
                let candidate = low.saturating_add(step - 1);
                if candidate == u8::MAX || self.fits(candidate) {
                    high = candidate;
                    break;
                }
                low = candidate + 1;
                step = step.saturating_mul(2);
            }
        }
        while low < high {
            let middle = low + (high - low) / 2;
            if self.fits(middle) {
                high = middle;
            } else {
                low = middle + 1;
            }
        }
        low
    }

    /// Quantizes every coded line with step 2^((gain − 100) / 4) (one pass the compiler
    /// vectorizes); `false` if a line would exceed what AAC can carry.
    fn quantize_lines(&mut self, gain: u8) -> bool {
        let scale = (-0.1875 * (f32::from(gain) - 100.0)).exp2();
        if self.peak_powered * scale + ROUNDING >= f32::from(MAX_MAGNITUDE) + 1.0 {
            return false;
        }
        for (magnitude, &powered) in self.quantized.iter_mut().zip(&self.powered) {
            *magnitude = (powered * scale + ROUNDING) as u16;
        }
        self.quantized_at = Some(gain);
        true
    }

    /// Quantizes at `gain` and returns the frame's size in bits, or `None` if a line exceeds
    /// what AAC can carry.
    fn quantize(&mut self, gain: u8) -> Option<usize> {
        if !self.quantize_lines(gain) {
            return None;
        }
        let books = self.band_books();
        let books = &books[..self.bands];
        let mut bits = FIXED_BITS;
        bits += sections(books)
            .map(|(_, bands)| section_bits(bands))
            .sum::<usize>();
        for band in (0..books.len()).filter(|&band| books[band] != ZERO_CODEBOOK) {
            let pairs = self.quantized[band_lines(band)].chunks_exact(2);
            let band_bits: u32 = pairs
                .map(|pair| codebook::pair_bits(pair[0], pair[1]))
                .sum();
            bits += band_bits as usize + SAME_SCALE_FACTOR_BITS;
        }
        Some(bits.div_ceil(8) * 8)
    }

    /// Each coded band's codebook as the lines stand quantized: the zero codebook when all its
    /// lines are zero, codebook 11 otherwise. Bands past `bands` are left at zero.
    fn band_books(&self) -> [u8; BANDS] {
        let mut books = [ZERO_CODEBOOK; BANDS];
        for (band, book) in books.iter_mut().enumerate().take(self.bands) {
            if self.quantized[band_lines(band)]
                .iter()
                .any(|&line| line != 0)
            {
                *book = ESCAPE_CODEBOOK;
            }
        }
        books
    }

    /// Writes the frame quantized last (with `gain`).
    fn write(&self, gain: u8, out: &mut [u8]) -> usize {
        let books = self.band_books();
        // Trailing zero bands are not sent: max_sfb ends at the last band that carries lines.
        let max_band = books
            .iter()
            .rposition(|&book| book != ZERO_CODEBOOK)
            .map_or(0, |b| b + 1);
        let books = &books[..max_band];
        let coded = || (0..max_band).filter(|&band| books[band] != ZERO_CODEBOOK);
        let mut writer = BitWriter::new(out);
        writer.put(0, 3); // ID_SCE
        writer.put(0, 4); // element_instance_tag
        writer.put(u32::from(gain), 8); // global_gain
        writer.put(0, 1); // ics_reserved_bit
        writer.put(0, 2); // window_sequence: ONLY_LONG_SEQUENCE
        writer.put(0, 1); // window_shape: sine
        writer.put(max_band as u32, 6); // max_sfb
        writer.put(0, 1); // predictor_data_present
        // section_data(): runs of bands sharing a codebook.
        for (book, bands) in sections(books) {
            writer.put(u32::from(book), 4);
            let mut length = bands;
            while length >= SECTION_ESCAPE {
                writer.put(SECTION_ESCAPE as u32, 5);
                length -= SECTION_ESCAPE;
            }
            writer.put(length as u32, 5);
        }
        // scale_factor_data(): every coded band at the global gain.
        for _ in coded() {
            writer.put(0, SAME_SCALE_FACTOR_BITS as u32);
        }
        writer.put(0, 1); // pulse_data_present
        writer.put(0, 1); // tns_data_present
        writer.put(0, 1); // gain_control_data_present
        // spectral_data()
        for band in coded() {
            for pair in band_lines(band).step_by(2) {
                let (y, z) = (self.quantized[pair], self.quantized[pair + 1]);
                // The codeword and the signs of its nonzero values (1: negative) in one write.
                let (mut bits, mut len) = {
                    let codeword = codebook::pair(y, z);
                    (codeword.bits, codeword.len)
                };
                for (magnitude, line) in [(y, pair), (z, pair + 1)] {
                    if magnitude != 0 {
                        bits = (bits << 1) | u32::from(self.lines[line] < 0.0);
                        len += 1;
                    }
                }
                writer.put(bits, len);
                for magnitude in [y, z] {
                    if magnitude >= codebook::ESCAPE {
                        let escape = codebook::escape(magnitude);
                        writer.put(escape.bits, escape.len);
                    }
                }
            }
        }
        writer.put(7, 3); // ID_END
        debug_assert!(!writer.overflowed(), "frames are sized to fit");
        writer.finish()
    }
}

fn band_lines(band: usize) -> std::ops::Range<usize> {
    usize::from(BAND_OFFSETS[band])..usize::from(BAND_OFFSETS[band + 1])
}

/// The sections of `books`: each run of bands sharing a codebook, as (codebook, bands).
fn sections(books: &[u8]) -> impl Iterator<Item = (u8, usize)> + '_ {
    books.chunk_by(|a, b| a == b).map(|run| (run[0], run.len()))
}

/// A section's codebook and length fields: one more 5-bit field per escape.
fn section_bits(bands: usize) -> usize {
    SECTION_BITS + 5 * (bands / SECTION_ESCAPE)
}

#[cfg(test)]
mod tests;
