//! RTP fixed header (RFC 3550 §5.1), with CSRC list, header extension (§5.3.1) and padding.
//!
//! Our own ~60-line parser rather than `rtp-rs`: it borrows the datagram (no copy), returns a
//! typed error for each way a packet can be malformed, and never panics on any input (fuzzed by
//! `fuzz/fuzz_targets/rtp_depacketize.rs`). A UDP datagram is always complete, so there is no
//! "incomplete" case here: a short packet is invalid.

use thiserror::Error;

/// Why a datagram is not an RTP packet we can use.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    #[error("RTP packet shorter than its {0}-byte header")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    Version(u8),
    #[error("RTP padding length {padding} exceeds the {available}-byte payload")]
    Padding { padding: usize, available: usize },
}

/// A parsed RTP packet borrowing its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// The payload without header, CSRCs, extension and padding.
    pub payload: &'a [u8],
}

const FIXED_HEADER: usize = 12;

impl<'a> RtpPacket<'a> {
    pub fn parse(datagram: &'a [u8]) -> Result<Self, RtpError> {
        let &[first, second, s0, s1, t0, t1, t2, t3, c0, c1, c2, c3, ..] = datagram else {
            return Err(RtpError::TooShort(FIXED_HEADER));
        };
        let version = first >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = first & 0x20 != 0;
        let has_extension = first & 0x10 != 0;
        let csrc_count = usize::from(first & 0x0f);
        let mut header = FIXED_HEADER + 4 * csrc_count;
        if has_extension {
            // Extension header: 16-bit profile, 16-bit length in 32-bit words (RFC 3550 §5.3.1).
            let &[_, _, hi, lo] = datagram
                .get(header..header + 4)
                .ok_or(RtpError::TooShort(header + 4))?
            else {
                return Err(RtpError::TooShort(header + 4));
            };
            header += 4 + 4 * usize::from(u16::from_be_bytes([hi, lo]));
        }
        let available = datagram
            .len()
            .checked_sub(header)
            .ok_or(RtpError::TooShort(header))?;
        let mut end = datagram.len();
        if has_padding {
            // The last octet counts the padding octets, itself included (RFC 3550 §5.1).
            let padding = usize::from(datagram.last().copied().unwrap_or(0));
            if padding == 0 || padding > available {
                return Err(RtpError::Padding { padding, available });
            }
            end -= padding;
        }
        Ok(RtpPacket {
            marker: second & 0x80 != 0,
            payload_type: second & 0x7f,
            sequence: u16::from_be_bytes([s0, s1]),
            timestamp: u32::from_be_bytes([t0, t1, t2, t3]),
            ssrc: u32::from_be_bytes([c0, c1, c2, c3]),
            payload: datagram
                .get(header..end)
                .ok_or(RtpError::TooShort(header))?,
        })
    }
}

/// Whether a datagram on a muxed port is RTCP rather than RTP (RFC 5761 §4: RTCP packet types
/// 192..=223 occupy the second byte where RTP would carry marker + payload type 64..=95).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram
        .get(1)
        .is_some_and(|packet_type| (192..=223).contains(packet_type))
}

/// Builds an RTP packet into `out` (cleared first). Used by tests and by the DTMF sender.
pub fn write_packet(out: &mut Vec<u8>, header: &RtpPacket<'_>) {
    out.clear();
    out.push(0x80);
    out.push(u8::from(header.marker) << 7 | (header.payload_type & 0x7f));
    out.extend_from_slice(&header.sequence.to_be_bytes());
    out.extend_from_slice(&header.timestamp.to_be_bytes());
    out.extend_from_slice(&header.ssrc.to_be_bytes());
    out.extend_from_slice(header.payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_packet(
            &mut out,
            &RtpPacket {
                marker: true,
                payload_type: 96,
                sequence: 0xfffe,
                timestamp: 0xdead_beef,
                ssrc: 0x1234_5678,
                payload,
            },
        );
        out
    }

    #[test]
    fn round_trips_the_fixed_header() {
        let bytes = sample(b"hello");
        let packet = RtpPacket::parse(&bytes).unwrap();
        assert!(packet.marker);
        assert_eq!(packet.payload_type, 96);
        assert_eq!(packet.sequence, 0xfffe);
        assert_eq!(packet.timestamp, 0xdead_beef);
        assert_eq!(packet.ssrc, 0x1234_5678);
        assert_eq!(packet.payload, b"hello");
    }

    #[test]
    fn skips_csrcs_extension_and_padding() {
        let mut bytes = sample(b"");
        bytes[0] = 0x80 | 0x20 | 0x10 | 1; // padding, extension, one CSRC
        bytes.extend_from_slice(&[1, 2, 3, 4]); // CSRC
        bytes.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // one-word extension
        bytes.extend_from_slice(b"data");
        bytes.extend_from_slice(&[0, 0, 3]); // three padding octets
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload, b"data");
    }

    #[test]
    fn rejects_malformed_packets_without_panicking() {
        assert_eq!(RtpPacket::parse(&[0x80; 4]), Err(RtpError::TooShort(12)));
        let mut bytes = sample(b"x");
        bytes[0] = 0x40;
        assert_eq!(RtpPacket::parse(&bytes), Err(RtpError::Version(1)));
        bytes[0] = 0x8f; // 15 CSRCs announced, none present
        assert!(matches!(
            RtpPacket::parse(&bytes),
            Err(RtpError::TooShort(72))
        ));
        bytes[0] = 0xa0;
        let last = bytes.len() - 1;
        bytes[last] = 200;
        assert!(matches!(
            RtpPacket::parse(&bytes),
            Err(RtpError::Padding { .. })
        ));
        bytes[0] = 0x90; // extension announced, header truncated
        assert!(matches!(
            RtpPacket::parse(&bytes),
            Err(RtpError::TooShort(_))
        ));
    }

    #[test]
    fn every_truncation_of_a_full_packet_is_an_error_or_a_shorter_payload() {
        let mut bytes = sample(b"");
        bytes[0] = 0x80 | 0x20 | 0x10 | 2; // padding, extension, two CSRCs
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&[0xbe, 0xde, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        bytes.extend_from_slice(b"payload");
        bytes.extend_from_slice(&[0, 2]);
        assert_eq!(RtpPacket::parse(&bytes).unwrap().payload, b"payload");
        for len in 0..bytes.len() {
            let _ = RtpPacket::parse(&bytes[..len]);
        }
        // An extension length past the end, at the largest value it can take.
        bytes[22] = 0xff;
        bytes[23] = 0xff;
        assert!(matches!(
            RtpPacket::parse(&bytes),
            Err(RtpError::TooShort(_))
        ));
        assert!(!is_rtcp(&[]) && !is_rtcp(&[0x80]));
    }

    #[test]
    fn tells_rtcp_from_rtp_on_a_muxed_port() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 206, 0, 2]));
        assert!(!is_rtcp(&sample(b"x")));
    }
}
