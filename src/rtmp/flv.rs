//! FLV tag bodies for [`MediaFrame`]s, as RTMP carries them (Adobe "Video File Format
//! Specification" v10, annex E.4.2 AUDIODATA, E.4.3 VIDEODATA, E.4.4 SCRIPTDATA).
//!
//! RTMP audio/video/data messages carry exactly an FLV tag body; [`super::flv_file`] wraps the
//! same bodies into an FLV file. [`demux`] is the inverse of [`mux`] (used to feed recordings
//! back in as frames, and in round-trip tests).

use bytes::{BufMut, Bytes, BytesMut};

use super::amf0::{self, Property};
use crate::frame::{AudioFormat, MediaFrame, StreamMetadata};

/// FLV tag type (E.4.1), also the RTMP message type id of the same payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagKind {
    Audio = 8,
    Video = 9,
    Script = 18,
}

impl TagKind {
    pub fn from_type_id(id: u8) -> Option<TagKind> {
        match id {
            8 => Some(TagKind::Audio),
            9 => Some(TagKind::Video),
            18 => Some(TagKind::Script),
            _ => None,
        }
    }
}

/// One FLV tag: its kind, its timestamp in milliseconds and its body.
///
/// The body is kept in two parts: the few codec header bytes FLV puts before a frame
/// (VIDEODATA's frame type, AVCPacketType and CompositionTime; AUDIODATA's sound header) and
/// the frame's own bytes, shared with the frame. Muxing a frame therefore copies and allocates
/// nothing; the RTMP session writes both parts straight into its chunk stream.
#[derive(Clone, Debug)]
pub struct FlvTag {
    pub kind: TagKind,
    pub timestamp_ms: u32,
    pub head: TagHead,
    pub data: Bytes,
}

/// The codec header bytes before a frame's payload in an FLV tag body (at most five).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TagHead {
    bytes: [u8; 5],
    len: u8,
}

impl TagHead {
    fn new(bytes: &[u8]) -> Self {
        let mut head = TagHead::default();
        let len = bytes.len().min(head.bytes.len());
        if let (Some(to), Some(from)) = (head.bytes.get_mut(..len), bytes.get(..len)) {
            to.copy_from_slice(from);
        }
        head.len = len as u8;
        head
    }

    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

impl FlvTag {
    /// A tag whose body is given whole (read from a file or the wire).
    pub fn from_body(kind: TagKind, timestamp_ms: u32, body: Bytes) -> Self {
        FlvTag {
            kind,
            timestamp_ms,
            head: TagHead::default(),
            data: body,
        }
    }

    /// The body's two parts, in order.
    pub fn body_parts(&self) -> [&[u8]; 2] {
        [self.head.as_slice(), &self.data]
    }

    pub fn body_len(&self) -> usize {
        self.head.as_slice().len() + self.data.len()
    }

    /// Byte `index` of the body.
    pub fn body_byte(&self, index: usize) -> Option<u8> {
        let head = self.head.as_slice();
        match index.checked_sub(head.len()) {
            None => head.get(index).copied(),
            Some(rest) => self.data.get(rest).copied(),
        }
    }

    /// The body in one piece (copied when it has a head): for files and checks, not the
    /// publish path.
    pub fn body(&self) -> Bytes {
        if self.head.as_slice().is_empty() {
            return self.data.clone();
        }
        let mut body = BytesMut::with_capacity(self.body_len());
        body.put_slice(self.head.as_slice());
        body.put_slice(&self.data);
        body.freeze()
    }
}

/// Tags are equal when their kind, timestamp and body bytes are, however the body is split.
impl PartialEq for FlvTag {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.timestamp_ms == other.timestamp_ms
            && self.body_len() == other.body_len()
            && self
                .body_parts()
                .into_iter()
                .flatten()
                .eq(other.body_parts().into_iter().flatten())
    }
}

/// VIDEODATA CodecID 7: AVC.
const CODEC_AVC: u8 = 7;
const FRAME_KEY: u8 = 1;
const FRAME_INTER: u8 = 2;
const AVC_SEQUENCE_HEADER: u8 = 0;
const AVC_NALU: u8 = 1;

/// AUDIODATA SoundFormat values.
const SOUND_ALAW: u8 = 7;
const SOUND_MULAW: u8 = 8;
const SOUND_AAC: u8 = 10;
const SOUND_SPEEX: u8 = 11;
const AAC_SEQUENCE_HEADER: u8 = 0;
const AAC_RAW: u8 = 1;

/// The AUDIODATA first byte: SoundFormat(4) SoundRate(2) SoundSize(1) SoundType(1).
///
/// AAC is always written as 44 kHz / 16 bit / stereo (E.4.2.1: "for AAC: always 3 … always 1";
/// the real rate and channels are in the AudioSpecificConfig). G.711 is 8 kHz, which has no
/// SoundRate code: rate 0, 16-bit, mono, as ffmpeg's FLV muxer writes it. Speex is "mono sampled
/// at 16 kHz, SoundRate 0, SoundSize 1, SoundType 0".
pub fn sound_header(format: AudioFormat) -> u8 {
    match format {
        AudioFormat::Aac => SOUND_AAC << 4 | 3 << 2 | 1 << 1 | 1,
        AudioFormat::Pcmu => SOUND_MULAW << 4 | 1 << 1,
        AudioFormat::Pcma => SOUND_ALAW << 4 | 1 << 1,
        AudioFormat::Speex => SOUND_SPEEX << 4 | 1 << 1,
    }
}

/// FLV/onMetaData `audiocodecid` for a format (the SoundFormat value).
pub fn audio_codec_id(format: AudioFormat) -> u8 {
    match format {
        AudioFormat::Aac => SOUND_AAC,
        AudioFormat::Pcmu => SOUND_MULAW,
        AudioFormat::Pcma => SOUND_ALAW,
        AudioFormat::Speex => SOUND_SPEEX,
    }
}

fn avc_head(frame_type: u8, packet_type: u8, cts_ms: i32) -> TagHead {
    // CompositionTime is SI24: the low three bytes of the two's complement.
    let [_, c0, c1, c2] = cts_ms.to_be_bytes();
    TagHead::new(&[frame_type << 4 | CODEC_AVC, packet_type, c0, c1, c2])
}

fn audio_head(format: AudioFormat, aac_packet_type: u8) -> TagHead {
    match format {
        AudioFormat::Aac => TagHead::new(&[sound_header(format), aac_packet_type]),
        _ => TagHead::new(&[sound_header(format)]),
    }
}

/// Which script-data form to write: RTMP publishers send `@setDataFrame onMetaData {…}` (the
/// server stores it and replays `onMetaData {…}` to players and recordings); an FLV file holds
/// `onMetaData {…}` directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptForm {
    Rtmp,
    File,
}

/// The SCRIPTDATA body for `meta`, properties in the order ffmpeg writes them.
pub fn metadata_body(meta: &StreamMetadata, form: ScriptForm) -> Bytes {
    let mut props: Vec<(&str, Property)> = Vec::with_capacity(12);
    props.push(("duration", Property::Number(0.0)));
    if meta.video {
        if let Some(w) = meta.width {
            props.push(("width", Property::Number(f64::from(w))));
        }
        if let Some(h) = meta.height {
            props.push(("height", Property::Number(f64::from(h))));
        }
        if let Some(rate) = meta.frame_rate {
            props.push(("framerate", Property::Number(rate)));
        }
        props.push(("videocodecid", Property::Number(f64::from(CODEC_AVC))));
    }
    if let Some(format) = meta.audio {
        if let Some(kbps) = meta.audio_bitrate_kbps {
            props.push(("audiodatarate", Property::Number(f64::from(kbps))));
        }
        let rate = meta.audio_sample_rate.unwrap_or(format.flv_sample_rate());
        props.push(("audiosamplerate", Property::Number(f64::from(rate))));
        props.push(("audiosamplesize", Property::Number(16.0)));
        let stereo = meta.audio_channels.unwrap_or(1) > 1;
        props.push(("stereo", Property::Boolean(stereo)));
        let codec = audio_codec_id(format);
        props.push(("audiocodecid", Property::Number(f64::from(codec))));
    }
    props.push(("encoder", Property::String("sipcast".to_string())));

    let mut out = Vec::with_capacity(256);
    if form == ScriptForm::Rtmp {
        amf0::write_string(&mut out, "@setDataFrame");
    }
    amf0::write_string(&mut out, "onMetaData");
    amf0::write_ecma_array(&mut out, &props);
    Bytes::from(out)
}

/// The FLV tag for one frame. Config frames and metadata carry no timestamp of their own: they
/// get `config_ts`, normally the timestamp of the media that follows them.
pub fn mux(frame: &MediaFrame, config_ts: u32) -> FlvTag {
    let (kind, timestamp_ms, head, data) = match frame {
        MediaFrame::Metadata(meta) => (
            TagKind::Script,
            config_ts,
            TagHead::default(),
            metadata_body(meta, ScriptForm::Rtmp),
        ),
        MediaFrame::VideoConfig(avcc) => (
            TagKind::Video,
            config_ts,
            avc_head(FRAME_KEY, AVC_SEQUENCE_HEADER, 0),
            avcc.clone(),
        ),
        MediaFrame::Video {
            dts_ms,
            cts_ms,
            keyframe,
            data,
        } => {
            let frame_type = if *keyframe { FRAME_KEY } else { FRAME_INTER };
            let head = avc_head(frame_type, AVC_NALU, *cts_ms);
            (TagKind::Video, *dts_ms, head, data.clone())
        }
        MediaFrame::AudioConfig(asc) => (
            TagKind::Audio,
            config_ts,
            audio_head(AudioFormat::Aac, AAC_SEQUENCE_HEADER),
            asc.clone(),
        ),
        MediaFrame::Audio {
            ts_ms,
            format,
            data,
        } => (
            TagKind::Audio,
            *ts_ms,
            audio_head(*format, AAC_RAW),
            data.clone(),
        ),
    };
    FlvTag {
        kind,
        timestamp_ms,
        head,
        data,
    }
}

/// Why a tag body could not be turned into a frame.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FlvError {
    #[error("{kind:?} tag body of {len} bytes is too short")]
    TooShort { kind: TagKind, len: usize },
    #[error("video codec id {0} is not AVC (7)")]
    UnsupportedVideoCodec(u8),
    #[error("sound format {0} is not AAC, G.711 or Speex")]
    UnsupportedSoundFormat(u8),
    #[error("unknown {kind:?} packet type {packet_type}")]
    UnknownPacketType { kind: TagKind, packet_type: u8 },
}

/// The frame an FLV tag body carries. Script tags, AVC end-of-sequence and video "info" frames
/// give `Ok(None)`: they carry nothing the publisher needs.
pub fn demux(
    kind: TagKind,
    timestamp_ms: u32,
    body: &Bytes,
) -> Result<Option<MediaFrame>, FlvError> {
    let too_short = || FlvError::TooShort {
        kind,
        len: body.len(),
    };
    match kind {
        TagKind::Script => Ok(None),
        TagKind::Video => {
            let [first, packet_type, c0, c1, c2, ..] = body[..] else {
                return Err(too_short());
            };
            if first & 0x0f != CODEC_AVC {
                return Err(FlvError::UnsupportedVideoCodec(first & 0x0f));
            }
            let frame_type = first >> 4;
            let data = body.slice(5..);
            match packet_type {
                AVC_SEQUENCE_HEADER => Ok(Some(MediaFrame::VideoConfig(data))),
                AVC_NALU if frame_type == FRAME_KEY || frame_type == FRAME_INTER => {
                    // Sign-extend SI24.
                    let cts_ms = i32::from_be_bytes([c0, c1, c2, 0]) >> 8;
                    Ok(Some(MediaFrame::Video {
                        dts_ms: timestamp_ms,
                        cts_ms,
                        keyframe: frame_type == FRAME_KEY,
                        data,
                    }))
                }
                AVC_NALU | 2 => Ok(None),
                other => Err(FlvError::UnknownPacketType {
                    kind,
                    packet_type: other,
                }),
            }
        }
        TagKind::Audio => {
            let Some(&first) = body.first() else {
                return Err(too_short());
            };
            let format = match first >> 4 {
                SOUND_AAC => AudioFormat::Aac,
                SOUND_MULAW => AudioFormat::Pcmu,
                SOUND_ALAW => AudioFormat::Pcma,
                SOUND_SPEEX => AudioFormat::Speex,
                other => return Err(FlvError::UnsupportedSoundFormat(other)),
            };
            if format != AudioFormat::Aac {
                return Ok(Some(MediaFrame::Audio {
                    ts_ms: timestamp_ms,
                    format,
                    data: body.slice(1..),
                }));
            }
            let Some(&packet_type) = body.get(1) else {
                return Err(too_short());
            };
            let data = body.slice(2..);
            match packet_type {
                AAC_SEQUENCE_HEADER => Ok(Some(MediaFrame::AudioConfig(data))),
                AAC_RAW => Ok(Some(MediaFrame::Audio {
                    ts_ms: timestamp_ms,
                    format,
                    data,
                })),
                other => Err(FlvError::UnknownPacketType {
                    kind,
                    packet_type: other,
                }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(keyframe: bool, cts_ms: i32) -> MediaFrame {
        MediaFrame::Video {
            dts_ms: 40,
            cts_ms,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 2, 0x65, 0x88]),
        }
    }

    #[test]
    fn avc_sequence_header_golden_bytes() {
        let avcc = Bytes::from_static(&[1, 0x42, 0xc0, 0x1e, 0xff]);
        let tag = mux(&MediaFrame::VideoConfig(avcc), 0);
        assert_eq!(tag.kind, TagKind::Video);
        assert_eq!(
            &tag.body()[..],
            &[0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff]
        );
    }

    #[test]
    fn avc_nalu_golden_bytes_key_and_inter_with_cts() {
        let key = mux(&video(true, 0), 0);
        assert_eq!(key.timestamp_ms, 40);
        assert_eq!(&key.body()[..], &[0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88]);
        let inter = mux(&video(false, 80), 0);
        assert_eq!(&inter.body()[..5], &[0x27, 1, 0, 0, 80]);
        let negative = mux(&video(false, -2), 0);
        assert_eq!(&negative.body()[..5], &[0x27, 1, 0xff, 0xff, 0xfe]);
    }

    #[test]
    fn audio_golden_bytes_per_format() {
        let asc = MediaFrame::AudioConfig(Bytes::from_static(&[0x12, 0x10]));
        assert_eq!(&mux(&asc, 0).body()[..], &[0xaf, 0, 0x12, 0x10]);
        let audio = |format| MediaFrame::Audio {
            ts_ms: 20,
            format,
            data: Bytes::from_static(&[0xd5, 0xd5]),
        };
        assert_eq!(
            &mux(&audio(AudioFormat::Aac), 0).body()[..],
            &[0xaf, 1, 0xd5, 0xd5]
        );
        assert_eq!(
            &mux(&audio(AudioFormat::Pcmu), 0).body()[..],
            &[0x82, 0xd5, 0xd5]
        );
        assert_eq!(
            &mux(&audio(AudioFormat::Pcma), 0).body()[..],
            &[0x72, 0xd5, 0xd5]
        );
        assert_eq!(
            &mux(&audio(AudioFormat::Speex), 0).body()[..],
            &[0xb2, 0xd5, 0xd5]
        );
        assert_eq!(mux(&audio(AudioFormat::Pcmu), 0).timestamp_ms, 20);
    }

    #[test]
    fn metadata_golden_bytes_for_video_only() {
        let meta = StreamMetadata {
            width: Some(320),
            height: Some(240),
            video: true,
            ..Default::default()
        };
        let body = metadata_body(&meta, ScriptForm::File);
        let mut expected = vec![0x02, 0, 10];
        expected.extend_from_slice(b"onMetaData");
        expected.extend_from_slice(&[0x08, 0, 0, 0, 5]);
        for (name, value) in [("duration", 0.0), ("width", 320.0), ("height", 240.0)] {
            expected.extend_from_slice(&(name.len() as u16).to_be_bytes());
            expected.extend_from_slice(name.as_bytes());
            expected.push(0);
            expected.extend_from_slice(&f64::to_be_bytes(value));
        }
        expected.extend_from_slice(&[0, 12]);
        expected.extend_from_slice(b"videocodecid");
        expected.push(0);
        expected.extend_from_slice(&7.0f64.to_be_bytes());
        expected.extend_from_slice(&[0, 7]);
        expected.extend_from_slice(b"encoder");
        expected.extend_from_slice(&[0x02, 0, 7]);
        expected.extend_from_slice(b"sipcast");
        expected.extend_from_slice(&[0, 0, 9]);
        assert_eq!(&body[..], &expected[..]);
    }

    #[test]
    fn rtmp_metadata_is_set_data_frame_and_names_the_codecs() {
        use rml_rtmp::rml_amf0::{Amf0Value, deserialize};
        let meta = StreamMetadata {
            width: Some(1280),
            height: Some(720),
            frame_rate: Some(25.0),
            video: true,
            audio: Some(AudioFormat::Aac),
            audio_sample_rate: Some(48_000),
            audio_channels: Some(1),
            audio_bitrate_kbps: Some(64),
        };
        let tag = mux(&MediaFrame::Metadata(meta), 0);
        assert_eq!(tag.kind, TagKind::Script);
        let values = deserialize(&mut &tag.body()[..]).unwrap();
        assert_eq!(values[0], Amf0Value::Utf8String("@setDataFrame".into()));
        assert_eq!(values[1], Amf0Value::Utf8String("onMetaData".into()));
        let Amf0Value::Object(props) = &values[2] else {
            panic!("{values:?}");
        };
        let number = |k: &str| props[k].clone().get_number().unwrap();
        assert_eq!(number("width"), 1280.0);
        assert_eq!(number("height"), 720.0);
        assert_eq!(number("framerate"), 25.0);
        assert_eq!(number("videocodecid"), 7.0);
        assert_eq!(number("audiocodecid"), 10.0);
        assert_eq!(number("audiosamplerate"), 48_000.0);
        assert_eq!(number("audiodatarate"), 64.0);
        assert_eq!(props["stereo"], Amf0Value::Boolean(false));
    }

    #[test]
    fn demux_inverts_mux_for_every_media_frame() {
        let frames = [
            MediaFrame::VideoConfig(Bytes::from_static(&[1, 2, 3])),
            video(true, 0),
            video(false, -33),
            MediaFrame::AudioConfig(Bytes::from_static(&[0x11, 0x88])),
            MediaFrame::Audio {
                ts_ms: 7,
                format: AudioFormat::Aac,
                data: Bytes::from_static(&[9, 9]),
            },
            MediaFrame::Audio {
                ts_ms: 8,
                format: AudioFormat::Pcma,
                data: Bytes::from_static(&[1]),
            },
            MediaFrame::Audio {
                ts_ms: 9,
                format: AudioFormat::Speex,
                data: Bytes::new(),
            },
        ];
        for frame in frames {
            let tag = mux(&frame, 0);
            let back = demux(tag.kind, tag.timestamp_ms, &tag.body()).unwrap();
            assert_eq!(back, Some(frame));
        }
    }

    #[test]
    fn demux_rejects_short_and_foreign_bodies() {
        let short = Bytes::from_static(&[0x17, 1]);
        assert!(matches!(
            demux(TagKind::Video, 0, &short),
            Err(FlvError::TooShort { .. })
        ));
        let vp6 = Bytes::from_static(&[0x14, 0, 0, 0, 0]);
        assert_eq!(
            demux(TagKind::Video, 0, &vp6),
            Err(FlvError::UnsupportedVideoCodec(4))
        );
        let mp3 = Bytes::from_static(&[0x2f, 0]);
        assert_eq!(
            demux(TagKind::Audio, 0, &mp3),
            Err(FlvError::UnsupportedSoundFormat(2))
        );
        assert_eq!(
            demux(TagKind::Audio, 0, &Bytes::from_static(&[0xaf])).map(|_| ()),
            Err(FlvError::TooShort {
                kind: TagKind::Audio,
                len: 1
            })
        );
        assert_eq!(demux(TagKind::Script, 0, &Bytes::new()), Ok(None));
    }
}
