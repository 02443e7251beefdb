//! The bundled demo clip (`testdata/demo/`, made by the ffmpeg commands in its README): an
//! H.264 Annex-B elementary stream (ITU-T H.264 Annex B byte stream) and raw G.711 µ-law.
//!
//! The Annex-B splitter is bounded and never panics; it is only ever fed the bundled bytes,
//! but a clip that does not parse is reported, not unwrapped.

use base64::Engine;
use bytes::Bytes;

pub use crate::media::annexb::{AccessUnit, nal_type, split_annex_b};
use crate::media::annexb::{AnnexBError, ElementaryStream};
use crate::media::sps::SpsInfo;

const BUNDLED_H264: &[u8] = include_bytes!("../../testdata/demo/clip.h264");
const BUNDLED_ULAW: &[u8] = include_bytes!("../../testdata/demo/clip.ulaw");
/// The rate the clip was encoded at (`-r 15`); an elementary stream carries no timing.
const BUNDLED_FPS: u32 = 15;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the clip's video: {0}")]
    Video(#[from] AnnexBError),
    #[error("the clip has no audio")]
    NoAudio,
}

/// A clip ready to packetize.
#[derive(Debug, Clone)]
pub struct Clip {
    pub access_units: Vec<AccessUnit>,
    pub fps: u32,
    pub sps: Bytes,
    pub pps: Bytes,
    pub sps_info: SpsInfo,
    /// G.711 µ-law samples at 8 kHz.
    pub ulaw: Bytes,
}

impl Clip {
    /// The clip committed under `testdata/demo/`.
    pub fn bundled() -> Result<Clip, ClipError> {
        Clip::from_parts(BUNDLED_H264, BUNDLED_ULAW, BUNDLED_FPS)
    }

    pub fn from_parts(
        h264: &'static [u8],
        ulaw: &'static [u8],
        fps: u32,
    ) -> Result<Clip, ClipError> {
        let ElementaryStream {
            sps,
            pps,
            sps_info,
            access_units,
        } = ElementaryStream::parse(Bytes::from_static(h264))?;
        if ulaw.is_empty() {
            return Err(ClipError::NoAudio);
        }
        Ok(Clip {
            access_units,
            fps: fps.max(1),
            sps,
            pps,
            sps_info,
            ulaw: Bytes::from_static(ulaw),
        })
    }

    /// `sprop-parameter-sets` for the SDP (RFC 6184 §8.1): base64 SPS, base64 PPS.
    pub fn sprop_parameter_sets(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD;
        format!("{},{}", b64.encode(&self.sps), b64.encode(&self.pps))
    }

    /// `profile-level-id` (RFC 6184 §8.1): profile_idc, constraint flags, level_idc in hex.
    pub fn profile_level_id(&self) -> String {
        let i = &self.sps_info;
        format!(
            "{:02x}{:02x}{:02x}",
            i.profile_idc, i.constraint_flags, i.level_idc
        )
    }

    pub fn keyframes(&self) -> usize {
        self.access_units.iter().filter(|a| a.keyframe).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_clip_is_320x240_with_a_keyframe_every_second() {
        let clip = Clip::bundled().unwrap();
        assert_eq!((clip.sps_info.width, clip.sps_info.height), (320, 240));
        assert_eq!(clip.access_units.len(), 60);
        assert_eq!(clip.keyframes(), 4);
        assert!(clip.access_units[0].keyframe);
        assert_eq!(clip.ulaw.len(), 4 * 8000);
        assert!(clip.profile_level_id().starts_with("42"));
        assert_eq!(clip.sprop_parameter_sets().split(',').count(), 2);
    }

    #[test]
    fn a_clip_without_parameter_sets_is_an_error() {
        assert_eq!(
            Clip::from_parts(&[0, 0, 1, 0x65, 1], b"x", 15).unwrap_err(),
            ClipError::Video(AnnexBError::NoParameterSets)
        );
    }
}
