//! H.264 elementary streams in the Annex B byte-stream format (ITU-T H.264 Annex B): start-code
//! splitting and grouping into pictures. Used for files we play out ourselves (the demo's clip,
//! the output slates), never for network input.
//!
//! Bounded and panic-free on any bytes: a file that does not parse is reported, not unwrapped.

use bytes::Bytes;

use super::sps::{SpsInfo, parse_sps};

pub const NAL_NON_IDR: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnexBError {
    #[error("no SPS and PPS")]
    NoParameterSets,
    #[error("unreadable SPS: {0}")]
    BadSps(String),
    #[error("no pictures")]
    NoPictures,
    #[error("the first picture is not an IDR")]
    NoLeadingKeyframe,
}

/// One picture: its NAL units (parameter sets and SEI included, in stream order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub nal_units: Vec<Bytes>,
    pub keyframe: bool,
}

/// A parsed stream: its first SPS and PPS and its pictures, the first of them an IDR.
#[derive(Debug, Clone)]
pub struct ElementaryStream {
    pub sps: Bytes,
    pub pps: Bytes,
    pub sps_info: SpsInfo,
    pub access_units: Vec<AccessUnit>,
}

impl ElementaryStream {
    pub fn parse(stream: Bytes) -> Result<ElementaryStream, AnnexBError> {
        let nal_units = split_annex_b(stream);
        let find = |kind: u8| nal_units.iter().find(|n| nal_type(n) == kind).cloned();
        let (Some(sps), Some(pps)) = (find(NAL_SPS), find(NAL_PPS)) else {
            return Err(AnnexBError::NoParameterSets);
        };
        let sps_info = parse_sps(&sps).map_err(|e| AnnexBError::BadSps(e.to_string()))?;
        let access_units = group_access_units(nal_units);
        match access_units.first() {
            None => return Err(AnnexBError::NoPictures),
            Some(first) if !first.keyframe => return Err(AnnexBError::NoLeadingKeyframe),
            Some(_) => {}
        }
        Ok(ElementaryStream {
            sps,
            pps,
            sps_info,
            access_units,
        })
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
    while let Some(window) = data.get(i..i + 3) {
        if window == [0, 0, 1] {
            let code_start = if i > 0 && data.get(i - 1) == Some(&0) {
                i - 1
            } else {
                i
            };
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

/// Groups NAL units into pictures: everything up to and including a picture's slices. A slice
/// whose `first_mb_in_slice` is 0 (its first bit set: ue(v) 0 is the single bit `1`) starts a
/// new picture, so multi-slice pictures stay one access unit. Trailing non-slice NAL units are
/// dropped.
pub fn group_access_units(nal_units: Vec<Bytes>) -> Vec<AccessUnit> {
    let mut units: Vec<AccessUnit> = Vec::new();
    let mut pending: Vec<Bytes> = Vec::new();
    let mut open: Option<AccessUnit> = None;
    for nal in nal_units {
        let kind = nal_type(&nal);
        if kind == NAL_IDR || kind == NAL_NON_IDR {
            let starts_picture = nal.get(1).is_some_and(|b| b & 0x80 != 0);
            match open.as_mut() {
                Some(unit) if !starts_picture && pending.is_empty() => {
                    unit.nal_units.push(nal);
                    continue;
                }
                _ => {}
            }
            if let Some(done) = open.take() {
                units.push(done);
            }
            pending.push(nal);
            open = Some(AccessUnit {
                nal_units: std::mem::take(&mut pending),
                keyframe: kind == NAL_IDR,
            });
        } else {
            pending.push(nal);
        }
    }
    units.extend(open);
    units
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn pictures_end_at_their_slices() {
        let nal = |b: u8, first_mb_zero: bool| {
            Bytes::copy_from_slice(&[b, if first_mb_zero { 0x88 } else { 0x48 }])
        };
        let units = group_access_units(vec![
            nal(0x67, true),
            nal(0x68, true),
            nal(0x06, true),
            nal(0x65, true),
            nal(0x65, false), // second slice of the IDR
            nal(0x41, true),
            nal(0x67, true),
        ]);
        assert_eq!(units.len(), 2);
        assert_eq!(units[0].nal_units.len(), 5);
        assert!(units[0].keyframe && !units[1].keyframe);
    }

    #[test]
    fn a_stream_without_parameter_sets_is_an_error() {
        assert_eq!(
            ElementaryStream::parse(Bytes::from_static(&[0, 0, 1, 0x65, 0x88])).unwrap_err(),
            AnnexBError::NoParameterSets
        );
    }
}
