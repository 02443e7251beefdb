//! A fragmented MP4 muxer for the live preview (ISO/IEC 14496-12 boxes, ISO/IEC 14496-15 §5
//! for H.264, ISO/IEC 14496-14 for AAC), sans-IO: frames in, byte segments out.
//!
//! The output is what Media Source Extensions take: one init segment (`ftyp` + `moov` with an
//! `avc1`/`avcC` track and, when the stream has AAC, an `mp4a`/`esds` track), then `moof` +
//! `mdat` fragments, the first starting at a keyframe. Nothing is re-encoded: video samples are
//! the AVCC access units as published, audio samples the raw AAC access units.
//!
//! Drive it like this: build a [`Fmp4Muxer`] from the stream headers, send
//! [`Fmp4Muxer::init_segment`], then for every frame call [`Fmp4Muxer::push`] and send whatever
//! fragment it returns. A viewer that lost frames calls [`Fmp4Muxer::resync`]: the next
//! fragment starts at the next keyframe again, on the same timeline.

use bytes::{BufMut, Bytes, BytesMut};

use self::boxes::{Tracks, audio_trak, moof, mvhd, trex, video_trak, write_box};

/// A fragment is cut at every keyframe, and at least this often (ms of video).
const FRAGMENT_MS: i64 = 500;
/// Video track timescale: the publish timeline's milliseconds.
const VIDEO_TIMESCALE: u32 = 1000;
/// AAC frames carry 1024 samples (AAC-LC); the last sample of a fragment gets this duration.
const AAC_FRAME_SAMPLES: u32 = 1024;
/// Frames held before a fragment is forced out regardless of time (bounds memory per viewer).
const MAX_PENDING_SAMPLES: usize = 1024;
const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;

/// Why the stream headers cannot start a preview.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Fmp4Error {
    #[error("the AVC decoder configuration record is shorter than 7 bytes")]
    ShortAvcConfig,
    #[error("the AVC decoder configuration record has version {0}, not 1")]
    AvcConfigVersion(u8),
    #[error("the AAC AudioSpecificConfig is shorter than 2 bytes")]
    ShortAudioConfig,
    #[error("the AAC AudioSpecificConfig is longer than 127 bytes")]
    LongAudioConfig,
    #[error("the stream gained or lost its AAC track; a new stream must start")]
    TracksChanged,
}

/// What the init segment describes, taken from the stream headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackConfig {
    /// AVCDecoderConfigurationRecord, as in FLV's sequence header.
    pub avc_config: Bytes,
    /// AudioSpecificConfig, when the stream has AAC audio.
    pub aac_config: Option<Bytes>,
    pub width: u16,
    pub height: u16,
}

impl TrackConfig {
    /// The RFC 6381 codecs parameter for MSE: `avc1.PPCCLL` from the avcC's profile,
    /// compatibility and level bytes, and `mp4a.40.N` from the AAC object type.
    pub fn codecs(&self) -> Result<String, Fmp4Error> {
        let (profile, compat, level) = avc_profile(&self.avc_config)?;
        let mut codecs = format!("avc1.{profile:02X}{compat:02X}{level:02X}");
        if let Some(asc) = &self.aac_config {
            let audio = AacParams::parse(asc)?;
            codecs.push_str(&format!(", mp4a.40.{}", audio.object_type));
        }
        Ok(codecs)
    }
}

fn avc_profile(record: &[u8]) -> Result<(u8, u8, u8), Fmp4Error> {
    match record {
        [version, profile, compat, level, _, _, _, ..] => {
            if *version != 1 {
                return Err(Fmp4Error::AvcConfigVersion(*version));
            }
            Ok((*profile, *compat, *level))
        }
        _ => Err(Fmp4Error::ShortAvcConfig),
    }
}

/// What the sample entry needs from an AudioSpecificConfig (ISO 14496-3 §1.6.2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AacParams {
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u16,
}

impl AacParams {
    pub fn parse(asc: &[u8]) -> Result<AacParams, Fmp4Error> {
        const RATES: [u32; 13] = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
        ];
        let Some((&[a, b], rest)) = asc.split_first_chunk::<2>() else {
            return Err(Fmp4Error::ShortAudioConfig);
        };
        let object_type = a >> 3;
        let index = usize::from(((a & 0x07) << 1) | (b >> 7));
        let (sample_rate, channel_bits) = match RATES.get(index) {
            Some(rate) => (*rate, (b >> 3) & 0x0f),
            // Index 15: an explicit 24-bit rate follows; the channels come after it.
            None => match rest {
                [c, d, e, ..] => {
                    let raw = (u32::from(b & 0x7f) << 17)
                        | (u32::from(*c) << 9)
                        | (u32::from(*d) << 1)
                        | u32::from(*e >> 7);
                    (raw, (e >> 3) & 0x0f)
                }
                _ => return Err(Fmp4Error::ShortAudioConfig),
            },
        };
        Ok(AacParams {
            object_type,
            sample_rate: sample_rate.max(1),
            channels: u16::from(channel_bits).clamp(1, 8),
        })
    }
}

/// Checks the video configuration and reads the audio one.
fn checked_audio(config: &TrackConfig) -> Result<Option<AacParams>, Fmp4Error> {
    avc_profile(&config.avc_config)?;
    match &config.aac_config {
        Some(asc) if asc.len() > 127 => Err(Fmp4Error::LongAudioConfig),
        Some(asc) => AacParams::parse(asc).map(Some),
        None => Ok(None),
    }
}

struct VideoSample {
    dts: i64,
    cts: i32,
    keyframe: bool,
    data: Bytes,
}

struct AudioSample {
    ts: i64,
    data: Bytes,
}

/// Millisecond timestamps that wrap at 2^32 (FLV's), unwrapped onto one signed timeline.
#[derive(Default)]
struct Unwrap {
    last: Option<(u32, i64)>,
}

impl Unwrap {
    fn extend(&mut self, raw: u32) -> i64 {
        let extended = match self.last {
            None => i64::from(raw),
            Some((last_raw, last)) => last + i64::from(raw.wrapping_sub(last_raw) as i32),
        };
        self.last = Some((raw, extended));
        extended
    }
}

/// One viewer's muxer. See the module docs for how to drive it.
pub struct Fmp4Muxer {
    config: TrackConfig,
    audio: Option<AacParams>,
    unwrap: Unwrap,
    /// The timeline's zero: the first keyframe's timestamp.
    origin: Option<i64>,
    /// Waiting for a keyframe (at the start, and after a [`Fmp4Muxer::resync`]).
    waiting_for_keyframe: bool,
    video: Vec<VideoSample>,
    audio_samples: Vec<AudioSample>,
    sequence: u32,
}

/// A frame as the muxer takes it (the caller maps [`crate::frame::MediaFrame`] onto this and
/// skips what the preview cannot show).
#[derive(Clone, Debug)]
pub enum Sample {
    Video {
        dts_ms: u32,
        cts_ms: i32,
        keyframe: bool,
        data: Bytes,
    },
    Aac {
        ts_ms: u32,
        data: Bytes,
    },
}

impl Fmp4Muxer {
    pub fn new(config: TrackConfig) -> Result<Fmp4Muxer, Fmp4Error> {
        let audio = checked_audio(&config)?;
        Ok(Fmp4Muxer {
            config,
            audio,
            unwrap: Unwrap::default(),
            origin: None,
            waiting_for_keyframe: true,
            video: Vec::new(),
            audio_samples: Vec::new(),
            sequence: 0,
        })
    }

    /// `ftyp` + `moov`.
    pub fn init_segment(&self) -> Bytes {
        let mut out = BytesMut::new();
        write_box(&mut out, b"ftyp", |b| {
            b.put_slice(b"iso5");
            b.put_u32(512);
            for brand in [b"iso5", b"iso6", b"mp41", b"avc1"] {
                b.put_slice(brand);
            }
        });
        write_box(&mut out, b"moov", |b| {
            mvhd(b);
            video_trak(b, &self.config);
            if let (Some(asc), Some(audio)) = (&self.config.aac_config, &self.audio) {
                audio_trak(b, asc, audio);
            }
            write_box(b, b"mvex", |b| {
                trex(b, VIDEO_TRACK);
                if self.audio.is_some() {
                    trex(b, AUDIO_TRACK);
                }
            });
        });
        out.freeze()
    }

    /// The stream's configuration changed (the output switched between the call and the
    /// slate, whose SPS differ): the pending samples go out as a fragment, then a new init
    /// segment, and the next fragment starts at a keyframe on the same timeline. MSE takes a
    /// new init segment mid-stream as long as the tracks stay the same; when the AAC track
    /// comes or goes, this is [`Fmp4Error::TracksChanged`] and a new stream must start.
    pub fn reconfigure(&mut self, config: TrackConfig) -> Result<Bytes, Fmp4Error> {
        let audio = checked_audio(&config)?;
        if audio.is_some() != self.audio.is_some() {
            return Err(Fmp4Error::TracksChanged);
        }
        let mut out = BytesMut::new();
        if let Some(last) = self.video.last() {
            // The last sample lasts as long as the one before it (or a 25 fps frame).
            let before = self
                .video
                .len()
                .checked_sub(2)
                .and_then(|i| self.video.get(i));
            let duration = before.map_or(40, |b| (last.dts - b.dts).max(1));
            if let Some(fragment) = self.fragment(last.dts + duration) {
                out.put_slice(&fragment);
            }
        }
        self.config = config;
        self.audio = audio;
        out.put_slice(&self.init_segment());
        self.resync();
        Ok(out.freeze())
    }

    /// The viewer lost frames: drop what is pending and start again at the next keyframe.
    pub fn resync(&mut self) {
        self.video.clear();
        self.audio_samples.clear();
        self.waiting_for_keyframe = true;
    }

    /// Takes one frame; returns a `moof` + `mdat` fragment when one is complete.
    pub fn push(&mut self, sample: Sample) -> Option<Bytes> {
        match sample {
            Sample::Video {
                dts_ms,
                cts_ms,
                keyframe,
                data,
            } => {
                let dts = self.unwrap.extend(dts_ms);
                if self.waiting_for_keyframe {
                    if !keyframe {
                        return None;
                    }
                    self.waiting_for_keyframe = false;
                    self.origin.get_or_insert(dts);
                }
                let dts = dts - self.origin.unwrap_or(dts);
                let due = keyframe
                    || self.video.len() >= MAX_PENDING_SAMPLES
                    || self
                        .video
                        .first()
                        .is_some_and(|first| dts - first.dts >= FRAGMENT_MS);
                let fragment = if due { self.fragment(dts) } else { None };
                // A sample before the previous one (a broken timeline) would give a negative
                // duration: start over from it.
                if self.video.last().is_some_and(|last| dts < last.dts) {
                    self.video.clear();
                }
                self.video.push(VideoSample {
                    dts,
                    cts: cts_ms,
                    keyframe,
                    data,
                });
                fragment
            }
            Sample::Aac { ts_ms, data } => {
                let ts = self.unwrap.extend(ts_ms);
                let origin = self.origin?;
                if self.waiting_for_keyframe || self.audio.is_none() || ts < origin {
                    return None;
                }
                let ts = ts - origin;
                if self.audio_samples.last().is_some_and(|last| ts < last.ts) {
                    self.audio_samples.clear();
                }
                if self.audio_samples.len() < MAX_PENDING_SAMPLES {
                    self.audio_samples.push(AudioSample { ts, data });
                }
                None
            }
        }
    }

    /// Writes the pending samples as one fragment; `next_dts` ends the last video sample.
    fn fragment(&mut self, next_dts: i64) -> Option<Bytes> {
        if self.video.is_empty() {
            return None;
        }
        let video = std::mem::take(&mut self.video);
        let audio = std::mem::take(&mut self.audio_samples);
        self.sequence = self.sequence.wrapping_add(1);
        let rate = self.audio.map_or(1, |a| a.sample_rate);
        let to_audio_units = |ms: i64| ms.max(0) as u64 * u64::from(rate) / 1000;
        let video_durations: Vec<u32> = video
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let end = video.get(i + 1).map_or(next_dts, |n| n.dts);
                u32::try_from(end - s.dts).unwrap_or(0)
            })
            .collect();
        let audio_durations: Vec<u32> = audio
            .iter()
            .enumerate()
            .map(|(i, s)| match audio.get(i + 1) {
                Some(n) => u32::try_from(to_audio_units(n.ts) - to_audio_units(s.ts)).unwrap_or(0),
                None => AAC_FRAME_SAMPLES,
            })
            .collect();

        // Two passes: the moof's size fixes the data offsets, which are inside the moof.
        let tracks = Tracks {
            video: &video,
            video_durations: &video_durations,
            audio: &audio,
            audio_durations: &audio_durations,
            audio_base: audio.first().map_or(0, |a| to_audio_units(a.ts)),
        };
        let mut probe = BytesMut::new();
        moof(&mut probe, self.sequence, &tracks, 0);
        let mut out = BytesMut::new();
        moof(&mut out, self.sequence, &tracks, probe.len());
        let payload: usize = video.iter().map(|s| s.data.len()).sum::<usize>()
            + audio.iter().map(|s| s.data.len()).sum::<usize>();
        out.put_u32(u32::try_from(8 + payload).unwrap_or(u32::MAX));
        out.put_slice(b"mdat");
        for s in &video {
            out.put_slice(&s.data);
        }
        for s in &audio {
            out.put_slice(&s.data);
        }
        Some(out.freeze())
    }
}

#[path = "fmp4_boxes.rs"]
mod boxes;

#[cfg(test)]
#[path = "fmp4_tests.rs"]
mod tests;
