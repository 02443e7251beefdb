//! AAC-LC encoding (ISO/IEC 14496-3), raw access units for FLV, and the AudioSpecificConfig
//! (§1.6.2.1) that FLV sends as the AAC sequence header.
//!
//! Telephone-band calls (nothing above 4 kHz: G.711, narrowband Speex) are encoded by
//! [`super::speech_aac`], made for exactly that signal at a fraction of the cost; everything
//! wider by the Fraunhofer FDK encoder ([`super::fdk`]).
//!
//! [`AacTrack`] keeps the AAC stream continuous on the publish timeline: PCM is timestamped when
//! it arrives, gaps (muted or missing audio) are filled with encoded silence, and output access
//! units are stamped from a sample counter so their spacing is exact (1024 samples each).

use bytes::Bytes;

use super::fdk::{EncoderSettings, FdkEncoder};
use super::speech_aac::{self, SpeechEncoder};
use crate::frame::PayloadArena;
use thiserror::Error;

/// Samples per AAC-LC access unit.
pub const FRAME_SAMPLES: usize = 1024;
/// A gap in the incoming audio longer than this is filled with silence.
const GAP_TOLERANCE_MS: i64 = 60;
/// Access units are carved from buffers of this size (a few seconds of them).
const PAYLOAD_BLOCK: usize = 16 * 1024;
/// Never synthesise more silence than this at once; beyond it the timeline jumps instead.
const MAX_FILL_MS: i64 = 10_000;

#[derive(Debug, Error)]
pub enum AacError {
    #[error("unsupported AAC sample rate {0} Hz (use 44100 or 48000)")]
    SampleRate(u32),
    #[error("AAC encoder: {0}")]
    Encoder(String),
}

/// AAC output settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacConfig {
    pub sample_rate: u32,
    pub bitrate: u32,
}

impl Default for AacConfig {
    fn default() -> Self {
        AacConfig {
            sample_rate: 48_000,
            bitrate: 64_000,
        }
    }
}

/// The sampling frequency index of ISO/IEC 14496-3 Table 1.18.
fn frequency_index(sample_rate: u32) -> Option<u8> {
    match sample_rate {
        48_000 => Some(3),
        44_100 => Some(4),
        32_000 => Some(5),
        24_000 => Some(6),
        22_050 => Some(7),
        16_000 => Some(8),
        _ => None,
    }
}

/// AudioSpecificConfig for mono AAC-LC: objectType 2, frequency index, channelConfiguration 1,
/// then GASpecificConfig's three zero flags.
pub fn audio_specific_config(sample_rate: u32) -> Result<[u8; 2], AacError> {
    let index = frequency_index(sample_rate).ok_or(AacError::SampleRate(sample_rate))?;
    let bits: u16 = (2 << 11) | (u16::from(index) << 7) | (1 << 3);
    Ok(bits.to_be_bytes())
}

/// The widest input band the speech encoder takes: a telephone call's.
const SPEECH_BAND_HZ: u32 = 4_000;

/// The encoder behind a track.
enum Encoder {
    Speech(Box<SpeechEncoder>),
    Fdk(FdkEncoder),
}

impl Encoder {
    fn for_input(config: AacConfig, input_band_hz: Option<u32>) -> Result<Self, AacError> {
        if let Some(band) = input_band_hz.filter(|&band| band <= SPEECH_BAND_HZ)
            && let Some(speech) = SpeechEncoder::new(config.sample_rate, config.bitrate, band)
        {
            return Ok(Encoder::Speech(Box::new(speech)));
        }
        FdkEncoder::new(EncoderSettings {
            sample_rate: config.sample_rate,
            bitrate: config.bitrate,
            bandwidth_hz: input_band_hz,
        })
        .map(Encoder::Fdk)
        .map_err(AacError::Encoder)
    }

    /// Samples between the input and the decoded output.
    fn delay_samples(&self) -> Result<u32, AacError> {
        match self {
            Encoder::Speech(_) => Ok(speech_aac::DELAY_SAMPLES),
            Encoder::Fdk(fdk) => fdk.delay_samples().map_err(AacError::Encoder),
        }
    }

    /// Feeds one frame of samples: (samples consumed, bytes of access unit written).
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<(usize, usize), AacError> {
        match self {
            Encoder::Speech(speech) => Ok((pcm.len(), speech.encode(pcm, out))),
            Encoder::Fdk(fdk) => fdk.encode(pcm, out).map_err(AacError::Encoder),
        }
    }
}

/// One AAC access unit stamped on the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct AacFrame {
    pub ts_ms: i64,
    pub data: Bytes,
}

/// PCM on the timeline in, AAC access units out.
pub struct AacTrack {
    encoder: Encoder,
    config: AacConfig,
    /// Timeline position of sample 0, set by the first PCM or silence.
    anchor_ms: Option<i64>,
    /// Samples fed to the encoder so far (since the anchor).
    samples_in: u64,
    /// Access units produced so far, the priming ones included.
    frames_out: u64,
    /// The encoder's delay in samples: access unit k decodes to the input from
    /// sample k × 1024 − delay, so stamping it there keeps audio in sync with video.
    delay_samples: u64,
    pending: Vec<i16>,
    scratch: Vec<u8>,
    payloads: PayloadArena,
    silence: Vec<i16>,
}

impl std::fmt::Debug for AacTrack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AacTrack")
            .field("config", &self.config)
            .field("samples_in", &self.samples_in)
            .finish_non_exhaustive()
    }
}

impl AacTrack {
    pub fn new(config: AacConfig) -> Result<Self, AacError> {
        Self::for_input(config, None)
    }

    /// An encoder for audio that has nothing above `input_band_hz` (the call's own band: half
    /// its codec's sample rate), which it then does not spend work on.
    pub fn for_input(config: AacConfig, input_band_hz: Option<u32>) -> Result<Self, AacError> {
        audio_specific_config(config.sample_rate)?;
        let encoder = Encoder::for_input(config, input_band_hz)?;
        let delay_samples = encoder.delay_samples()?;
        Ok(AacTrack {
            encoder,
            config,
            anchor_ms: None,
            samples_in: 0,
            frames_out: 0,
            delay_samples: u64::from(delay_samples),
            pending: Vec::with_capacity(4 * FRAME_SAMPLES),
            scratch: vec![0; 8192],
            payloads: PayloadArena::new(PAYLOAD_BLOCK),
            silence: vec![0; FRAME_SAMPLES],
        })
    }

    pub fn config(&self) -> AacConfig {
        self.config
    }

    /// The AudioSpecificConfig of this stream.
    pub fn audio_specific_config(&self) -> Bytes {
        let asc = audio_specific_config(self.config.sample_rate).unwrap_or([0x11, 0x88]);
        Bytes::copy_from_slice(&asc)
    }

    fn position_ms(&self, anchor: i64) -> i64 {
        anchor + (self.samples_in * 1000 / u64::from(self.config.sample_rate)) as i64
    }

    /// Adds PCM (at the AAC rate) whose first sample plays at `ts_ms`; fills a preceding gap with
    /// silence. Emits every finished access unit.
    pub fn push_pcm(
        &mut self,
        ts_ms: i64,
        pcm: &[i16],
        emit: &mut impl FnMut(AacFrame),
    ) -> Result<(), AacError> {
        let anchor = *self.anchor_ms.get_or_insert(ts_ms);
        let gap = ts_ms - self.position_ms(anchor);
        if gap > MAX_FILL_MS {
            // A long silence: jump rather than encode minutes of zeros.
            self.anchor_ms = Some(anchor + gap);
        } else if gap > GAP_TOLERANCE_MS {
            self.feed_silence(gap, emit)?;
        }
        self.feed(pcm, emit)
    }

    /// Keeps the stream alive when no audio arrives: encodes silence up to `now_ms - lag_ms`.
    pub fn fill_silence_until(
        &mut self,
        now_ms: i64,
        lag_ms: i64,
        emit: &mut impl FnMut(AacFrame),
    ) -> Result<(), AacError> {
        let target = now_ms - lag_ms;
        let anchor = *self.anchor_ms.get_or_insert(target.max(0));
        let gap = target - self.position_ms(anchor);
        if gap > GAP_TOLERANCE_MS {
            self.feed_silence(gap.min(MAX_FILL_MS), emit)?;
        }
        Ok(())
    }

    fn feed_silence(&mut self, ms: i64, emit: &mut impl FnMut(AacFrame)) -> Result<(), AacError> {
        let mut samples = (ms as u64 * u64::from(self.config.sample_rate) / 1000) as usize;
        let silence = std::mem::take(&mut self.silence);
        while samples > 0 {
            let chunk = samples.min(silence.len());
            let result = self.feed(&silence[..chunk], emit);
            if result.is_err() {
                self.silence = silence;
                return result;
            }
            samples -= chunk;
        }
        self.silence = silence;
        Ok(())
    }

    fn feed(&mut self, pcm: &[i16], emit: &mut impl FnMut(AacFrame)) -> Result<(), AacError> {
        self.samples_in += pcm.len() as u64;
        self.pending.extend_from_slice(pcm);
        let mut consumed = 0;
        while self.pending.len() - consumed >= FRAME_SAMPLES {
            let frame = &self.pending[consumed..consumed + FRAME_SAMPLES];
            let (taken, written) = self.encoder.encode(frame, &mut self.scratch)?;
            consumed += taken.clamp(1, FRAME_SAMPLES);
            if written > 0 {
                let first_sample = self.frames_out * FRAME_SAMPLES as u64;
                self.frames_out += 1;
                // The first access units carry only the encoder's priming: leave them out, as
                // players do, and start the stream where the input starts.
                let Some(sample) = first_sample.checked_sub(self.delay_samples) else {
                    continue;
                };
                let anchor = self.anchor_ms.unwrap_or_default();
                let offset = sample * 1000 / u64::from(self.config.sample_rate);
                emit(AacFrame {
                    ts_ms: anchor + offset as i64,
                    data: self.payloads.payload(&self.scratch[..written]),
                });
            }
        }
        self.pending.drain(..consumed);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_specific_config_matches_the_encoder_s_own() {
        assert_eq!(audio_specific_config(48_000).unwrap(), [0x11, 0x88]);
        assert_eq!(audio_specific_config(44_100).unwrap(), [0x12, 0x08]);
        assert!(audio_specific_config(8_000).is_err());
        for sample_rate in [44_100, 48_000] {
            let track = AacTrack::new(AacConfig {
                sample_rate,
                bitrate: 64_000,
            })
            .unwrap();
            let Encoder::Fdk(encoder) = &track.encoder else {
                panic!("full-band input goes to FDK");
            };
            let fdk = encoder.audio_specific_config().unwrap();
            assert_eq!(fdk, &track.audio_specific_config()[..], "{sample_rate}");
        }
    }

    #[test]
    fn one_second_of_tone_gives_evenly_spaced_frames_near_the_bitrate() {
        let mut track = AacTrack::new(AacConfig::default()).unwrap();
        let mut frames = Vec::new();
        for chunk in 0..50 {
            let pcm: Vec<i16> = (0..960)
                .map(|n| ((chunk * 960 + n) as f64 * 0.06).sin() * 8000.0)
                .map(|s| s as i16)
                .collect();
            track
                .push_pcm(1000 + chunk * 20, &pcm, &mut |f| frames.push(f))
                .unwrap();
        }
        assert!(frames.len() >= 44, "{}", frames.len());
        assert_eq!(frames[0].ts_ms, 1000);
        assert!(
            frames
                .windows(2)
                .all(|w| (21..=22).contains(&(w[1].ts_ms - w[0].ts_ms)))
        );
        let bytes: usize = frames.iter().map(|f| f.data.len()).sum();
        let kbps = bytes * 8 * 48_000 / 1024 / frames.len() / 1000;
        assert!((40..=80).contains(&kbps), "{kbps} kbit/s");
    }

    #[test]
    fn the_encoder_s_priming_is_left_out_so_audio_starts_at_its_anchor() {
        let mut track = AacTrack::new(AacConfig::default()).unwrap();
        assert_eq!(track.delay_samples, 2048, "FDK AAC-LC");
        let mut frames = Vec::new();
        let pcm = vec![1000; 20 * FRAME_SAMPLES];
        track.push_pcm(500, &pcm, &mut |f| frames.push(f)).unwrap();
        // Two access units of priming are not emitted; the next one starts the input, at 500.
        assert!(frames.len() <= 18, "{}", frames.len());
        assert_eq!(frames[0].ts_ms, 500);
        assert_eq!(frames[1].ts_ms, 500 + 21);
    }

    #[test]
    fn telephone_band_input_goes_to_the_speech_encoder_on_the_same_timeline() {
        let config = AacConfig::default();
        let mut track = AacTrack::for_input(config, Some(4_000)).unwrap();
        assert!(matches!(track.encoder, Encoder::Speech(_)));
        assert_eq!(track.delay_samples, 1024, "one frame of MDCT overlap");
        let mut frames = Vec::new();
        let pcm = vec![1000; 20 * FRAME_SAMPLES];
        track.push_pcm(500, &pcm, &mut |f| frames.push(f)).unwrap();
        assert_eq!(frames.len(), 19, "the priming frame is left out");
        assert_eq!((frames[0].ts_ms, frames[1].ts_ms), (500, 521));
        // Wideband calls and full-band input stay with FDK.
        for band in [Some(8_000), None] {
            let track = AacTrack::for_input(config, band).unwrap();
            assert!(matches!(track.encoder, Encoder::Fdk(_)), "{band:?}");
        }
    }

    #[test]
    fn silence_fills_gaps_and_idle_time() {
        let mut track = AacTrack::new(AacConfig::default()).unwrap();
        let mut frames = Vec::new();
        track
            .fill_silence_until(2000, 100, &mut |f| frames.push(f))
            .unwrap();
        assert!(frames.is_empty(), "the first call only anchors");
        track
            .fill_silence_until(3000, 100, &mut |f| frames.push(f))
            .unwrap();
        let covered = frames.len() as i64 * 1024 * 1000 / 48_000;
        assert!((900..=1000).contains(&covered), "{covered}");
        track
            .push_pcm(5000, &[100; 960], &mut |f| frames.push(f))
            .unwrap();
        let last = frames.last().unwrap().ts_ms;
        assert!(last >= 4800, "gap up to 5000 ms filled: {last}");
    }
}
