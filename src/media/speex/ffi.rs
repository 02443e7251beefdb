//! libspeex, compiled by build.rs from `vendor/libspeex` and declared here by hand (the few
//! functions and the one struct we use, copied from libspeex 1.2.1's `speex.h` and
//! `speex_bits.h`), so that building needs a C compiler and no libclang.
//!
//! This is the one module allowed `unsafe`: the FFI to a C decoder. The invariants it relies on
//! are few and local:
//! - `state` comes from `speex_decoder_init` and is freed once, in `Drop`; `bits` from
//!   `speex_bits_init`, freed once, in `Drop`. Neither is shared, so moving the owner to another
//!   thread is sound (`Send`). Every FFI call takes `&mut self`; through `&self` only plain
//!   Rust fields are read, so sharing references is sound too (`Sync`).
//! - `SpeexBits` holds a pointer to its own heap buffer, not to itself, so it may move.
//! - Input is capped at the buffer `speex_bits_init` allocates, so `speex_bits_read_from` never
//!   reallocates; output space for a whole frame is reserved before each `speex_decode_int`.
//! - Only frames [`super::frames`] found well-formed are decoded, so libspeex never meets a
//!   mode it would complain about on stderr.
//! - The declarations in [`sys`] match the C headers: `SpeexBits` is `#[repr(C)]` with the
//!   header's fields in the header's order and types, which a test compares with the C
//!   compiler's own `sizeof`/`offsetof` (`src/media/speex/layout.c`); every function takes and
//!   returns exactly the C types its prototype names.

#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void};
use std::mem::MaybeUninit;
use std::ptr::NonNull;

/// The part of libspeex's C API that sipcast calls, declared by hand.
pub(super) mod sys {
    use std::ffi::{c_char, c_int, c_void};

    /// `SPEEX_MODEID_*` (speex.h): the argument of `speex_lib_get_mode`.
    pub const SPEEX_MODEID_NB: c_int = 0;
    pub const SPEEX_MODEID_WB: c_int = 1;
    pub const SPEEX_MODEID_UWB: c_int = 2;
    /// `speex_*_ctl` requests (speex.h); each reads or writes one `int`.
    pub const SPEEX_GET_FRAME_SIZE: c_int = 3;
    #[cfg(test)]
    pub const SPEEX_SET_QUALITY: c_int = 4;
    #[cfg(test)]
    pub const SPEEX_SET_VBR: c_int = 12;

    /// `SpeexBits` from speex_bits.h, field for field.
    #[repr(C)]
    #[derive(Debug)]
    pub struct SpeexBits {
        /// "raw" data
        pub chars: *mut c_char,
        /// Total number of bits stored in the stream
        pub nb_bits: c_int,
        /// Position of the byte "cursor"
        pub char_ptr: c_int,
        /// Position of the bit "cursor" within the current char
        pub bit_ptr: c_int,
        /// Does the struct "own" the "raw" buffer (member "chars")
        pub owner: c_int,
        /// Set to one if we try to read past the valid data
        pub overflow: c_int,
        /// Allocated size for buffer
        pub buf_size: c_int,
        pub reserved1: c_int,
        pub reserved2: *mut c_void,
    }

    /// `SpeexMode` is opaque to us: only pointers to libspeex's static modes pass through.
    #[repr(C)]
    pub struct SpeexMode {
        _private: [u8; 0],
    }

    unsafe extern "C" {
        pub fn speex_lib_get_mode(mode: c_int) -> *const SpeexMode;
        pub fn speex_decoder_init(mode: *const SpeexMode) -> *mut c_void;
        pub fn speex_decoder_ctl(state: *mut c_void, request: c_int, ptr: *mut c_void) -> c_int;
        pub fn speex_decode_int(state: *mut c_void, bits: *mut SpeexBits, out: *mut i16) -> c_int;
        pub fn speex_decoder_destroy(state: *mut c_void);

        pub fn speex_bits_init(bits: *mut SpeexBits);
        pub fn speex_bits_read_from(bits: *mut SpeexBits, bytes: *const c_char, len: c_int);
        pub fn speex_bits_remaining(bits: *mut SpeexBits) -> c_int;
        pub fn speex_bits_destroy(bits: *mut SpeexBits);

        /// Fills `out` with sizeof, alignof and the offset of each field of `SpeexBits`, as the
        /// C compiler lays it out (src/media/speex/layout.c).
        #[cfg(test)]
        pub fn sipcast_speex_bits_layout(out: *mut usize);
    }

    // The encoder side, for tests only (what a phone would send).
    #[cfg(test)]
    unsafe extern "C" {
        pub fn speex_encoder_init(mode: *const SpeexMode) -> *mut c_void;
        pub fn speex_encoder_ctl(state: *mut c_void, request: c_int, ptr: *mut c_void) -> c_int;
        pub fn speex_encode_int(state: *mut c_void, input: *mut i16, bits: *mut SpeexBits)
        -> c_int;
        pub fn speex_encoder_destroy(state: *mut c_void);
        pub fn speex_bits_reset(bits: *mut SpeexBits);
        pub fn speex_bits_insert_terminator(bits: *mut SpeexBits);
        pub fn speex_bits_write(bits: *mut SpeexBits, bytes: *mut c_char, max_len: c_int) -> c_int;
    }
}

use super::frames::count_frames;
use super::{MAX_PAYLOAD, SpeexBand, SpeexError};

/// One stream's decoder state.
pub struct SpeexDecoder {
    state: NonNull<c_void>,
    bits: sys::SpeexBits,
    band: SpeexBand,
    frame_size: usize,
}

// SAFETY: the decoder state and the bit buffer are owned by this value alone (see the module
// documentation); libspeex keeps no thread-local or global mutable state for them.
unsafe impl Send for SpeexDecoder {}
// SAFETY: `&self` methods read only `band` and `frame_size`; the C state is reached through
// `&mut self` alone.
unsafe impl Sync for SpeexDecoder {}

impl std::fmt::Debug for SpeexDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeexDecoder")
            .field("band", &self.band)
            .field("frame_size", &self.frame_size)
            .finish_non_exhaustive()
    }
}

impl SpeexDecoder {
    pub fn new(band: SpeexBand) -> Self {
        // SAFETY: `speex_lib_get_mode` returns a pointer to a static mode for the three valid
        // ids; `speex_decoder_init` allocates a state for it (checked for null below).
        let state = unsafe { sys::speex_decoder_init(sys::speex_lib_get_mode(band.mode_id())) };
        let state = NonNull::new(state).expect("libspeex could not allocate a decoder");
        let mut frame_size: c_int = 0;
        // SAFETY: SPEEX_GET_FRAME_SIZE writes one c_int through the pointer.
        unsafe {
            sys::speex_decoder_ctl(
                state.as_ptr(),
                sys::SPEEX_GET_FRAME_SIZE,
                (&raw mut frame_size).cast(),
            );
        }
        SpeexDecoder {
            state,
            bits: new_bits(),
            band,
            frame_size: checked_frame_size(band, frame_size),
        }
    }

    pub fn band(&self) -> SpeexBand {
        self.band
    }

    /// Samples per decoded frame (20 ms).
    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    /// Decodes every frame of one RTP payload, appending PCM to `out`. Returns the number of
    /// frames decoded; on error, `out` keeps the frames decoded before it.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, SpeexError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(SpeexError::TooLarge(payload.len()));
        }
        let frames = count_frames(payload, self.band)?;
        if frames == 0 {
            return Err(SpeexError::NoFrame);
        }
        let bits = &raw mut self.bits;
        // SAFETY: `payload` is valid for its length, which fits the buffer (no reallocation).
        unsafe {
            sys::speex_bits_read_from(
                bits,
                payload.as_ptr().cast::<c_char>(),
                payload.len() as c_int,
            )
        };
        for _ in 0..frames {
            let start = out.len();
            out.resize(start + self.frame_size, 0);
            // SAFETY: `out[start..]` has room for exactly one frame, which is what
            // `speex_decode_int` writes; `state` and `bits` are live and ours.
            let status = unsafe {
                sys::speex_decode_int(self.state.as_ptr(), bits, out[start..].as_mut_ptr())
            };
            if status != 0 || self.remaining_bits() < 0 {
                out.truncate(start);
                return Err(SpeexError::Refused);
            }
        }
        Ok(frames)
    }

    /// Bits left to read, negative once the decoder read past the end.
    fn remaining_bits(&mut self) -> c_int {
        // SAFETY: `bits` is initialised and ours.
        unsafe { sys::speex_bits_remaining(&raw mut self.bits) }
    }
}

/// The frame size libspeex reported, checked against the band's 20 ms: `decode` reserves
/// exactly this much for each `speex_decode_int`, so it must be what libspeex writes.
fn checked_frame_size(band: SpeexBand, reported: c_int) -> usize {
    let expected = band.sample_rate() as usize / 50;
    assert_eq!(
        usize::try_from(reported).ok(),
        Some(expected),
        "{band:?} frame size"
    );
    expected
}

/// A bit buffer owning its heap storage; free it with `speex_bits_destroy`.
fn new_bits() -> sys::SpeexBits {
    let mut bits = MaybeUninit::<sys::SpeexBits>::zeroed();
    // SAFETY: all-zero is a valid `SpeexBits` (null buffer, zero sizes), so the struct is
    // initialised even if `speex_bits_init` fails to allocate and returns early.
    let bits = unsafe {
        sys::speex_bits_init(bits.as_mut_ptr());
        bits.assume_init()
    };
    assert!(
        !bits.chars.is_null(),
        "libspeex could not allocate a bit buffer"
    );
    bits
}

impl Drop for SpeexDecoder {
    fn drop(&mut self) {
        // SAFETY: both were initialised in `new` and are freed exactly once, here.
        unsafe {
            sys::speex_decoder_destroy(self.state.as_ptr());
            sys::speex_bits_destroy(&raw mut self.bits);
        }
    }
}

/// A Speex encoder for tests: what a phone would send.
#[cfg(test)]
pub(crate) mod test_encoder {
    use super::*;

    pub struct SpeexEncoder {
        state: NonNull<c_void>,
        bits: sys::SpeexBits,
        frame_size: usize,
    }

    impl SpeexEncoder {
        pub fn new(band: SpeexBand) -> Self {
            Self::with_quality(band, 8, false)
        }

        /// `quality` 0..=10 picks the submodes; `vbr` lets them change frame by frame.
        pub fn with_quality(band: SpeexBand, quality: c_int, vbr: bool) -> Self {
            // SAFETY: as for the decoder.
            let state = unsafe { sys::speex_encoder_init(sys::speex_lib_get_mode(band.mode_id())) };
            let state = NonNull::new(state).unwrap();
            let mut frame_size: c_int = 0;
            // SAFETY: each ctl reads or writes one c_int.
            unsafe {
                sys::speex_encoder_ctl(
                    state.as_ptr(),
                    sys::SPEEX_GET_FRAME_SIZE,
                    (&raw mut frame_size).cast(),
                );
                let mut quality = quality;
                let mut vbr = c_int::from(vbr);
                sys::speex_encoder_ctl(
                    state.as_ptr(),
                    sys::SPEEX_SET_QUALITY,
                    (&raw mut quality).cast(),
                );
                sys::speex_encoder_ctl(state.as_ptr(), sys::SPEEX_SET_VBR, (&raw mut vbr).cast());
            }
            SpeexEncoder {
                state,
                bits: new_bits(),
                frame_size: frame_size as usize,
            }
        }

        pub fn frame_size(&self) -> usize {
            self.frame_size
        }

        /// Encodes whole frames of `pcm` into one payload, padded as RFC 5574 says.
        pub fn encode(&mut self, pcm: &[i16]) -> Vec<u8> {
            assert_eq!(pcm.len() % self.frame_size, 0);
            let mut frame = pcm.to_vec();
            let mut payload = vec![0u8; MAX_PAYLOAD];
            // SAFETY: each call reads one frame from `frame`; the write is bounded by `payload`.
            unsafe {
                sys::speex_bits_reset(&raw mut self.bits);
                for chunk in frame.chunks_exact_mut(self.frame_size) {
                    sys::speex_encode_int(
                        self.state.as_ptr(),
                        chunk.as_mut_ptr(),
                        &raw mut self.bits,
                    );
                }
                sys::speex_bits_insert_terminator(&raw mut self.bits);
                let n = sys::speex_bits_write(
                    &raw mut self.bits,
                    payload.as_mut_ptr().cast(),
                    payload.len() as c_int,
                );
                payload.truncate(n as usize);
            }
            payload
        }
    }

    impl Drop for SpeexEncoder {
        fn drop(&mut self) {
            // SAFETY: freed once.
            unsafe {
                sys::speex_encoder_destroy(self.state.as_ptr());
                sys::speex_bits_destroy(&raw mut self.bits);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_encoder::SpeexEncoder;
    use super::*;

    fn tone(rate: u32, hz: f64, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                (8000.0 * (n as f64 * hz * std::f64::consts::TAU / f64::from(rate)).sin()) as i16
            })
            .collect()
    }

    /// Power of `hz` in `pcm` (Goertzel), normalised by length.
    fn power_at(pcm: &[i16], rate: u32, hz: f64) -> f64 {
        let w = std::f64::consts::TAU * hz / f64::from(rate);
        let (mut s1, mut s2) = (0.0, 0.0);
        for &x in pcm {
            let s = f64::from(x) + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        (s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2) / (pcm.len() as f64).powi(2)
    }

    fn round_trip(band: SpeexBand, frames_per_packet: usize) -> Vec<i16> {
        let rate = band.sample_rate();
        let mut encoder = SpeexEncoder::new(band);
        let mut decoder = SpeexDecoder::new(band);
        let per_packet = encoder.frame_size() * frames_per_packet;
        let input = tone(rate, 440.0, rate as usize);
        let mut decoded = Vec::new();
        for chunk in input.chunks_exact(per_packet) {
            let payload = encoder.encode(chunk);
            assert_eq!(
                decoder.decode(&payload, &mut decoded),
                Ok(frames_per_packet)
            );
        }
        assert_eq!(decoded.len(), input.len() / per_packet * per_packet);
        decoded
    }

    #[test]
    fn every_band_decodes_a_tone_it_was_given() {
        for band in [SpeexBand::Narrow, SpeexBand::Wide, SpeexBand::UltraWide] {
            let rate = band.sample_rate();
            let decoded = round_trip(band, 1);
            let settled = &decoded[decoded.len() / 4..];
            let tone = power_at(settled, rate, 440.0);
            let elsewhere = power_at(settled, rate, 1250.0);
            assert!(tone > 100.0 * elsewhere, "{band:?}: {tone} vs {elsewhere}");
            assert!(tone > 1.0e5, "{band:?}: the tone is there ({tone})");
        }
    }

    /// Voice-like input: a gliding tone with bursts, so VBR visits many submodes.
    fn speech_like(rate: u32, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                let t = n as f64 / f64::from(rate);
                let envelope = if (t * 3.0).fract() < 0.6 { 1.0 } else { 0.02 };
                let hz = 200.0 + 600.0 * (t * 0.7).fract();
                (9000.0 * envelope * (t * hz * std::f64::consts::TAU).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn the_frame_walk_agrees_with_the_encoder_at_every_quality() {
        let bands = [SpeexBand::Narrow, SpeexBand::Wide, SpeexBand::UltraWide];
        for stream_band in bands {
            let input = speech_like(
                stream_band.sample_rate(),
                stream_band.sample_rate() as usize,
            );
            for quality in 0..=10 {
                for vbr in [false, true] {
                    let mut encoder = SpeexEncoder::with_quality(stream_band, quality, vbr);
                    let frame = encoder.frame_size();
                    // Decoders of the stream's band and above (absent layers are fine). Lower
                    // bands skip layers, which libspeex gets wrong for submode 0 layers.
                    let mut decoders: Vec<_> = bands
                        .into_iter()
                        .filter(|&band| band >= stream_band)
                        .map(SpeexDecoder::new)
                        .collect();
                    for (i, chunk) in input.chunks_exact(frame * 2).enumerate() {
                        let per_packet = 1 + i % 2;
                        let payload = encoder.encode(&chunk[..frame * per_packet]);
                        for decoder in &mut decoders {
                            let mut out = Vec::new();
                            let case = (stream_band, decoder.band(), quality, vbr, i);
                            assert_eq!(
                                decoder.decode(&payload, &mut out),
                                Ok(per_packet),
                                "{case:?}"
                            );
                            assert_eq!(out.len(), per_packet * decoder.frame_size(), "{case:?}");
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn libspeex_accepts_every_frame_the_walk_accepts(
            payload in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            for band in [SpeexBand::Narrow, SpeexBand::Wide, SpeexBand::UltraWide] {
                let mut decoder = SpeexDecoder::new(band);
                let mut out = Vec::new();
                let result = decoder.decode(&payload, &mut out);
                proptest::prop_assert_ne!(result, Err(SpeexError::Refused));
                let frames = result.unwrap_or(0);
                proptest::prop_assert_eq!(out.len(), frames * decoder.frame_size());
            }
        }
    }

    #[test]
    fn speex_bits_is_laid_out_as_the_c_header_says() {
        let mut c = [0usize; 11];
        // SAFETY: the probe writes exactly 11 `size_t`s, which is `usize` on every target Rust
        // supports.
        unsafe { sys::sipcast_speex_bits_layout(c.as_mut_ptr()) };
        let rust = [
            std::mem::size_of::<sys::SpeexBits>(),
            std::mem::align_of::<sys::SpeexBits>(),
            std::mem::offset_of!(sys::SpeexBits, chars),
            std::mem::offset_of!(sys::SpeexBits, nb_bits),
            std::mem::offset_of!(sys::SpeexBits, char_ptr),
            std::mem::offset_of!(sys::SpeexBits, bit_ptr),
            std::mem::offset_of!(sys::SpeexBits, owner),
            std::mem::offset_of!(sys::SpeexBits, overflow),
            std::mem::offset_of!(sys::SpeexBits, buf_size),
            std::mem::offset_of!(sys::SpeexBits, reserved1),
            std::mem::offset_of!(sys::SpeexBits, reserved2),
        ];
        assert_eq!(rust, c);
    }

    #[test]
    fn several_frames_in_one_packet_all_decode() {
        let decoded = round_trip(SpeexBand::Wide, 3);
        assert_eq!(decoded.len(), 16_000 / 960 * 960);
    }

    #[test]
    fn a_narrowband_decoder_takes_the_low_band_of_wideband_frames() {
        let mut encoder = SpeexEncoder::new(SpeexBand::Wide);
        let mut decoder = SpeexDecoder::new(SpeexBand::Narrow);
        let payload = encoder.encode(&tone(16_000, 440.0, 320));
        let mut out = Vec::new();
        assert_eq!(decoder.decode(&payload, &mut out), Ok(1));
        assert_eq!(out.len(), 160);
    }

    #[test]
    fn bad_payloads_are_errors_not_crashes() {
        let mut decoder = SpeexDecoder::new(SpeexBand::Wide);
        let mut out = Vec::new();
        assert_eq!(decoder.decode(&[], &mut out), Err(SpeexError::NoFrame));
        assert_eq!(decoder.decode(&[0x7f], &mut out), Err(SpeexError::NoFrame));
        assert_eq!(
            decoder.decode(&[0; MAX_PAYLOAD + 1], &mut out),
            Err(SpeexError::TooLarge(MAX_PAYLOAD + 1))
        );
        // Narrowband mode 9..=12 does not exist.
        assert_eq!(
            decoder.decode(&[0b0100_1000; 40], &mut out),
            Err(SpeexError::Corrupt)
        );
        for seed in 0..200u32 {
            let garbage: Vec<u8> = (0..(seed % 90))
                .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) as u8)
                .collect();
            out.clear();
            let _ = decoder.decode(&garbage, &mut out);
            assert!(out.len() <= super::super::MAX_FRAMES_PER_PACKET * 320);
            assert_eq!(out.len() % 320, 0);
        }
        // Still decodes real frames afterwards.
        let payload = SpeexEncoder::new(SpeexBand::Wide).encode(&tone(16_000, 440.0, 320));
        assert_eq!(decoder.decode(&payload, &mut out), Ok(1));
    }
}
