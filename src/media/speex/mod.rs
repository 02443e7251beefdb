//! Speex decoding (RFC 5574): narrowband, wideband and ultra-wideband, to 16-bit PCM.
//!
//! [`frames`] walks a payload's frames in safe Rust and rejects modes that do not exist;
//! [`ffi`] hands the well-formed frames to libspeex, the reference decoder.

mod ffi;
mod frames;

use thiserror::Error;

pub use ffi::SpeexDecoder;
#[cfg(test)]
pub(crate) use ffi::test_encoder::SpeexEncoder;
pub use frames::count_frames;

/// The buffer `speex_bits_init` allocates (libspeex `MAX_CHARS_PER_FRAME`); larger payloads
/// would make libspeex reallocate, and no sane packet is that large.
pub const MAX_PAYLOAD: usize = 2000;

/// 20 frames of 20 ms: more than any packetisation a phone uses (RFC 5574 leaves it open).
pub const MAX_FRAMES_PER_PACKET: usize = 20;

/// Speex's three modes, narrowest first; each decodes to PCM at its own rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpeexBand {
    /// 8 kHz, 160 samples per frame.
    Narrow,
    /// 16 kHz, 320 samples per frame.
    Wide,
    /// 32 kHz, 640 samples per frame.
    UltraWide,
}

impl SpeexBand {
    /// The band an RTP clock rate stands for (RFC 5574 §5: the rate is the sampling rate).
    pub fn from_clock_rate(clock_rate: u32) -> Option<Self> {
        match clock_rate {
            8000 => Some(SpeexBand::Narrow),
            16_000 => Some(SpeexBand::Wide),
            32_000 => Some(SpeexBand::UltraWide),
            _ => None,
        }
    }

    pub fn sample_rate(self) -> u32 {
        match self {
            SpeexBand::Narrow => 8000,
            SpeexBand::Wide => 16_000,
            SpeexBand::UltraWide => 32_000,
        }
    }

    pub(super) fn mode_id(self) -> std::ffi::c_int {
        match self {
            SpeexBand::Narrow => ffi::sys::SPEEX_MODEID_NB,
            SpeexBand::Wide => ffi::sys::SPEEX_MODEID_WB,
            SpeexBand::UltraWide => ffi::sys::SPEEX_MODEID_UWB,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum SpeexError {
    #[error("Speex payload of {0} bytes is larger than {MAX_PAYLOAD}")]
    TooLarge(usize),
    #[error("Speex payload holds no complete frame")]
    NoFrame,
    #[error("Speex payload is corrupt")]
    Corrupt,
    /// libspeex refused a frame the walk found well-formed: a disagreement the tests look for.
    #[error("libspeex refused a Speex frame")]
    Refused,
}
