//! Audio silence for the output when the call gives none: AAC-LC frames for `aac` targets (one
//! pre-encoded frame repeated, so no encoder runs per stream) and G.711 for `copy` targets.

use std::sync::OnceLock;

use bytes::Bytes;

use crate::frame::AudioFormat;
use crate::media::aac::{AacConfig, AacTrack, FRAME_SAMPLES};

/// G.711 frames of silence are this long (the packet time SIP peers use).
pub const G711_FRAME_MS: u32 = 20;

/// One repeatable frame of silence in some format, with its duration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SilenceFrame {
    pub format: AudioFormat,
    pub data: Bytes,
    /// Duration in samples at `sample_rate` (exact, so a long run of silence does not drift).
    pub samples: u32,
    pub sample_rate: u32,
}

impl SilenceFrame {
    /// One AAC-LC access unit of digital silence from our own encoder at the media path's
    /// default settings (the same AudioSpecificConfig the call's audio uses), encoded once.
    pub fn aac() -> Option<SilenceFrame> {
        static FRAME: OnceLock<Option<Bytes>> = OnceLock::new();
        let config = AacConfig::default();
        // Encoded at a low bit rate (the AudioSpecificConfig does not name one), so the frame
        // is small; it decodes with the same decoder settings as the call's audio.
        let data = FRAME
            .get_or_init(|| {
                encode_aac_silence(AacConfig {
                    bitrate: 16_000,
                    ..config
                })
            })
            .clone()?;
        Some(SilenceFrame {
            format: AudioFormat::Aac,
            data,
            samples: FRAME_SAMPLES as u32,
            sample_rate: config.sample_rate,
        })
    }

    /// 20 ms of G.711 silence: µ-law 0xFF, A-law 0xD5 (the codes for zero). Speex has no fixed
    /// silence frame we could repeat: `None`.
    pub fn g711(format: AudioFormat) -> Option<SilenceFrame> {
        let byte = match format {
            AudioFormat::Pcmu => 0xff,
            AudioFormat::Pcma => 0xd5,
            AudioFormat::Aac | AudioFormat::Speex => return None,
        };
        let samples = 8 * G711_FRAME_MS;
        Some(SilenceFrame {
            format,
            data: Bytes::from(vec![byte; samples as usize]),
            samples,
            sample_rate: 8000,
        })
    }
}

/// Encodes zeros until the encoder is past its start-up and returns one steady frame.
fn encode_aac_silence(config: AacConfig) -> Option<Bytes> {
    let mut track = AacTrack::new(config).ok()?;
    let mut last = None;
    let zeros = vec![0i16; FRAME_SAMPLES];
    let frame_ms = (FRAME_SAMPLES as i64 * 1000) / i64::from(config.sample_rate);
    for i in 0..8 {
        track
            .push_pcm(i * frame_ms, &zeros, &mut |frame| last = Some(frame.data))
            .ok()?;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_silence_is_a_small_frame_of_our_encoder() {
        let frame = SilenceFrame::aac().expect("FDK encodes silence");
        assert!(
            !frame.data.is_empty() && frame.data.len() <= 48,
            "{}",
            frame.data.len()
        );
        assert_eq!((frame.samples, frame.sample_rate), (1024, 48_000));
    }

    #[test]
    fn g711_silence_is_the_zero_code() {
        let pcmu = SilenceFrame::g711(AudioFormat::Pcmu).unwrap();
        assert_eq!(pcmu.data.len(), 160);
        assert!(pcmu.data.iter().all(|b| *b == 0xff));
        assert!(SilenceFrame::g711(AudioFormat::Speex).is_none());
    }
}
