//! Just enough of an H.264 sequence parameter set (ITU-T H.264 §7.3.2.1.1) to fill FLV
//! metadata and the AVCDecoderConfigurationRecord: profile, level, chroma format, bit depths and
//! the cropped picture size. Emulation-prevention bytes (§7.4.1) are skipped while reading.
//! Every read is bounded; a truncated or absurd SPS is an error, never a panic.

use thiserror::Error;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SpsError {
    #[error("SPS ends early")]
    Truncated,
    #[error("SPS field {0} out of range")]
    OutOfRange(&'static str),
    #[error("NAL unit is not an SPS")]
    NotSps,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile_idc: u8,
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub chroma_format_idc: u32,
    pub bit_depth_luma_minus8: u32,
    pub bit_depth_chroma_minus8: u32,
    pub width: u32,
    pub height: u32,
}

/// Reads bits MSB-first from an RBSP, dropping the 0x03 of every 0x00 0x00 0x03 sequence.
struct BitReader<'a> {
    data: &'a [u8],
    byte: usize,
    bit: u8,
    zeros: u8,
    current: u8,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            byte: 0,
            bit: 8,
            zeros: 0,
            current: 0,
        }
    }

    fn bit(&mut self) -> Result<u32, SpsError> {
        if self.bit == 8 {
            let mut next = *self.data.get(self.byte).ok_or(SpsError::Truncated)?;
            self.byte += 1;
            if self.zeros >= 2 && next == 3 {
                next = *self.data.get(self.byte).ok_or(SpsError::Truncated)?;
                self.byte += 1;
                self.zeros = 0;
            }
            self.zeros = if next == 0 { self.zeros + 1 } else { 0 };
            self.current = next;
            self.bit = 0;
        }
        let value = (self.current >> (7 - self.bit)) & 1;
        self.bit += 1;
        Ok(u32::from(value))
    }

    fn bits(&mut self, count: u32) -> Result<u32, SpsError> {
        (0..count).try_fold(0, |acc, _| Ok((acc << 1) | self.bit()?))
    }

    /// Unsigned Exp-Golomb (§9.1); values beyond 2^31 are refused.
    fn ue(&mut self) -> Result<u32, SpsError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError::OutOfRange("exp-golomb"));
            }
        }
        Ok((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    fn se(&mut self) -> Result<i32, SpsError> {
        let code = self.ue()?;
        let magnitude = code.div_ceil(2) as i32;
        Ok(if code % 2 == 1 { magnitude } else { -magnitude })
    }
}

fn bounded(value: u32, max: u32, field: &'static str) -> Result<u32, SpsError> {
    if value > max {
        Err(SpsError::OutOfRange(field))
    } else {
        Ok(value)
    }
}

/// Parses an SPS NAL unit (header byte included).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, SpsError> {
    if nal.first().map(|h| h & 0x1f) != Some(7) {
        return Err(SpsError::NotSps);
    }
    let mut r = BitReader::new(nal.get(1..).unwrap_or_default());
    let profile_idc = r.bits(8)? as u8;
    let constraint_flags = r.bits(8)? as u8;
    let level_idc = r.bits(8)? as u8;
    bounded(r.ue()?, 31, "seq_parameter_set_id")?;
    let (mut chroma_format_idc, mut depth_luma, mut depth_chroma, mut separate_planes) =
        (1, 0, 0, false);
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format_idc = bounded(r.ue()?, 3, "chroma_format_idc")?;
        if chroma_format_idc == 3 {
            separate_planes = r.bit()? == 1;
        }
        depth_luma = bounded(r.ue()?, 6, "bit_depth_luma_minus8")?;
        depth_chroma = bounded(r.ue()?, 6, "bit_depth_chroma_minus8")?;
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for index in 0..lists {
                if r.bit()? == 1 {
                    skip_scaling_list(&mut r, if index < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    bounded(r.ue()?, 12, "log2_max_frame_num_minus4")?;
    match r.ue()? {
        0 => {
            bounded(r.ue()?, 12, "log2_max_pic_order_cnt_lsb_minus4")?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let cycle = bounded(r.ue()?, 255, "num_ref_frames_in_pic_order_cnt_cycle")?;
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return Err(SpsError::OutOfRange("pic_order_cnt_type")),
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = bounded(r.ue()?, 1023, "pic_width_in_mbs_minus1")? + 1;
    let height_units = bounded(r.ue()?, 1023, "pic_height_in_map_units_minus1")? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        left = bounded(r.ue()?, 8192, "frame_crop_left_offset")?;
        right = bounded(r.ue()?, 8192, "frame_crop_right_offset")?;
        top = bounded(r.ue()?, 8192, "frame_crop_top_offset")?;
        bottom = bounded(r.ue()?, 8192, "frame_crop_bottom_offset")?;
    }
    // Table 6-1 and equations 7-19..7-22: crop offsets count in chroma sample units.
    let array_type = if separate_planes {
        0
    } else {
        chroma_format_idc
    };
    let field_factor = 2 - frame_mbs_only;
    let (crop_x, crop_y) = match array_type {
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let width = (width_mbs * 16).checked_sub(crop_x * (left + right));
    let height = (height_units * 16 * field_factor).checked_sub(crop_y * (top + bottom));
    let (Some(width), Some(height)) = (width, height) else {
        return Err(SpsError::OutOfRange("frame cropping"));
    };
    Ok(SpsInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        chroma_format_idc,
        bit_depth_luma_minus8: depth_luma,
        bit_depth_chroma_minus8: depth_chroma,
        width,
        height,
    })
}

/// §7.3.2.1.1.1: only the deltas are read, to move past the list.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(SpsError::OutOfRange("delta_scale"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// x264 baseline 320x240 (as ffmpeg's RTP muxer puts it in sprop-parameter-sets).
    pub(crate) const SPS_320X240: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x42, 0xa4, 0x80,
    ];
    pub(crate) const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
    /// x264 high profile 1280x720, 4:2:0 8-bit.
    const SPS_HIGH_1280X720: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1, 0x83, 0x19, 0x60,
    ];

    /// x264 high profile 328x246: coded as 336x256 and cropped.
    const SPS_HIGH_328X246: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x50, 0x87, 0x96, 0x6c, 0x04, 0x40, 0x00, 0x00,
        0x03, 0x00, 0x40, 0x00, 0x00, 0x0c, 0x83, 0xc5, 0x0a, 0x65, 0x80,
    ];

    #[test]
    fn reads_baseline_dimensions() {
        let sps = parse_sps(SPS_320X240).unwrap();
        assert_eq!((sps.profile_idc, sps.level_idc), (66, 13));
        assert_eq!((sps.width, sps.height), (320, 240));
    }

    #[test]
    fn reads_high_profile_fields() {
        let sps = parse_sps(SPS_HIGH_1280X720).unwrap();
        assert_eq!(sps.profile_idc, 100);
        assert_eq!(sps.chroma_format_idc, 1);
        assert_eq!((sps.width, sps.height), (1280, 720));
    }

    #[test]
    fn applies_frame_cropping() {
        let sps = parse_sps(SPS_HIGH_328X246).unwrap();
        assert_eq!((sps.width, sps.height), (328, 246));
    }

    #[test]
    fn truncated_input_is_an_error_at_every_length() {
        // The fields we read end inside byte 8; the VUI after them is not needed.
        for len in 0..8 {
            assert!(parse_sps(&SPS_320X240[..len]).is_err(), "len {len}");
        }
        assert_eq!(parse_sps(PPS), Err(SpsError::NotSps));
    }
}
