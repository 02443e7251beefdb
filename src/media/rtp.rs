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
        if datagram.len() < FIXED_HEADER {
            return Err(RtpError::TooShort(FIXED_HEADER));
        }
        let version = datagram[0] >> 6;
        if version != 2 {
            return Err(RtpError::Version(version));
        }
        let has_padding = datagram[0] & 0x20 != 0;
        let has_extension = datagram[0] & 0x10 != 0;
        let csrc_count = usize::from(datagram[0] & 0x0f);
        let mut header = FIXED_HEADER + 4 * csrc_count;
        if has_extension {
            // Extension header: 16-bit profile, 16-bit length in 32-bit words (RFC 3550 §5.3.1).
            let ext = datagram
                .get(header..header + 4)
                .ok_or(RtpError::TooShort(header + 4))?;
            header += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
        }
        if datagram.len() < header {
            return Err(RtpError::TooShort(header));
        }
        let mut end = datagram.len();
        if has_padding {
            // The last octet counts the padding octets, itself included (RFC 3550 §5.1).
            let padding = usize::from(datagram[end - 1]);
            let available = end - header;
            if padding == 0 || padding > available {
                return Err(RtpError::Padding { padding, available });
            }
            end -= padding;
        }
        Ok(RtpPacket {
            marker: datagram[1] & 0x80 != 0,
            payload_type: datagram[1] & 0x7f,
            sequence: u16::from_be_bytes([datagram[2], datagram[3]]),
            timestamp: u32::from_be_bytes([datagram[4], datagram[5], datagram[6], datagram[7]]),
            ssrc: u32::from_be_bytes([datagram[8], datagram[9], datagram[10], datagram[11]]),
            payload: &datagram[header..end],
        })
    }
}

/// Whether a datagram on a muxed port is RTCP rather than RTP (RFC 5761 §4: RTCP packet types
/// 192..=223 occupy the second byte where RTP would carry marker + payload type 64..=95).
pub fn is_rtcp(datagram: &[u8]) -> bool {
    datagram.len() >= 2 && (192..=223).contains(&datagram[1])
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
    fn tells_rtcp_from_rtp_on_a_muxed_port() {
        assert!(is_rtcp(&[0x80, 200, 0, 6]));
        assert!(is_rtcp(&[0x81, 206, 0, 2]));
        assert!(!is_rtcp(&sample(b"x")));
    }
}
