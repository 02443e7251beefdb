//! RTCP (RFC 3550 §6): compound packets of sender reports (§6.4.1), receiver reports (§6.4.2),
//! SDES CNAME (§6.5), BYE (§6.6), and the feedback messages that ask for a keyframe: PLI
//! (RFC 4585 §6.3.1) and FIR (RFC 5104 §4.3.1).
//!
//! Parsing borrows the datagram and yields packets one by one ([`parse_compound`]); a bad packet
//! ends the iteration with an error naming what was wrong. Builders append to a caller-owned
//! buffer so reports cost no allocation.

use thiserror::Error;

pub const SR: u8 = 200;
pub const RR: u8 = 201;
pub const SDES: u8 = 202;
pub const BYE: u8 = 203;
pub const RTPFB: u8 = 205;
pub const PSFB: u8 = 206;
const FMT_PLI: u8 = 1;
const FMT_FIR: u8 = 4;

#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RtcpError {
    #[error("RTCP packet header truncated ({0} bytes left)")]
    Truncated(usize),
    #[error("RTCP version {0}, expected 2")]
    Version(u8),
    #[error("RTCP packet type {packet_type} length {length} exceeds the {available} bytes left")]
    Length {
        packet_type: u8,
        length: usize,
        available: usize,
    },
    #[error("RTCP packet type {0} too short for its fixed part")]
    Body(u8),
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    pub fraction_lost: u8,
    /// 24-bit signed on the wire.
    pub cumulative_lost: i32,
    pub highest_seq: u32,
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from this source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    pub ntp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// A packet of a compound RTCP datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    SenderReport(SenderReport),
    ReceiverReport {
        ssrc: u32,
    },
    Bye {
        ssrcs: &'a [u8],
    },
    Pli {
        sender_ssrc: u32,
        media_ssrc: u32,
    },
    Fir {
        sender_ssrc: u32,
        entries: &'a [u8],
    },
    /// SDES, APP, other feedback: valid, not needed here.
    Other {
        packet_type: u8,
    },
}

/// The big-endian word at `at`; callers check the length first, a short body reads as 0.
fn be32(bytes: &[u8], at: usize) -> u32 {
    bytes
        .get(at..at + 4)
        .and_then(|word| <[u8; 4]>::try_from(word).ok())
        .map_or(0, u32::from_be_bytes)
}

/// Iterates the packets of a compound RTCP datagram.
pub fn parse_compound(datagram: &[u8]) -> impl Iterator<Item = Result<RtcpPacket<'_>, RtcpError>> {
    let mut rest = datagram;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let result = parse_one(rest);
        match result {
            Ok((packet, used)) => {
                rest = rest.get(used..).unwrap_or_default();
                Some(Ok(packet))
            }
            Err(error) => {
                rest = &[];
                Some(Err(error))
            }
        }
    })
}

fn parse_one(bytes: &[u8]) -> Result<(RtcpPacket<'_>, usize), RtcpError> {
    let &[first, packet_type, hi, lo, ..] = bytes else {
        return Err(RtcpError::Truncated(bytes.len()));
    };
    let version = first >> 6;
    if version != 2 {
        return Err(RtcpError::Version(version));
    }
    let count = first & 0x1f;
    let length = 4 * (usize::from(u16::from_be_bytes([hi, lo])) + 1);
    let length_error = RtcpError::Length {
        packet_type,
        length,
        available: bytes.len(),
    };
    let mut body = bytes.get(4..length).ok_or(length_error)?;
    if first & 0x20 != 0 {
        // The last octet counts the padding, itself included (RFC 3550 §6.4.1).
        let padding = usize::from(body.last().copied().unwrap_or(0));
        body = body
            .len()
            .checked_sub(padding)
            .filter(|_| padding > 0)
            .and_then(|end| body.get(..end))
            .ok_or(RtcpError::Body(packet_type))?;
    }
    let need = |n: usize| {
        if body.len() < n {
            Err(RtcpError::Body(packet_type))
        } else {
            Ok(())
        }
    };
    let packet = match (packet_type, count) {
        (SR, _) => {
            need(24)?;
            RtcpPacket::SenderReport(SenderReport {
                ssrc: be32(body, 0),
                ntp: (u64::from(be32(body, 4)) << 32) | u64::from(be32(body, 8)),
                rtp_timestamp: be32(body, 12),
                packet_count: be32(body, 16),
                octet_count: be32(body, 20),
            })
        }
        (RR, _) => {
            need(4)?;
            RtcpPacket::ReceiverReport {
                ssrc: be32(body, 0),
            }
        }
        (BYE, _) => {
            let ssrcs = usize::from(count) * 4;
            RtcpPacket::Bye {
                ssrcs: body.get(..ssrcs).ok_or(RtcpError::Body(packet_type))?,
            }
        }
        (PSFB, FMT_PLI) => {
            need(8)?;
            RtcpPacket::Pli {
                sender_ssrc: be32(body, 0),
                media_ssrc: be32(body, 4),
            }
        }
        (PSFB, FMT_FIR) => {
            need(8)?;
            let whole_entries = body.len() - body.len() % 8;
            RtcpPacket::Fir {
                sender_ssrc: be32(body, 0),
                entries: body.get(8..whole_entries).unwrap_or_default(),
            }
        }
        _ => RtcpPacket::Other { packet_type },
    };
    Ok((packet, length))
}

fn header(out: &mut Vec<u8>, count: u8, packet_type: u8, body_words: usize) {
    out.push(0x80 | (count & 0x1f));
    out.push(packet_type);
    out.extend_from_slice(&(body_words as u16).to_be_bytes());
}

/// Appends a receiver report with up to 31 blocks.
pub fn write_receiver_report(out: &mut Vec<u8>, sender_ssrc: u32, blocks: &[ReportBlock]) {
    let blocks = &blocks[..blocks.len().min(31)];
    header(out, blocks.len() as u8, RR, 1 + 6 * blocks.len());
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    for block in blocks {
        write_block(out, block);
    }
}

/// Appends a sender report without report blocks (tests and tools use it to play a sender).
pub fn write_sender_report(out: &mut Vec<u8>, report: &SenderReport) {
    header(out, 0, SR, 6);
    out.extend_from_slice(&report.ssrc.to_be_bytes());
    out.extend_from_slice(&report.ntp.to_be_bytes());
    out.extend_from_slice(&report.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&report.packet_count.to_be_bytes());
    out.extend_from_slice(&report.octet_count.to_be_bytes());
}

fn write_block(out: &mut Vec<u8>, block: &ReportBlock) {
    out.extend_from_slice(&block.ssrc.to_be_bytes());
    let lost = (block.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32) & 0x00ff_ffff;
    out.extend_from_slice(&((u32::from(block.fraction_lost) << 24) | lost).to_be_bytes());
    out.extend_from_slice(&block.highest_seq.to_be_bytes());
    out.extend_from_slice(&block.jitter.to_be_bytes());
    out.extend_from_slice(&block.last_sr.to_be_bytes());
    out.extend_from_slice(&block.delay_since_last_sr.to_be_bytes());
}

/// Appends an SDES packet with one CNAME chunk (required in every compound, RFC 3550 §6.1).
pub fn write_sdes_cname(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let cname = &cname.as_bytes()[..cname.len().min(255)];
    // SSRC, type, length, text, then at least one zero octet padding to a 32-bit boundary.
    let chunk = 4 + 2 + cname.len();
    let padded = (chunk + 4) & !3;
    header(out, 1, SDES, padded / 4);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1); // CNAME
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + padded - chunk, 0);
}

/// Appends a Picture Loss Indication.
pub fn write_pli(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32) {
    header(out, FMT_PLI, PSFB, 2);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&media_ssrc.to_be_bytes());
}

/// Appends a Full Intra Request for `media_ssrc` with command sequence number `seq`.
pub fn write_fir(out: &mut Vec<u8>, sender_ssrc: u32, media_ssrc: u32, seq: u8) {
    header(out, FMT_FIR, PSFB, 4);
    out.extend_from_slice(&sender_ssrc.to_be_bytes());
    out.extend_from_slice(&0u32.to_be_bytes()); // media source SSRC: unused for FIR
    out.extend_from_slice(&media_ssrc.to_be_bytes());
    out.extend_from_slice(&[seq, 0, 0, 0]);
}

/// Appends a BYE for `ssrc`.
pub fn write_bye(out: &mut Vec<u8>, ssrc: u32) {
    header(out, 1, BYE, 1);
    out.extend_from_slice(&ssrc.to_be_bytes());
}

/// The middle 32 bits of an NTP timestamp, as LSR fields carry it.
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(bytes: &[u8]) -> Vec<Result<RtcpPacket<'_>, RtcpError>> {
        parse_compound(bytes).collect()
    }

    #[test]
    fn compound_report_round_trips() {
        let mut out = Vec::new();
        let block = ReportBlock {
            ssrc: 9,
            fraction_lost: 12,
            cumulative_lost: -3,
            highest_seq: 70_000,
            jitter: 44,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        };
        write_receiver_report(&mut out, 5, &[block]);
        write_sdes_cname(&mut out, 5, "sipcast@host");
        write_pli(&mut out, 5, 9);
        write_fir(&mut out, 5, 9, 3);
        write_bye(&mut out, 5);
        assert_eq!(out.len() % 4, 0);
        let packets = parse_all(&out);
        assert_eq!(packets[0], Ok(RtcpPacket::ReceiverReport { ssrc: 5 }));
        assert_eq!(packets[1], Ok(RtcpPacket::Other { packet_type: SDES }));
        assert_eq!(
            packets[2],
            Ok(RtcpPacket::Pli {
                sender_ssrc: 5,
                media_ssrc: 9
            })
        );
        assert_eq!(
            packets[3],
            Ok(RtcpPacket::Fir {
                sender_ssrc: 5,
                entries: &[0, 0, 0, 9, 3, 0, 0, 0]
            })
        );
        assert_eq!(
            packets[4],
            Ok(RtcpPacket::Bye {
                ssrcs: &[0, 0, 0, 5]
            })
        );
        // The block's 24-bit negative loss survives the wire.
        assert_eq!(&out[12..16], &[12, 0xff, 0xff, 0xfd]);
    }

    #[test]
    fn sender_report_round_trips() {
        let report = SenderReport {
            ssrc: 1,
            ntp: 0xe000_0000_8000_0000,
            rtp_timestamp: 160,
            packet_count: 2,
            octet_count: 320,
        };
        let mut out = Vec::new();
        write_sender_report(&mut out, &report);
        assert_eq!(parse_all(&out), vec![Ok(RtcpPacket::SenderReport(report))]);
        assert_eq!(ntp_middle(report.ntp), 0x0000_8000);
    }

    #[test]
    fn malformed_compounds_end_with_an_error() {
        assert_eq!(parse_all(&[0x80, 200]), vec![Err(RtcpError::Truncated(2))]);
        assert_eq!(
            parse_all(&[0x40, 200, 0, 0]),
            vec![Err(RtcpError::Version(1))]
        );
        assert!(matches!(
            parse_all(&[0x80, 200, 0, 9, 0, 0, 0, 0])[0],
            Err(RtcpError::Length { .. })
        ));
        assert_eq!(
            parse_all(&[0x80, 200, 0, 1, 0, 0, 0, 0]),
            vec![Err(RtcpError::Body(SR))]
        );
        // A good packet followed by garbage yields the packet, then the error.
        let mut out = Vec::new();
        write_bye(&mut out, 1);
        out.extend_from_slice(&[0x80]);
        let packets = parse_all(&out);
        assert!(packets[0].is_ok() && packets[1].is_err());
    }

    #[test]
    fn padding_that_is_zero_or_longer_than_the_body_is_refused() {
        // An RR with the padding bit: body of one word, padding count 0, then 9.
        for count in [0, 9] {
            let packet = [0xa0, RR, 0, 1, 0, 0, 0, count];
            assert_eq!(parse_all(&packet), vec![Err(RtcpError::Body(RR))]);
        }
        let packet = [0xa0, RR, 0, 2, 0, 0, 0, 7, 0, 0, 0, 4];
        assert_eq!(
            parse_all(&packet),
            vec![Ok(RtcpPacket::ReceiverReport { ssrc: 7 })]
        );
    }

    #[test]
    fn every_truncation_of_a_compound_parses_without_panicking() {
        let mut out = Vec::new();
        write_sender_report(
            &mut out,
            &SenderReport {
                ssrc: 1,
                ntp: u64::MAX,
                rtp_timestamp: 2,
                packet_count: 3,
                octet_count: 4,
            },
        );
        write_sdes_cname(&mut out, 1, "caf\u{e9}");
        write_fir(&mut out, 1, 2, 3);
        write_bye(&mut out, 1);
        for len in 0..=out.len() {
            let packets = parse_all(&out[..len]);
            assert!(packets.len() <= 4, "{len}");
        }
        // A BYE counting 31 sources with none present.
        assert_eq!(
            parse_all(&[0x9f, BYE, 0, 0]),
            vec![Err(RtcpError::Body(BYE))]
        );
    }
}
