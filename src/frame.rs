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

/// Frame payloads carved one after another out of a shared buffer, so a frame costs no
/// allocation of its own: a new buffer is taken only when the current one is full (or still
/// held by frames in flight), and every payload handed out is already reference-counted, so
/// cloning it for each target allocates nothing either (a `Bytes` made from a `Vec` allocates
/// again on its first clone).
#[derive(Debug)]
pub struct PayloadArena {
    buffer: bytes::BytesMut,
    block: usize,
}

impl PayloadArena {
    /// Buffers of `block` bytes (a payload larger than that gets a buffer of its own size).
    pub fn new(block: usize) -> Self {
        PayloadArena {
            buffer: bytes::BytesMut::new(),
            block,
        }
    }

    /// A payload holding `data`.
    pub fn payload(&mut self, data: &[u8]) -> Bytes {
        if self.buffer.capacity() < data.len() {
            self.buffer = bytes::BytesMut::with_capacity(self.block.max(data.len()));
        }
        self.buffer.extend_from_slice(data);
        self.buffer.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_share_blocks_and_clone_without_copying() {
        let mut arena = PayloadArena::new(64);
        let a = arena.payload(b"first");
        let b = arena.payload(b"second");
        assert_eq!((&a[..], &b[..]), (&b"first"[..], &b"second"[..]));
        // Same block, one after the other.
        assert_eq!(a.as_ptr().wrapping_add(5), b.as_ptr());
        let c = a.clone();
        assert_eq!(c.as_ptr(), a.as_ptr());
        let big = arena.payload(&[7; 100]);
        assert_eq!(big.len(), 100);
        assert_eq!(&arena.payload(b"x")[..], b"x");
    }
}
