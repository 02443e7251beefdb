//! Audio codecs of the call and their decoders to 16-bit mono PCM.
//!
//! G.711 is ours ([`super::g711`]); G.722 (ITU-T G.722, RFC 3551 §4.5.2: 16 kHz audio on an
//! 8 kHz RTP clock) comes from the pure-Rust `audio-codec` crate and Opus (always a 48 kHz RTP
//! clock) from `opus-rs` through [`super::opus`]. Speex (RFC 5574, narrowband, wideband and ultra-wideband)
//! is decoded by libspeex through [`super::speex`].
//!
//! A third-party decoder sees network input, so a panic inside it is caught, counted as a
//! decode error and answered with a fresh decoder rather than taking the call down.

use std::panic::{AssertUnwindSafe, catch_unwind};

use audio_codec::Decoder as _;
use audio_codec::g722::G722Decoder;

use super::g711::{self, G711Law};
use super::opus::OpusMonoDecoder;
use super::speex::{SpeexBand, SpeexDecoder};
use crate::frame::AudioFormat;

/// Audio codecs the call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    G711(G711Law),
    G722,
    Opus,
    /// Speex at this RTP clock rate (8000 narrowband, 16000 wideband).
    Speex {
        clock_rate: u32,
    },
}

impl AudioCodec {
    pub fn from_name(name: &str, clock_rate: u32) -> Option<Self> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(AudioCodec::G711(G711Law::MuLaw)),
            "PCMA" => Some(AudioCodec::G711(G711Law::ALaw)),
            "G722" => Some(AudioCodec::G722),
            "OPUS" => Some(AudioCodec::Opus),
            "SPEEX" => Some(AudioCodec::Speex { clock_rate }),
            _ => None,
        }
    }

    /// The FLV format for `audio_codec = "copy"`, if FLV can carry it (Speex only at 16 kHz).
    pub fn copy_format(self) -> Option<AudioFormat> {
        match self {
            AudioCodec::G711(G711Law::MuLaw) => Some(AudioFormat::Pcmu),
            AudioCodec::G711(G711Law::ALaw) => Some(AudioFormat::Pcma),
            AudioCodec::Speex { clock_rate: 16_000 } => Some(AudioFormat::Speex),
            _ => None,
        }
    }

    /// The rate of the decoded PCM, `None` if we do not decode it.
    pub fn pcm_rate(self) -> Option<u32> {
        match self {
            AudioCodec::G711(_) => Some(8000),
            AudioCodec::G722 => Some(16_000),
            AudioCodec::Opus => Some(48_000),
            AudioCodec::Speex { clock_rate } => {
                SpeexBand::from_clock_rate(clock_rate).map(SpeexBand::sample_rate)
            }
        }
    }
}

/// A decoder for one stream.
pub enum PcmDecoder {
    G711(G711Law),
    G722(Box<G722Decoder>),
    Opus(Box<OpusMonoDecoder>),
    Speex(SpeexDecoder),
}

impl std::fmt::Debug for PcmDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PcmDecoder::G711(law) => write!(f, "G711({law:?})"),
            PcmDecoder::G722(_) => f.write_str("G722"),
            PcmDecoder::Opus(_) => f.write_str("Opus"),
            PcmDecoder::Speex(decoder) => write!(f, "Speex({:?})", decoder.band()),
        }
    }
}

impl PcmDecoder {
    pub fn new(codec: AudioCodec) -> Option<Self> {
        match codec {
            AudioCodec::G711(law) => Some(PcmDecoder::G711(law)),
            AudioCodec::G722 => Some(PcmDecoder::G722(Box::default())),
            AudioCodec::Opus => Some(PcmDecoder::Opus(Box::default())),
            AudioCodec::Speex { clock_rate } => SpeexBand::from_clock_rate(clock_rate)
                .map(|band| PcmDecoder::Speex(SpeexDecoder::new(band))),
        }
    }

    /// Decodes one RTP payload, replacing `out`'s content with mono PCM. Returns false if the
    /// payload could not be decoded.
    pub fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> bool {
        out.clear();
        match self {
            PcmDecoder::G711(law) => {
                g711::decode(*law, payload, out);
                true
            }
            PcmDecoder::G722(decoder) => {
                // Two samples per byte at 64 kbit/s; larger buffers never hurt.
                out.resize(payload.len() * 2, 0);
                let decoded = guarded(|| decoder.decode_into(payload, out));
                match decoded {
                    Some(Ok(n)) => {
                        out.truncate(n);
                        true
                    }
                    Some(Err(_)) => false,
                    None => {
                        **decoder = G722Decoder::default();
                        false
                    }
                }
            }
            PcmDecoder::Opus(decoder) => match guarded(|| decoder.decode(payload, out)) {
                Some(decoded) => decoded,
                None => {
                    **decoder = OpusMonoDecoder::default();
                    false
                }
            },
            // libspeex reports corrupt input by return code; it does not unwind.
            PcmDecoder::Speex(decoder) => decoder.decode(payload, out).is_ok(),
        }
    }
}

/// Runs a third-party decoder, turning a panic into `None`.
fn guarded<T>(decode: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(decode)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use audio_codec::Encoder as _;
    use audio_codec::g722::G722Encoder;

    fn tone(rate: u32, samples: usize) -> Vec<i16> {
        (0..samples)
            .map(|n| {
                (8000.0 * (n as f64 * 440.0 * std::f64::consts::TAU / f64::from(rate)).sin()) as i16
            })
            .collect()
    }

    fn energy(pcm: &[i16]) -> f64 {
        pcm.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / pcm.len().max(1) as f64
    }

    #[test]
    fn names_and_copy_formats() {
        assert_eq!(
            AudioCodec::from_name("pcmu", 8000),
            Some(AudioCodec::G711(G711Law::MuLaw))
        );
        assert_eq!(
            AudioCodec::from_name("opus", 48_000).and_then(AudioCodec::pcm_rate),
            Some(48_000)
        );
        let wideband = AudioCodec::from_name("speex", 16_000).unwrap();
        assert_eq!(wideband.copy_format(), Some(AudioFormat::Speex));
        assert_eq!(AudioCodec::Speex { clock_rate: 8000 }.copy_format(), None);
        assert_eq!(AudioCodec::from_name("G729", 8000), None);
    }

    #[test]
    fn g722_decodes_what_its_encoder_made() {
        let mut encoder = G722Encoder::new();
        let mut decoder = PcmDecoder::new(AudioCodec::G722).unwrap();
        let mut out = Vec::new();
        let input = tone(16_000, 320 * 10);
        let mut decoded = Vec::new();
        for frame in input.chunks(320) {
            let payload = encoder.encode(frame);
            assert_eq!(payload.len(), 160);
            assert!(decoder.decode(&payload, &mut out));
            decoded.extend_from_slice(&out);
        }
        assert_eq!(decoded.len(), input.len());
        let ratio = energy(&decoded[640..]) / energy(&input[640..]);
        assert!((0.5..2.0).contains(&ratio), "{ratio}");
    }
}
