//! The hand-off between the media path (RTP in) and the RTMP publishers (FLV out).
//!
//! The media path turns RTP into codec-level frames on one millisecond timeline; each RTMP
//! target muxes them into FLV tag bodies. Frames are cheap to clone ([`Bytes`]) so one frame can
//! fan out to several targets without copying.

use bytes::Bytes;

/// Audio as it leaves the media path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AudioFormat {
    /// AAC-LC raw access units; config is an AudioSpecificConfig.
    Aac,
    /// G.711 µ-law, 8 kHz mono (FLV SoundFormat 8).
    Pcmu,
    /// G.711 A-law, 8 kHz mono (FLV SoundFormat 7).
    Pcma,
    /// Speex, 16 kHz as FLV requires (SoundFormat 11).
    Speex,
}

impl AudioFormat {
    /// The sample rate FLV implies: fixed for G.711 (8 kHz) and Speex (16 kHz); AAC's comes
    /// from its AudioSpecificConfig, and 44.1 kHz is the FLV header's guess when unknown.
    pub fn flv_sample_rate(self) -> u32 {
        match self {
            AudioFormat::Aac => 44_100,
            AudioFormat::Pcmu | AudioFormat::Pcma => 8000,
            AudioFormat::Speex => 16_000,
        }
    }
}

/// Stream properties for `@setDataFrame onMetaData`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamMetadata {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub frame_rate: Option<f64>,
    pub video: bool,
    pub audio: Option<AudioFormat>,
    pub audio_sample_rate: Option<u32>,
    pub audio_channels: Option<u8>,
    pub audio_bitrate_kbps: Option<u32>,
}

/// One unit of media on the publish timeline. Timestamps are milliseconds since the start of the
/// broadcast's timeline, monotonic per track; they wrap at 2^32 like FLV's.
#[derive(Clone, Debug, PartialEq)]
pub enum MediaFrame {
    /// Stream properties; sent first and again whenever they change.
    Metadata(StreamMetadata),
    /// AVCDecoderConfigurationRecord (ISO 14496-15 §5.2.4.1); sent before the first keyframe and
    /// again whenever SPS/PPS change.
    VideoConfig(Bytes),
    /// One H.264 access unit as AVCC (4-byte length-prefixed NAL units).
    Video {
        dts_ms: u32,
        /// Composition offset (pts - dts); 0 for the baseline streams SIP peers send.
        cts_ms: i32,
        keyframe: bool,
        data: Bytes,
    },
    /// AudioSpecificConfig for AAC (ISO 14496-3 §1.6.2.1); absent for G.711/Speex.
    AudioConfig(Bytes),
    /// One audio frame in `format`.
    Audio {
        ts_ms: u32,
        format: AudioFormat,
        data: Bytes,
    },
}

/// Where the media path hands its frames, synchronously, from its own task: the broadcast's
/// output (which publishes them at once, never waiting for the network), or a channel in tests
/// and benchmarks.
pub trait FrameSink: Send + Sync + 'static {
    /// Takes one frame; `false` when it had to be dropped (counted by the media path).
    fn push(&self, frame: MediaFrame) -> bool;
}

impl FrameSink for tokio::sync::mpsc::Sender<MediaFrame> {
    fn push(&self, frame: MediaFrame) -> bool {
        self.try_send(frame).is_ok()
    }
}
