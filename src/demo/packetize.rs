//! The clip as RTP, looped forever: H.264 per RFC 6184 packetization-mode 1 (single NAL unit
//! packets §5.6, FU-A §5.8 for NAL units over the MTU budget) and G.711 per RFC 3551 §4.5.14
//! (20 ms of µ-law per packet).
//!
//! Sans-IO: each loop says when its next packet group is due (an offset from the start of
//! playback) and builds it on demand; the driver sleeps and sends. RTP timestamps and sequence
//! numbers keep counting across loops of the clip, as a real sender's would; the marker bit
//! ends every picture (RFC 6184 §5.1) and starts the audio talkspurt (RFC 3551 §4.1). Each
//! stream also writes RTCP sender reports (RFC 3550 §6.4.1) on one NTP clock that counts from
//! the start of playback (§4 allows a relative clock), which is all lip sync needs.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::clip::Clip;
use crate::media::rtcp::{SenderReport, write_sdes_cname, write_sender_report};
use crate::media::rtp::{RtpPacket, write_packet};

/// Largest RTP payload we send: well under any loopback or Ethernet MTU.
pub const MAX_PAYLOAD: usize = 1200;
const VIDEO_CLOCK: u64 = 90_000;
/// Samples (= bytes of µ-law) per 20 ms audio packet at 8 kHz.
const AUDIO_SAMPLES: usize = 160;
const AUDIO_PACKET_TIME: Duration = Duration::from_millis(20);
/// µ-law silence, to pad a clip whose audio is not a whole number of packets.
const ULAW_SILENCE: u8 = 0xff;
const FU_A: u8 = 28;
const AUDIO_CLOCK: u64 = 8_000;
/// The NTP clock of our sender reports reads this at the start of playback (never zero, which
/// some receivers take for "no wall clock").
const NTP_AT_START: Duration = Duration::from_secs(1);
const CNAME: &str = "callee@sipcast-demo";

/// One outgoing RTP stream: payload type, SSRC, the running sequence number and the counts
/// sender reports carry.
#[derive(Debug, Clone)]
pub struct RtpStream {
    payload_type: u8,
    ssrc: u32,
    next_sequence: u16,
    timestamp_base: u32,
    packets: u32,
    octets: u32,
}

impl RtpStream {
    pub fn new(payload_type: u8, ssrc: u32, first_sequence: u16, timestamp_base: u32) -> Self {
        RtpStream {
            payload_type,
            ssrc,
            next_sequence: first_sequence,
            timestamp_base,
            packets: 0,
            octets: 0,
        }
    }

    /// SR + SDES CNAME for the moment `elapsed` after the start of playback (whose RTP
    /// timestamp is the base): one compound RTCP packet.
    fn sender_report(&self, elapsed: Duration, clock_rate: u64) -> Bytes {
        let ntp_time = NTP_AT_START + elapsed;
        let fraction = (u64::from(ntp_time.subsec_nanos()) << 32) / 1_000_000_000;
        let ticks = elapsed.as_nanos() * u128::from(clock_rate) / 1_000_000_000;
        let mut out = Vec::with_capacity(64);
        write_sender_report(
            &mut out,
            &SenderReport {
                ssrc: self.ssrc,
                ntp: (ntp_time.as_secs() << 32) | fraction,
                rtp_timestamp: self.timestamp_base.wrapping_add(ticks as u32),
                packet_count: self.packets,
                octet_count: self.octets,
            },
        );
        write_sdes_cname(&mut out, self.ssrc, CNAME);
        Bytes::from(out)
    }

    fn packet(&mut self, marker: bool, ticks: u64, payload: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(12 + payload.len());
        write_packet(
            &mut out,
            &RtpPacket {
                marker,
                payload_type: self.payload_type,
                sequence: self.next_sequence,
                // RTP timestamps wrap modulo 2^32 (RFC 3550 §5.1).
                timestamp: self.timestamp_base.wrapping_add(ticks as u32),
                ssrc: self.ssrc,
                payload,
            },
        );
        self.next_sequence = self.next_sequence.wrapping_add(1);
        self.packets = self.packets.wrapping_add(1);
        self.octets = self.octets.wrapping_add(payload.len() as u32);
        Bytes::from(out)
    }
}

/// The clip's pictures, looped.
#[derive(Debug)]
pub struct VideoLoop {
    clip: Arc<Clip>,
    stream: RtpStream,
    /// Pictures sent so far, over all loops.
    next: u64,
}

impl VideoLoop {
    pub fn new(clip: Arc<Clip>, stream: RtpStream) -> Self {
        VideoLoop {
            clip,
            stream,
            next: 0,
        }
    }

    /// When the next picture is due, from the start of playback.
    pub fn due(&self) -> Duration {
        Duration::from_nanos(self.next.saturating_mul(1_000_000_000) / u64::from(self.clip.fps))
    }

    /// The stream's RTCP sender report for `elapsed` into playback.
    pub fn sender_report(&self, elapsed: Duration) -> Bytes {
        self.stream.sender_report(elapsed, VIDEO_CLOCK)
    }

    /// The next picture's packets (the last one has the marker bit); advances by one picture.
    pub fn next_packets(&mut self) -> Vec<Bytes> {
        let count = self.clip.access_units.len() as u64;
        let Some(unit) = (count > 0).then(|| &self.clip.access_units[(self.next % count) as usize])
        else {
            return Vec::new();
        };
        let ticks = self.next * (VIDEO_CLOCK / u64::from(self.clip.fps));
        let mut payloads = Vec::new();
        for nal in &unit.nal_units {
            fragment(nal, &mut payloads);
        }
        let last = payloads.len().saturating_sub(1);
        let packets = payloads
            .iter()
            .enumerate()
            .map(|(i, payload)| self.stream.packet(i == last, ticks, payload))
            .collect();
        self.next += 1;
        packets
    }
}

/// One NAL unit as RTP payloads: itself if it fits, else FU-A fragments (RFC 6184 §5.8).
fn fragment(nal: &[u8], out: &mut Vec<Vec<u8>>) {
    let Some((&header, body)) = nal.split_first() else {
        return;
    };
    if nal.len() <= MAX_PAYLOAD {
        out.push(nal.to_vec());
        return;
    }
    // FU indicator: F and NRI of the NAL unit, type 28; FU header: S, E, the NAL unit type.
    let indicator = (header & 0xe0) | FU_A;
    let pieces: Vec<&[u8]> = body.chunks(MAX_PAYLOAD - 2).collect();
    for (i, piece) in pieces.iter().enumerate() {
        let start = if i == 0 { 0x80 } else { 0 };
        let end = if i + 1 == pieces.len() { 0x40 } else { 0 };
        let mut payload = Vec::with_capacity(2 + piece.len());
        payload.push(indicator);
        payload.push(start | end | (header & 0x1f));
        payload.extend_from_slice(piece);
        out.push(payload);
    }
}

/// The clip's audio, looped, 20 ms per packet.
#[derive(Debug)]
pub struct AudioLoop {
    ulaw: Bytes,
    stream: RtpStream,
    next: u64,
}

impl AudioLoop {
    pub fn new(ulaw: Bytes, stream: RtpStream) -> Self {
        AudioLoop {
            ulaw,
            stream,
            next: 0,
        }
    }

    pub fn due(&self) -> Duration {
        AUDIO_PACKET_TIME.saturating_mul(u32::try_from(self.next).unwrap_or(u32::MAX))
    }

    /// The stream's RTCP sender report for `elapsed` into playback.
    pub fn sender_report(&self, elapsed: Duration) -> Bytes {
        self.stream.sender_report(elapsed, AUDIO_CLOCK)
    }

    /// The next packet (marker on the very first: the start of the talkspurt).
    pub fn next_packet(&mut self) -> Bytes {
        let per_loop = self.ulaw.len().div_ceil(AUDIO_SAMPLES).max(1) as u64;
        let offset = (self.next % per_loop) as usize * AUDIO_SAMPLES;
        let mut payload = [ULAW_SILENCE; AUDIO_SAMPLES];
        let available = self.ulaw.get(offset..).unwrap_or_default();
        let take = available.len().min(AUDIO_SAMPLES);
        payload[..take].copy_from_slice(&available[..take]);
        let ticks = self.next * AUDIO_SAMPLES as u64;
        let packet = self.stream.packet(self.next == 0, ticks, &payload);
        self.next += 1;
        packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::h264::{H264Depacketizer, H264Output};

    fn stream(payload_type: u8) -> RtpStream {
        RtpStream::new(payload_type, 0x5eed, 65_530, u32::MAX - 10_000)
    }

    #[test]
    fn two_loops_of_video_depacketize_to_every_picture_with_continuous_timestamps() {
        let clip = Arc::new(Clip::bundled().unwrap());
        let mut video = VideoLoop::new(clip.clone(), stream(99));
        let mut depacketizer = H264Depacketizer::new();
        depacketizer
            .set_sprop_parameter_sets(&clip.sprop_parameter_sets())
            .unwrap();
        let pictures = clip.access_units.len() * 2;
        let mut outputs = Vec::new();
        let mut last_sequence = None;
        for n in 0..pictures {
            assert_eq!(
                video.due(),
                Duration::from_nanos(n as u64 * 1_000_000_000 / 15)
            );
            let packets = video.next_packets();
            for (i, data) in packets.iter().enumerate() {
                let packet = RtpPacket::parse(data).unwrap();
                assert!(packet.payload.len() <= MAX_PAYLOAD);
                assert_eq!(packet.marker, i + 1 == packets.len());
                if let Some(prev) = last_sequence {
                    assert_eq!(packet.sequence, u16::wrapping_add(prev, 1));
                }
                last_sequence = Some(packet.sequence);
                depacketizer.push(&packet, 0).unwrap();
                outputs.extend(std::iter::from_fn(|| depacketizer.poll_output()));
            }
        }
        let mut units: Vec<(u32, bool)> = Vec::new();
        for output in &outputs {
            if let H264Output::AccessUnit {
                rtp_timestamp,
                keyframe,
                ..
            } = output
            {
                units.push((*rtp_timestamp, *keyframe));
            }
        }
        assert_eq!(units.len(), pictures);
        assert!(units[0].1);
        assert_eq!(units.iter().filter(|u| u.1).count(), clip.keyframes() * 2);
        for pair in units.windows(2) {
            assert_eq!(
                pair[1].0.wrapping_sub(pair[0].0),
                6000,
                "timestamps wrap and continue"
            );
        }
        assert!(
            outputs
                .iter()
                .all(|o| !matches!(o, H264Output::KeyframeNeeded))
        );
    }

    #[test]
    fn large_nal_units_become_fu_a_fragments_that_rejoin() {
        let nal: Vec<u8> = std::iter::once(0x65)
            .chain((0..3000).map(|i| i as u8))
            .collect();
        let mut payloads = Vec::new();
        fragment(&nal, &mut payloads);
        assert_eq!(payloads.len(), 3);
        assert_eq!(payloads[0][..2], [0x60 | 28, 0x80 | 5]);
        assert_eq!(payloads[2][1], 0x40 | 5);
        let rejoined: Vec<u8> = payloads.iter().flat_map(|p| p[2..].to_vec()).collect();
        assert_eq!(rejoined, nal[1..]);
    }

    #[test]
    fn audio_loops_in_20_ms_packets_with_one_marker() {
        let mut audio = AudioLoop::new(Bytes::from_static(&[7; 400]), stream(0));
        let packets: Vec<_> = (0..6).map(|_| audio.next_packet()).collect();
        assert_eq!(audio.due(), Duration::from_millis(120));
        let parsed: Vec<_> = packets
            .iter()
            .map(|p| RtpPacket::parse(p).unwrap())
            .collect();
        assert!(parsed[0].marker && parsed[1..].iter().all(|p| !p.marker));
        assert!(parsed.iter().all(|p| p.payload.len() == 160));
        // 400 bytes = 2.5 packets: the third is padded with silence, then the clip restarts.
        assert_eq!(parsed[2].payload[79..81], [7, ULAW_SILENCE]);
        assert_eq!(parsed[3].payload, parsed[0].payload);
        assert_eq!(parsed[5].timestamp.wrapping_sub(parsed[0].timestamp), 800);
    }

    #[test]
    fn sender_reports_put_both_streams_on_one_clock() {
        use crate::media::rtcp::{RtcpPacket, parse_compound};
        let clip = Arc::new(Clip::bundled().unwrap());
        let mut video = VideoLoop::new(clip, stream(99));
        let mut audio = AudioLoop::new(Bytes::from_static(&[7; 320]), stream(0));
        video.next_packets();
        audio.next_packet();
        let at = Duration::from_millis(2500);
        let report = |compound: Bytes| {
            let packets: Vec<_> = parse_compound(&compound).collect::<Result<_, _>>().unwrap();
            match packets[0] {
                RtcpPacket::SenderReport(report) => report,
                ref other => panic!("{other:?}"),
            }
        };
        let v = report(video.sender_report(at));
        let a = report(audio.sender_report(at));
        assert_eq!(v.ntp, a.ntp);
        assert_eq!(v.ntp >> 32, 3);
        assert_eq!(v.ntp & 0xffff_ffff, 1 << 31);
        assert_eq!(v.rtp_timestamp, (u32::MAX - 10_000).wrapping_add(225_000));
        assert_eq!(a.rtp_timestamp, (u32::MAX - 10_000).wrapping_add(20_000));
        assert_eq!((a.packet_count, a.octet_count), (1, 160));
        assert!(v.packet_count >= 1);
    }
}
