//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.2.4.1), the `avcC` box FLV carries as the
//! AVC sequence header, built from one SPS and one PPS with 4-byte NAL length fields.

use bytes::{BufMut, Bytes, BytesMut};

use super::sps::SpsInfo;

/// Profiles whose records carry the chroma-format and bit-depth extension (§5.3.3.1.2).
fn has_extension(profile_idc: u8) -> bool {
    matches!(profile_idc, 100 | 110 | 122 | 144)
}

/// Builds the record. Parameter sets are at most 64 KiB by construction (RTP packet sizes), and
/// longer ones are refused by the depacketizer before they get here.
pub fn build_avcc(sps: &[u8], pps: &[u8], info: &SpsInfo) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + sps.len() + pps.len());
    out.put_u8(1); // configurationVersion
    out.put_u8(info.profile_idc);
    out.put_u8(info.constraint_flags);
    out.put_u8(info.level_idc);
    out.put_u8(0xfc | 3); // reserved '111111', lengthSizeMinusOne = 3
    out.put_u8(0xe0 | 1); // reserved '111', numOfSequenceParameterSets = 1
    out.put_u16(sps.len() as u16);
    out.put_slice(sps);
    out.put_u8(1); // numOfPictureParameterSets
    out.put_u16(pps.len() as u16);
    out.put_slice(pps);
    if has_extension(info.profile_idc) {
        out.put_u8(0xfc | (info.chroma_format_idc as u8 & 3));
        out.put_u8(0xf8 | (info.bit_depth_luma_minus8 as u8 & 7));
        out.put_u8(0xf8 | (info.bit_depth_chroma_minus8 as u8 & 7));
        out.put_u8(0); // numOfSequenceParameterSetExt
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::sps::parse_sps;
    use crate::media::sps::tests::{PPS, SPS_320X240};
    use h264_reader::avcc::AvcDecoderConfigurationRecord;
    use h264_reader::nal::sps::SeqParameterSet;
    use h264_reader::nal::{Nal, RefNal};

    #[test]
    fn h264_reader_parses_our_record_back() {
        let info = parse_sps(SPS_320X240).unwrap();
        let avcc = build_avcc(SPS_320X240, PPS, &info);
        let record = AvcDecoderConfigurationRecord::try_from(&avcc[..]).unwrap();
        assert_eq!(record.length_size_minus_one(), 3);
        assert_eq!(record.avc_level_indication().level_idc(), 13);
        let sps: Vec<_> = record.sequence_parameter_sets().collect();
        assert_eq!(sps.len(), 1);
        let nal = RefNal::new(sps[0].as_ref().unwrap(), &[], true);
        let parsed = SeqParameterSet::from_bits(nal.rbsp_bits()).unwrap();
        assert_eq!(parsed.pixel_dimensions().unwrap(), (320, 240));
        assert_eq!(record.picture_parameter_sets().count(), 1);
        record.create_context().unwrap();
    }

    #[test]
    fn high_profile_records_carry_the_extension() {
        let mut info = parse_sps(SPS_320X240).unwrap();
        info.profile_idc = 100;
        let avcc = build_avcc(SPS_320X240, PPS, &info);
        assert_eq!(&avcc[avcc.len() - 4..], &[0xfd, 0xf8, 0xf8, 0x00]);
    }
}
