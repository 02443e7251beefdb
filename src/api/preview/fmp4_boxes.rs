//! The ISO BMFF boxes of the preview's fragmented MP4 (ISO/IEC 14496-12 §8; `avcC` per
//! 14496-15 §5.3.3, `esds` per 14496-14 §5.6): writers only, each the size-prefixed bytes of one
//! box. [`super::Fmp4Muxer`] decides what goes in them.

use bytes::{BufMut, BytesMut};

use super::{
    AUDIO_TRACK, AacParams, AudioSample, TrackConfig, VIDEO_TIMESCALE, VIDEO_TRACK, VideoSample,
};

/// One fragment's samples per track, with their durations (in each track's timescale).
pub(super) struct Tracks<'a> {
    pub video: &'a [VideoSample],
    pub video_durations: &'a [u32],
    pub audio: &'a [AudioSample],
    pub audio_durations: &'a [u32],
    pub audio_base: u64,
}

/// Writes a box: size, type, then whatever `body` writes.
pub(super) fn write_box(out: &mut BytesMut, kind: &[u8; 4], body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_u32(0);
    out.put_slice(kind);
    body(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    if let Some(slot) = out.get_mut(start..start + 4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
}

/// A full box: version and flags before the body.
fn write_full_box(
    out: &mut BytesMut,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut BytesMut),
) {
    write_box(out, kind, |b| {
        b.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(b);
    });
}

const MATRIX: [u32; 9] = [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000];

pub(super) fn mvhd(out: &mut BytesMut) {
    write_full_box(out, b"mvhd", 0, 0, |b| {
        b.put_u32(0); // creation time
        b.put_u32(0); // modification time
        b.put_u32(1000); // timescale
        b.put_u32(0); // duration: unknown (live)
        b.put_u32(0x0001_0000); // rate 1.0
        b.put_u16(0x0100); // volume 1.0
        b.put_bytes(0, 10);
        MATRIX.iter().for_each(|m| b.put_u32(*m));
        b.put_bytes(0, 24);
        b.put_u32(AUDIO_TRACK + 1); // next track id
    });
}

fn tkhd(out: &mut BytesMut, track: u32, volume: u16, width: u16, height: u16) {
    // Flags: enabled, in movie, in preview.
    write_full_box(out, b"tkhd", 0, 0x7, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(track);
        b.put_u32(0);
        b.put_u32(0); // duration
        b.put_bytes(0, 8);
        b.put_u16(0); // layer
        b.put_u16(0); // alternate group
        b.put_u16(volume);
        b.put_u16(0);
        MATRIX.iter().for_each(|m| b.put_u32(*m));
        b.put_u32(u32::from(width) << 16);
        b.put_u32(u32::from(height) << 16);
    });
}

fn mdhd_hdlr(out: &mut BytesMut, timescale: u32, handler: &[u8; 4], name: &str) {
    write_full_box(out, b"mdhd", 0, 0, |b| {
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(timescale);
        b.put_u32(0);
        b.put_u16(0x55c4); // language "und"
        b.put_u16(0);
    });
    write_full_box(out, b"hdlr", 0, 0, |b| {
        b.put_u32(0);
        b.put_slice(handler);
        b.put_bytes(0, 12);
        b.put_slice(name.as_bytes());
        b.put_u8(0);
    });
}

/// `dinf` and an `stbl` with the sample entry and empty tables (the samples are in fragments).
fn dinf_stbl(out: &mut BytesMut, entry: impl FnOnce(&mut BytesMut)) {
    write_box(out, b"dinf", |b| {
        write_full_box(b, b"dref", 0, 0, |b| {
            b.put_u32(1);
            write_full_box(b, b"url ", 0, 1, |_| {});
        });
    });
    write_box(out, b"stbl", |b| {
        write_full_box(b, b"stsd", 0, 0, |b| {
            b.put_u32(1);
            entry(b);
        });
        write_full_box(b, b"stts", 0, 0, |b| b.put_u32(0));
        write_full_box(b, b"stsc", 0, 0, |b| b.put_u32(0));
        write_full_box(b, b"stsz", 0, 0, |b| {
            b.put_u32(0);
            b.put_u32(0);
        });
        write_full_box(b, b"stco", 0, 0, |b| b.put_u32(0));
    });
}

pub(super) fn video_trak(out: &mut BytesMut, config: &TrackConfig) {
    write_box(out, b"trak", |b| {
        tkhd(b, VIDEO_TRACK, 0, config.width, config.height);
        write_box(b, b"mdia", |b| {
            mdhd_hdlr(b, VIDEO_TIMESCALE, b"vide", "sipcast video");
            write_box(b, b"minf", |b| {
                write_full_box(b, b"vmhd", 0, 1, |b| b.put_bytes(0, 8));
                dinf_stbl(b, |b| {
                    write_box(b, b"avc1", |b| {
                        b.put_bytes(0, 6);
                        b.put_u16(1); // data reference index
                        b.put_bytes(0, 16);
                        b.put_u16(config.width);
                        b.put_u16(config.height);
                        b.put_u32(0x0048_0000); // 72 dpi
                        b.put_u32(0x0048_0000);
                        b.put_u32(0);
                        b.put_u16(1); // frame count
                        b.put_bytes(0, 32); // compressor name
                        b.put_u16(0x0018); // depth
                        b.put_i16(-1);
                        write_box(b, b"avcC", |b| b.put_slice(&config.avc_config));
                    });
                });
            });
        });
    });
}

pub(super) fn audio_trak(out: &mut BytesMut, asc: &[u8], audio: &AacParams) {
    write_box(out, b"trak", |b| {
        tkhd(b, AUDIO_TRACK, 0x0100, 0, 0);
        write_box(b, b"mdia", |b| {
            mdhd_hdlr(b, audio.sample_rate, b"soun", "sipcast audio");
            write_box(b, b"minf", |b| {
                write_full_box(b, b"smhd", 0, 0, |b| b.put_u32(0));
                dinf_stbl(b, |b| {
                    write_box(b, b"mp4a", |b| {
                        b.put_bytes(0, 6);
                        b.put_u16(1);
                        b.put_bytes(0, 8);
                        b.put_u16(audio.channels);
                        b.put_u16(16); // sample size
                        b.put_u32(0);
                        // 16.16 fixed point; rates above 65535 Hz do not fit and are not AAC-LC.
                        b.put_u32(audio.sample_rate.min(0xffff) << 16);
                        esds(b, asc);
                    });
                });
            });
        });
    });
}

/// `esds` (ISO 14496-1 §7.2.6.5): ES_Descriptor ⊃ DecoderConfigDescriptor ⊃ the ASC.
fn esds(out: &mut BytesMut, asc: &[u8]) {
    // Every length fits one byte: the ASC is at most 127 bytes (checked in `new`) and the
    // whole descriptor is 3 + (2 + 13 + 2 + asc) + 3 bytes.
    let asc_len = asc.len() as u8;
    write_full_box(out, b"esds", 0, 0, |b| {
        b.put_u8(0x03); // ES_Descriptor
        b.put_u8(3 + 2 + 13 + 2 + asc_len + 3);
        b.put_u16(0); // ES_ID
        b.put_u8(0); // flags
        b.put_u8(0x04); // DecoderConfigDescriptor
        b.put_u8(13 + 2 + asc_len);
        b.put_u8(0x40); // MPEG-4 audio
        b.put_u8(0x15); // audio stream, upstream 0, reserved 1
        b.put_bytes(0, 3); // buffer size
        b.put_u32(0); // max bitrate
        b.put_u32(0); // average bitrate
        b.put_u8(0x05); // DecoderSpecificInfo
        b.put_u8(asc_len);
        b.put_slice(asc);
        b.put_u8(0x06); // SLConfigDescriptor
        b.put_u8(1);
        b.put_u8(0x02);
    });
}

pub(super) fn trex(out: &mut BytesMut, track: u32) {
    write_full_box(out, b"trex", 0, 0, |b| {
        b.put_u32(track);
        b.put_u32(1);
        b.put_u32(0);
        b.put_u32(0);
        b.put_u32(0);
    });
}

/// Sample flags (ISO 14496-12 §8.8.3.1): a keyframe depends on nothing; others do and are not
/// sync samples.
pub(super) const KEYFRAME_FLAGS: u32 = 0x0200_0000;
pub(super) const DELTA_FLAGS: u32 = 0x0101_0000;

pub(super) fn moof(out: &mut BytesMut, sequence: u32, tracks: &Tracks<'_>, moof_size: usize) {
    let video_bytes: usize = tracks.video.iter().map(|s| s.data.len()).sum();
    // Data starts after the moof and the mdat header.
    let video_offset = moof_size + 8;
    let audio_offset = video_offset + video_bytes;
    write_box(out, b"moof", |b| {
        write_full_box(b, b"mfhd", 0, 0, |b| b.put_u32(sequence));
        write_box(b, b"traf", |b| {
            // default-base-is-moof
            write_full_box(b, b"tfhd", 0, 0x02_0000, |b| b.put_u32(VIDEO_TRACK));
            let base = tracks.video.first().map_or(0, |s| s.dts.max(0) as u64);
            write_full_box(b, b"tfdt", 1, 0, |b| b.put_u64(base));
            // data offset, duration, size, flags, composition offset (signed: version 1)
            write_full_box(b, b"trun", 1, 0x0f01, |b| {
                b.put_u32(u32::try_from(tracks.video.len()).unwrap_or(0));
                b.put_i32(i32::try_from(video_offset).unwrap_or(0));
                for (s, duration) in tracks.video.iter().zip(tracks.video_durations) {
                    b.put_u32(*duration);
                    b.put_u32(u32::try_from(s.data.len()).unwrap_or(0));
                    b.put_u32(if s.keyframe {
                        KEYFRAME_FLAGS
                    } else {
                        DELTA_FLAGS
                    });
                    b.put_i32(s.cts);
                }
            });
        });
        if !tracks.audio.is_empty() {
            write_box(b, b"traf", |b| {
                write_full_box(b, b"tfhd", 0, 0x02_0000, |b| b.put_u32(AUDIO_TRACK));
                write_full_box(b, b"tfdt", 1, 0, |b| b.put_u64(tracks.audio_base));
                // data offset, duration, size
                write_full_box(b, b"trun", 0, 0x0301, |b| {
                    b.put_u32(u32::try_from(tracks.audio.len()).unwrap_or(0));
                    b.put_i32(i32::try_from(audio_offset).unwrap_or(0));
                    for (s, duration) in tracks.audio.iter().zip(tracks.audio_durations) {
                        b.put_u32(*duration);
                        b.put_u32(u32::try_from(s.data.len()).unwrap_or(0));
                    }
                });
            });
        }
    });
}
