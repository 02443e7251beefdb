//! Slates: the picture targets show while the call gives no usable video (dialing, ringing,
//! IVR or lobby, audio-only, on hold, video lost, redial backoff).
//!
//! A slate is a short pre-encoded H.264 loop (an IDR then skip-like P frames; a few KB), played
//! at [`SLATE_FPS`] and restarted at its IDR, so no video encoder runs per stream. sipcast
//! ships slates at common sizes and picks the one matching the call's last resolution; a spec
//! may name its own file (Annex B, IDR first; the README gives the ffmpeg command).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};

use crate::media::annexb::{AnnexBError, ElementaryStream, NAL_IDR, NAL_NON_IDR, nal_type};
use crate::media::avcc::build_avcc;

/// Slates play at this rate; an elementary stream carries no timing of its own.
pub const SLATE_FPS: u32 = 10;
/// The longest a slate may go between IDRs (including its loop back to the first): what CDN
/// ingests accept as a keyframe interval.
pub const MAX_SLATE_GOP_FRAMES: usize = 2 * SLATE_FPS as usize;
/// A slate file larger than this is refused unread.
pub const MAX_SLATE_FILE_BYTES: u64 = 4 << 20;

const BUILT_IN: &[(u32, u32, &[u8])] = &[
    (
        320,
        240,
        include_bytes!("../../assets/slates/slate_320x240.h264"),
    ),
    (
        640,
        360,
        include_bytes!("../../assets/slates/slate_640x360.h264"),
    ),
    (
        1280,
        720,
        include_bytes!("../../assets/slates/slate_1280x720.h264"),
    ),
    (
        1920,
        1080,
        include_bytes!("../../assets/slates/slate_1920x1080.h264"),
    ),
];
/// The built-in slate used before any call told us its resolution.
const DEFAULT_SIZE: (u32, u32) = (1280, 720);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlateError {
    #[error("cannot read slate file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("slate file {path} is larger than {MAX_SLATE_FILE_BYTES} bytes")]
    TooLarge { path: String },
    #[error("slate {0}")]
    Stream(#[from] AnnexBError),
    #[error(
        "slate goes {0} frames without an IDR (at most {MAX_SLATE_GOP_FRAMES} at {SLATE_FPS} fps)"
    )]
    GopTooLong(usize),
}

/// One picture of a slate, as AVCC (4-byte length-prefixed NAL units, slices only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlateFrame {
    pub data: Bytes,
    pub keyframe: bool,
}

/// A playable slate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slate {
    pub width: u32,
    pub height: u32,
    /// The AVC sequence header (AVCDecoderConfigurationRecord).
    pub avcc: Bytes,
    /// The loop; the first frame is an IDR.
    pub frames: Vec<SlateFrame>,
}

impl Slate {
    /// Parses an Annex B elementary stream into a slate.
    pub fn parse(stream: Bytes) -> Result<Slate, SlateError> {
        let es = ElementaryStream::parse(stream)?;
        let frames: Vec<SlateFrame> = es
            .access_units
            .iter()
            .map(|unit| {
                let slices = unit
                    .nal_units
                    .iter()
                    .filter(|n| matches!(nal_type(n), NAL_IDR | NAL_NON_IDR));
                let mut data = BytesMut::new();
                for nal in slices {
                    data.put_u32(u32::try_from(nal.len()).unwrap_or(u32::MAX));
                    data.put_slice(nal);
                }
                SlateFrame {
                    data: data.freeze(),
                    keyframe: unit.keyframe,
                }
            })
            .collect();
        let longest = longest_gop(&frames);
        if longest > MAX_SLATE_GOP_FRAMES {
            return Err(SlateError::GopTooLong(longest));
        }
        Ok(Slate {
            width: es.sps_info.width,
            height: es.sps_info.height,
            avcc: build_avcc(&es.sps, &es.pps, &es.sps_info),
            frames,
        })
    }

    /// Reads a slate file (bounded in size).
    pub fn load(path: &Path) -> Result<Slate, SlateError> {
        let shown = path.display().to_string();
        let read_error = |e: std::io::Error| SlateError::Read {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(read_error)?;
        if !meta.is_file() {
            return Err(SlateError::Read {
                path: shown,
                reason: "not a regular file".into(),
            });
        }
        if meta.len() > MAX_SLATE_FILE_BYTES {
            return Err(SlateError::TooLarge { path: shown });
        }
        let bytes = std::fs::read(path).map_err(read_error)?;
        Slate::parse(Bytes::from(bytes))
    }

    /// The built-in slate closest to `size` (same size, else the nearest height), or the
    /// default size when the call's resolution is not known yet.
    pub fn built_in(size: Option<(u32, u32)>) -> Arc<Slate> {
        static PARSED: OnceLock<Vec<Arc<Slate>>> = OnceLock::new();
        let all = PARSED.get_or_init(|| {
            BUILT_IN
                .iter()
                .filter_map(|(_, _, bytes)| Slate::parse(Bytes::from_static(bytes)).ok())
                .map(Arc::new)
                .collect()
        });
        let (width, height) = size.unwrap_or(DEFAULT_SIZE);
        let best = all.iter().min_by_key(|s| {
            (
                s.width != width || s.height != height,
                s.height.abs_diff(height),
            )
        });
        match best {
            Some(slate) => slate.clone(),
            // Unreachable with the bundled files (a unit test parses every one).
            None => Arc::new(Slate::fallback()),
        }
    }

    /// A slate that is one 16x16 black IDR, for when the bundled ones cannot be parsed.
    fn fallback() -> Slate {
        Slate {
            width: 16,
            height: 16,
            avcc: Bytes::new(),
            frames: Vec::new(),
        }
    }
}

/// The most frames from one IDR to the next, counting the loop back to the first frame.
fn longest_gop(frames: &[SlateFrame]) -> usize {
    let keys: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.keyframe)
        .map(|(i, _)| i)
        .collect();
    let (Some(&first), Some(&last)) = (keys.first(), keys.last()) else {
        return frames.len();
    };
    let inner = keys.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    inner.max(frames.len() - last + first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_slate_parses_with_an_idr_first_and_a_short_gop() {
        for (width, height, bytes) in BUILT_IN {
            let slate = Slate::parse(Bytes::from_static(bytes)).unwrap();
            assert_eq!((slate.width, slate.height), (*width, *height));
            assert!(slate.frames[0].keyframe);
            assert!(longest_gop(&slate.frames) <= MAX_SLATE_GOP_FRAMES);
            let total: usize = slate.frames.iter().map(|f| f.data.len()).sum();
            assert!(total < 20_000, "{width}x{height} slate is {total} bytes");
            assert_eq!(slate.avcc[0], 1, "an avcC record");
        }
    }

    #[test]
    fn the_built_in_slate_follows_the_call_resolution() {
        let pick = |size| {
            let s = Slate::built_in(size);
            (s.width, s.height)
        };
        assert_eq!(pick(None), (1280, 720));
        assert_eq!(pick(Some((320, 240))), (320, 240));
        assert_eq!(pick(Some((1920, 1080))), (1920, 1080));
        assert_eq!(pick(Some((704, 400))), (640, 360));
    }

    #[test]
    fn a_slate_without_an_idr_for_too_long_is_refused() {
        let k = |keyframe| SlateFrame {
            data: Bytes::new(),
            keyframe,
        };
        let mut frames = vec![k(true)];
        frames.extend((0..30).map(|_| k(false)));
        assert_eq!(longest_gop(&frames), 31);
        frames[15].keyframe = true;
        assert_eq!(longest_gop(&frames), 16);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [&b""[..], b"\0\0\x01", b"\0\0\x01\x67\xff", &[0xff; 64]] {
            assert!(Slate::parse(Bytes::copy_from_slice(bytes)).is_err());
        }
    }
}
