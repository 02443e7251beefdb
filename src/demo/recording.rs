//! What the demo's RTMP receiver got, written as an FLV file (Adobe FLV spec v10, annex E) and
//! counted for the summary.
//!
//! Tags are written as they arrive, after a header and an `onMetaData` script tag whose
//! `duration`, `width` and `height` are placeholders patched in place when the recording ends
//! (what ffmpeg's FLV muxer does), so memory stays flat however long the demo runs. A publisher
//! that reconnects starts its timestamps again; the next connection's tags are moved to follow
//! the last one written, so the file's timeline never goes back.

use std::io::{self, Seek, SeekFrom, Write};
use std::time::Duration;

use bytes::Bytes;

use crate::frame::{AudioFormat, MediaFrame};
use crate::media::sps::parse_sps;
use crate::rtmp::amf0::{self, Property};
use crate::rtmp::flv::{FlvTag, TagKind, demux};
use crate::rtmp::flv_file::{file_header, write_tag};

/// Counts for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordingStats {
    pub video_frames: u64,
    pub keyframes: u64,
    pub audio_frames: u64,
    /// Whether the first video frame written was a keyframe (None before any).
    pub first_video_keyframe: Option<bool>,
    pub audio_format: Option<AudioFormat>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Timestamp of the last tag in the file, in milliseconds from the first.
    pub last_ms: u32,
    /// Tags the demuxer could not read (counted, still written).
    pub unreadable_tags: u64,
}

impl RecordingStats {
    pub fn duration(&self) -> Duration {
        Duration::from_millis(u64::from(self.last_ms))
    }
}

/// Byte offsets, in the file, of the metadata numbers patched at the end.
#[derive(Debug, Clone, Copy)]
struct Placeholders {
    duration: u64,
    width: u64,
    height: u64,
}

/// Writes an FLV file from the tags of one or more publish connections.
pub struct FlvRecorder<W: Write + Seek> {
    out: W,
    stats: RecordingStats,
    placeholders: Option<Placeholders>,
    /// Added to incoming timestamps of the current connection; None until its first tag.
    shift: Option<i64>,
    written_any: bool,
}

impl<W: Write + Seek> FlvRecorder<W> {
    pub fn new(out: W) -> Self {
        FlvRecorder {
            out,
            stats: RecordingStats::default(),
            placeholders: None,
            shift: None,
            written_any: false,
        }
    }

    pub fn stats(&self) -> &RecordingStats {
        &self.stats
    }

    /// A new publish connection: its first tag will follow the last one written.
    pub fn new_connection(&mut self) {
        self.shift = None;
    }

    /// Writes one audio or video tag body as received over RTMP.
    pub fn push(&mut self, kind: TagKind, timestamp_ms: u32, body: Bytes) -> io::Result<()> {
        if self.placeholders.is_none() {
            self.placeholders = Some(self.write_head()?);
        }
        let shift = *self.shift.get_or_insert_with(|| {
            let next = if self.written_any {
                i64::from(self.stats.last_ms) + 1
            } else {
                0
            };
            next - i64::from(timestamp_ms)
        });
        let ts = (i64::from(timestamp_ms) + shift).clamp(0, i64::from(u32::MAX)) as u32;
        self.count(kind, ts, &body);
        let mut tag = Vec::with_capacity(body.len() + 15);
        write_tag(&mut tag, &FlvTag::from_body(kind, ts, body)).map_err(io::Error::other)?;
        self.out.write_all(&tag)?;
        self.written_any = true;
        self.stats.last_ms = self.stats.last_ms.max(ts);
        Ok(())
    }

    fn count(&mut self, kind: TagKind, ts: u32, body: &Bytes) {
        let stats = &mut self.stats;
        match demux(kind, ts, body) {
            Ok(Some(MediaFrame::Video { keyframe, .. })) => {
                stats.video_frames += 1;
                stats.keyframes += u64::from(keyframe);
                stats.first_video_keyframe.get_or_insert(keyframe);
            }
            Ok(Some(MediaFrame::VideoConfig(avcc))) => {
                if let Some(info) = avcc_sps(&avcc).and_then(|sps| parse_sps(sps).ok()) {
                    stats.width = Some(info.width);
                    stats.height = Some(info.height);
                }
            }
            Ok(Some(MediaFrame::Audio { format, .. })) => {
                stats.audio_frames += 1;
                stats.audio_format = Some(format);
            }
            Ok(Some(MediaFrame::AudioConfig(_))) => stats.audio_format = Some(AudioFormat::Aac),
            Ok(_) => {}
            Err(_) => stats.unreadable_tags += 1,
        }
    }

    /// File header and an `onMetaData` tag with zeroed numbers to patch later.
    fn write_head(&mut self) -> io::Result<Placeholders> {
        let start = self.out.stream_position()?;
        self.out.write_all(&file_header(true, true))?;
        let mut body = Vec::with_capacity(128);
        amf0::write_string(&mut body, "onMetaData");
        amf0::write_ecma_array(
            &mut body,
            &[
                ("duration", Property::Number(0.0)),
                ("width", Property::Number(0.0)),
                ("height", Property::Number(0.0)),
                ("encoder", Property::String("sipcast demo".into())),
            ],
        );
        // Tag header (11 bytes) precedes the body; a number's 8 bytes follow its 1-byte marker.
        let body_at = start + file_header(true, true).len() as u64 + 11;
        let value_at = |key: &str| -> u64 {
            let needle = [&(key.len() as u16).to_be_bytes()[..], key.as_bytes()].concat();
            let found = body
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap_or(0);
            body_at + (found + needle.len() + 1) as u64
        };
        let placeholders = Placeholders {
            duration: value_at("duration"),
            width: value_at("width"),
            height: value_at("height"),
        };
        let mut tag = Vec::with_capacity(body.len() + 15);
        write_tag(
            &mut tag,
            &FlvTag::from_body(TagKind::Script, 0, Bytes::from(body)),
        )
        .map_err(io::Error::other)?;
        self.out.write_all(&tag)?;
        Ok(placeholders)
    }

    /// Patches duration and picture size into the metadata and hands the writer back.
    pub fn finish(mut self) -> io::Result<(W, RecordingStats)> {
        if let Some(p) = self.placeholders {
            let end = self.out.stream_position()?;
            let stats = &self.stats;
            for (at, value) in [
                (p.duration, stats.duration().as_secs_f64()),
                (p.width, f64::from(stats.width.unwrap_or(0))),
                (p.height, f64::from(stats.height.unwrap_or(0))),
            ] {
                self.out.seek(SeekFrom::Start(at))?;
                self.out.write_all(&value.to_be_bytes())?;
            }
            self.out.seek(SeekFrom::Start(end))?;
        }
        self.out.flush()?;
        Ok((self.out, self.stats))
    }
}

/// The first SPS of an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1).
fn avcc_sps(avcc: &[u8]) -> Option<&[u8]> {
    if avcc.get(5)? & 0x1f == 0 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([*avcc.get(6)?, *avcc.get(7)?]));
    avcc.get(8..8 + len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::StreamMetadata;
    use crate::media::avcc::build_avcc;
    use crate::rtmp::flv::mux;
    use crate::rtmp::flv_file::FlvReader;
    use std::io::Cursor;

    fn frames() -> Vec<MediaFrame> {
        let clip = super::super::clip::Clip::bundled().unwrap();
        let avcc = build_avcc(&clip.sps, &clip.pps, &clip.sps_info);
        let video = |dts_ms, keyframe| MediaFrame::Video {
            dts_ms,
            cts_ms: 0,
            keyframe,
            data: Bytes::from_static(&[0, 0, 0, 1, 0x65]),
        };
        let audio = |ts_ms| MediaFrame::Audio {
            ts_ms,
            format: AudioFormat::Aac,
            data: Bytes::from_static(&[1, 2]),
        };
        vec![
            MediaFrame::Metadata(StreamMetadata::default()),
            MediaFrame::VideoConfig(avcc),
            MediaFrame::AudioConfig(Bytes::from_static(&[0x15, 0x88])),
            video(1000, true),
            audio(1010),
            video(1066, false),
            audio(1033),
        ]
    }

    #[test]
    fn counts_frames_and_patches_duration_and_size_into_the_metadata() {
        let mut recorder = FlvRecorder::new(Cursor::new(Vec::new()));
        for connection in 0..2 {
            recorder.new_connection();
            for frame in frames() {
                let tag = mux(&frame, 1000);
                if tag.kind != TagKind::Script {
                    recorder
                        .push(tag.kind, tag.timestamp_ms, tag.body())
                        .unwrap();
                }
            }
            assert_eq!(recorder.stats().last_ms, 66 + connection * 67);
        }
        let (file, stats) = recorder.finish().unwrap();
        assert_eq!(
            (stats.video_frames, stats.keyframes, stats.audio_frames),
            (4, 2, 4)
        );
        assert_eq!(stats.first_video_keyframe, Some(true));
        assert_eq!((stats.width, stats.height), (Some(320), Some(240)));
        assert_eq!(stats.audio_format, Some(AudioFormat::Aac));

        let tags: Vec<FlvTag> = FlvReader::new(Bytes::from(file.into_inner()))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(tags.len(), 1 + 12);
        let meta = &tags[0].body();
        let number_after = |key: &str| {
            let at = meta
                .windows(key.len())
                .position(|w| w == key.as_bytes())
                .unwrap()
                + key.len()
                + 1;
            f64::from_be_bytes(meta[at..at + 8].try_into().unwrap())
        };
        assert_eq!(number_after("duration"), 0.133);
        assert_eq!(
            (number_after("width"), number_after("height")),
            (320.0, 240.0)
        );
        let timestamps: Vec<u32> = tags[1..].iter().map(|t| t.timestamp_ms).collect();
        assert_eq!(
            timestamps,
            vec![0, 0, 0, 10, 66, 33, 67, 67, 67, 77, 133, 100]
        );
    }
}
