//! DTMF after answer: RFC 4733 telephone-events on the audio RTP stream, or SIP INFO with
//! `application/dtmf-relay` bodies (the de-facto format of Cisco/Asterisk/FreeSWITCH).
//!
//! RFC 4733 §2.5.1: one event keeps one RTP timestamp (its start); the first packet carries the
//! marker bit; the duration field rises every packet interval; the last packet has the E bit and
//! is sent three times (§2.5.1.4). Tones last 160 ms with 100 ms gaps unless told otherwise; a
//! `,` in the digit string pauses 500 ms. The packetizer is sans-IO: it says when the next packet
//! is due and produces it at that instant.

use bytes::Bytes;
use std::time::{Duration, Instant};

/// Time between packets of one event (20 ms, the usual ptime).
const PACKET_INTERVAL: Duration = Duration::from_millis(20);
/// Clock rate of telephone-event/8000.
const RATE: u32 = 8000;
const END_REPEATS: u32 = 3;
/// A `,` waits this long.
pub const PAUSE: Duration = Duration::from_millis(500);
/// RFC 4733 volume field: -10 dBm0, a common sender value.
const VOLUME: u8 = 10;

/// The RFC 4733 §3.2 event code for a DTMF character.
pub fn event_code(digit: char) -> Option<u8> {
    Some(match digit.to_ascii_uppercase() {
        d @ '0'..='9' => d as u8 - b'0',
        '*' => 10,
        '#' => 11,
        d @ 'A'..='D' => d as u8 - b'A' + 12,
        _ => return None,
    })
}

/// The body of a SIP INFO carrying one digit.
pub fn info_body(digit: char, tone: Duration) -> String {
    format!(
        "Signal={}\r\nDuration={}\r\n",
        digit.to_ascii_uppercase(),
        tone.as_millis()
    )
}

/// Tone and gap lengths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfTiming {
    pub tone: Duration,
    pub gap: Duration,
}

impl Default for DtmfTiming {
    fn default() -> Self {
        DtmfTiming {
            tone: Duration::from_millis(160),
            gap: Duration::from_millis(100),
        }
    }
}

/// Where a packetizer is in its digit string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Waiting until `at` before the next character.
    Idle {
        at: Instant,
    },
    /// Sending packet `index` of the current event at `at`.
    Tone {
        event: u8,
        started: Instant,
        index: u32,
        at: Instant,
    },
    Done,
}

/// One RTP packet on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    pub data: Bytes,
    /// Set when this packet completes a digit (its last end packet).
    pub completes: Option<char>,
}

/// Produces RFC 4733 packets for a digit string in virtual time.
#[derive(Debug, Clone)]
pub struct Rfc4733Sender {
    digits: Vec<char>,
    next: usize,
    current: char,
    step: Step,
    timing: DtmfTiming,
    payload_type: u8,
    ssrc: u32,
    seq: u16,
    timestamp_base: u32,
    origin: Instant,
}

impl Rfc4733Sender {
    /// Digits other than 0-9 * # A-D and `,` are skipped. `seq`, `timestamp_base` and `ssrc`
    /// start the RTP stream (random in practice).
    pub fn new(
        digits: &str,
        payload_type: u8,
        ssrc: u32,
        seq: u16,
        timestamp_base: u32,
        timing: DtmfTiming,
        start: Instant,
    ) -> Self {
        Rfc4733Sender {
            digits: digits
                .chars()
                .filter(|c| *c == ',' || event_code(*c).is_some())
                .collect(),
            next: 0,
            current: ' ',
            step: Step::Idle { at: start },
            timing,
            payload_type,
            ssrc,
            seq,
            timestamp_base,
            origin: start,
        }
    }

    pub fn is_done(&self) -> bool {
        self.step == Step::Done
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        match self.step {
            Step::Idle { at } | Step::Tone { at, .. } => Some(at),
            Step::Done => None,
        }
    }

    /// The packet due at or before `now`, if any. Call until it returns `None`.
    pub fn poll_packet(&mut self, now: Instant) -> Option<RtpPacket> {
        loop {
            match self.step.clone() {
                Step::Done => return None,
                Step::Idle { at } if at > now => return None,
                Step::Idle { at } => {
                    let Some(&c) = self.digits.get(self.next) else {
                        self.step = Step::Done;
                        return None;
                    };
                    self.next += 1;
                    self.current = c;
                    self.step = match event_code(c) {
                        Some(event) => Step::Tone {
                            event,
                            started: at,
                            index: 0,
                            at,
                        },
                        None => Step::Idle { at: at + PAUSE },
                    };
                }
                Step::Tone { at, .. } if at > now => return None,
                Step::Tone {
                    event,
                    started,
                    index,
                    at,
                } => return Some(self.tone_packet(event, started, index, at)),
            }
        }
    }

    fn tone_packet(&mut self, event: u8, started: Instant, index: u32, at: Instant) -> RtpPacket {
        let tone_packets =
            (self.timing.tone.as_millis() / PACKET_INTERVAL.as_millis()).max(1) as u32;
        let end = index + 1 >= tone_packets;
        let duration_packets = (index + 1).min(tone_packets);
        let duration = (duration_packets * PACKET_INTERVAL.as_millis() as u32 * RATE / 1000)
            .min(u16::MAX as u32) as u16;
        let timestamp = self
            .timestamp_base
            .wrapping_add(((started - self.origin).as_millis() as u64 * RATE as u64 / 1000) as u32);
        let mut packet = Vec::with_capacity(16);
        let marker = if index == 0 { 0x80 } else { 0 };
        packet.extend_from_slice(&[0x80, marker | (self.payload_type & 0x7f)]);
        packet.extend_from_slice(&self.seq.to_be_bytes());
        packet.extend_from_slice(&timestamp.to_be_bytes());
        packet.extend_from_slice(&self.ssrc.to_be_bytes());
        packet.extend_from_slice(&[event, if end { 0x80 } else { 0 } | VOLUME]);
        packet.extend_from_slice(&duration.to_be_bytes());
        self.seq = self.seq.wrapping_add(1);
        let last = index + 1 >= tone_packets + END_REPEATS - 1;
        self.step = if last {
            Step::Idle {
                at: started + self.timing.tone + self.timing.gap,
            }
        } else {
            // The end packet's repeats go out back to back, one interval apart.
            Step::Tone {
                event,
                started,
                index: index + 1,
                at: at + PACKET_INTERVAL,
            }
        };
        RtpPacket {
            data: Bytes::from(packet),
            completes: last.then_some(self.current),
        }
    }
}

/// Fields of an RFC 4733 packet, for tests and the on-the-wire check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventPacket {
    pub marker: bool,
    pub payload_type: u8,
    pub seq: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub event: u8,
    pub end: bool,
    pub duration: u16,
}

/// Reads an RTP packet carrying one telephone-event (no CSRCs or extensions).
pub fn parse_event_packet(data: &[u8]) -> Option<EventPacket> {
    if data.len() < 16 || data[0] >> 6 != 2 {
        return None;
    }
    Some(EventPacket {
        marker: data[1] & 0x80 != 0,
        payload_type: data[1] & 0x7f,
        seq: u16::from_be_bytes([data[2], data[3]]),
        timestamp: u32::from_be_bytes([data[4], data[5], data[6], data[7]]),
        ssrc: u32::from_be_bytes([data[8], data[9], data[10], data[11]]),
        event: data[12],
        end: data[13] & 0x80 != 0,
        duration: u16::from_be_bytes([data[14], data[15]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_map_to_rfc4733_event_codes() {
        let codes: Vec<_> = "0189*#AbD"
            .chars()
            .map(|c| event_code(c).unwrap())
            .collect();
        assert_eq!(codes, vec![0, 1, 8, 9, 10, 11, 12, 13, 15]);
        assert_eq!(event_code('x'), None);
        assert_eq!(
            info_body('#', Duration::from_millis(160)),
            "Signal=#\r\nDuration=160\r\n"
        );
    }

    #[test]
    fn one_digit_has_one_timestamp_rising_duration_and_three_end_packets() {
        let t0 = crate::sip::core::test_origin();
        let mut sender = Rfc4733Sender::new(
            "5,7",
            101,
            0xdead_beef,
            1000,
            5000,
            DtmfTiming::default(),
            t0,
        );
        let mut sent = Vec::new();
        while let Some(at) = sender.next_timeout() {
            while let Some(p) = sender.poll_packet(at) {
                sent.push((
                    (at - t0).as_millis() as u64,
                    parse_event_packet(&p.data).unwrap(),
                    p.completes,
                ));
            }
        }
        let five: Vec<_> = sent.iter().filter(|(_, p, _)| p.event == 5).collect();
        assert_eq!(five.len(), 8 + 2);
        assert!(five[0].1.marker && five.iter().skip(1).all(|(_, p, _)| !p.marker));
        assert!(
            five.iter()
                .all(|(_, p, _)| p.timestamp == 5000 && p.payload_type == 101)
        );
        let durations: Vec<u16> = five.iter().map(|(_, p, _)| p.duration).collect();
        assert_eq!(
            durations,
            vec![160, 320, 480, 640, 800, 960, 1120, 1280, 1280, 1280]
        );
        assert_eq!(five.iter().filter(|(_, p, _)| p.end).count(), 3);
        assert_eq!(five.last().unwrap().2, Some('5'));
        let seven: Vec<_> = sent.iter().filter(|(_, p, _)| p.event == 7).collect();
        // 160 ms tone + 100 ms gap + 500 ms pause after the first digit.
        assert_eq!(seven[0].0, 760);
        assert_eq!(seven[0].1.timestamp, 5000 + 760 * 8);
        let seqs: Vec<u16> = sent.iter().map(|(_, p, _)| p.seq).collect();
        assert_eq!(seqs, (1000..1000 + 20).collect::<Vec<u16>>());
    }
}
