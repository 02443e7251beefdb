//! The bundled demo clip (`testdata/demo/`, made by the ffmpeg commands in its README): an
//! H.264 Annex-B elementary stream (ITU-T H.264 Annex B byte stream) and raw G.711 µ-law.
//!
//! The Annex-B splitter is bounded and never panics; it is only ever fed the bundled bytes,
//! but a clip that does not parse is reported, not unwrapped.

use base64::Engine;
use bytes::Bytes;

use crate::media::sps::{SpsInfo, parse_sps};

const BUNDLED_H264: &[u8] = include_bytes!("../../testdata/demo/clip.h264");
const BUNDLED_ULAW: &[u8] = include_bytes!("../../testdata/demo/clip.ulaw");
/// The rate the clip was encoded at (`-r 15`); an elementary stream carries no timing.
const BUNDLED_FPS: u32 = 15;

const NAL_NON_IDR: u8 = 1;
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClipError {
    #[error("the clip has no SPS and PPS")]
    NoParameterSets,
    #[error("the clip's SPS is unreadable: {0}")]
    BadSps(String),
    #[error("the clip has no pictures")]
    NoPictures,
    #[error("the clip's first picture is not an IDR")]
    NoLeadingKeyframe,
    #[error("the clip has no audio")]
    NoAudio,
}

/// One picture: its NAL units (parameter sets and SEI included, in stream order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub nal_units: Vec<Bytes>,
    pub keyframe: bool,
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
        let nal_units = split_annex_b(Bytes::from_static(h264));
        let find = |kind: u8| nal_units.iter().find(|n| nal_type(n) == kind).cloned();
        let (Some(sps), Some(pps)) = (find(NAL_SPS), find(NAL_PPS)) else {
            return Err(ClipError::NoParameterSets);
        };
        let sps_info = parse_sps(&sps).map_err(|e| ClipError::BadSps(e.to_string()))?;
        let access_units = group_access_units(nal_units);
        match access_units.first() {
            None => return Err(ClipError::NoPictures),
            Some(first) if !first.keyframe => return Err(ClipError::NoLeadingKeyframe),
            Some(_) => {}
        }
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

pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| b & 0x1f)
}

/// Splits an Annex-B byte stream at its 3- and 4-byte start codes. Empty NAL units are dropped;
/// bytes before the first start code are not a NAL unit and are skipped.
pub fn split_annex_b(stream: Bytes) -> Vec<Bytes> {
    let data = &stream[..];
    // (start of start code, start of NAL payload) for every start code.
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            let code_start = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
            starts.push((code_start, i + 3));
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(_, payload)) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&(code, _)| code);
        if end > payload {
            out.push(stream.slice(payload..end));
        }
    }
    out
}

/// Groups NAL units into pictures: everything up to and including a slice (one slice per
/// picture, as the bundled encoder writes it). Trailing non-slice NAL units are dropped.
fn group_access_units(nal_units: Vec<Bytes>) -> Vec<AccessUnit> {
    let mut units = Vec::new();
    let mut pending = Vec::new();
    for nal in nal_units {
        let kind = nal_type(&nal);
        pending.push(nal);
        if kind == NAL_IDR || kind == NAL_NON_IDR {
            units.push(AccessUnit {
                nal_units: std::mem::take(&mut pending),
                keyframe: kind == NAL_IDR,
            });
        }
    }
    units
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
    fn annex_b_split_handles_both_start_codes_and_garbage() {
        let stream = Bytes::from_static(&[9, 9, 0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 1]);
        let nals = split_annex_b(stream);
        assert_eq!(
            nals,
            vec![
                Bytes::from_static(&[0x67, 1]),
                Bytes::from_static(&[0x68, 2])
            ]
        );
        for garbage in [&[][..], &[0, 0], &[0, 0, 1], &[1, 2, 3, 0, 0]] {
            let _ = split_annex_b(Bytes::copy_from_slice(garbage));
        }
    }

    #[test]
    fn pictures_end_at_their_slice() {
        let nal = |b: u8| Bytes::copy_from_slice(&[b, 0xaa]);
        let units = group_access_units(vec![
            nal(0x67),
            nal(0x68),
            nal(0x06),
            nal(0x65),
            nal(0x41),
            nal(0x67),
        ]);
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].nal_units.len(), 4);
        assert!(units[0].keyframe && !units[1].keyframe);
    }

    #[test]
    fn a_clip_without_parameter_sets_is_an_error() {
        assert_eq!(
            Clip::from_parts(&[0, 0, 1, 0x65, 1], b"x", 15).unwrap_err(),
            ClipError::NoParameterSets
        );
    }
}
