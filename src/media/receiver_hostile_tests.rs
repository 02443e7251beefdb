//! The datagram entry point against what strangers and broken peers send: foreign sources,
//! oversized and malformed datagrams, SSRC floods, sender reports of unknown SSRCs.

use super::*;
use crate::media::remote::AudioOutputs;
use crate::media::rtp::write_packet;
use crate::media::source::{PROBATION, TAKEOVER_SILENCE};

/// The answer: audio at 192.0.2.1:4000, video at 4002, copied PCMU (cheap, countable).
fn receiver(now: Instant) -> MediaReceiver {
    let remote = RemoteMedia {
        audio: Some(RemoteStream::new(
            "192.0.2.1:4000".parse().unwrap(),
            0,
            "PCMU",
            8000,
        )),
        video: Some(RemoteStream::new(
            "192.0.2.1:4002".parse().unwrap(),
            96,
            "H264",
            90_000,
        )),
    };
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: None,
            copy: true,
        },
        ..Default::default()
    };
    MediaReceiver::new(&remote, config, now).unwrap()
}

const AUDIO: MediaPort = MediaPort::new(Track::Audio, false);
const AUDIO_RTCP: MediaPort = MediaPort::new(Track::Audio, true);

fn callee() -> SocketAddr {
    "192.0.2.1:4000".parse().unwrap()
}

fn pcmu(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut out = Vec::new();
    write_packet(
        &mut out,
        &RtpPacket {
            marker: false,
            payload_type: 0,
            sequence: seq,
            timestamp: u32::from(seq) * 160,
            ssrc,
            payload: &[0xd5; 160],
        },
    );
    out
}

fn audio_frames(receiver: &mut MediaReceiver) -> usize {
    std::iter::from_fn(|| receiver.poll_frame())
        .filter(|f| matches!(f, MediaFrame::Audio { .. }))
        .count()
}

#[test]
fn a_foreign_source_is_refused_and_counted_even_after_the_callee_pauses() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = receiver(t0);
    assert_eq!(
        receiver.handle_datagram(t0, AUDIO, callee(), &pcmu(1, 7)),
        Verdict::Rtp
    );
    // Ten seconds of silence from the callee; then strangers on another host and port.
    let later = t0 + Duration::from_secs(10);
    for (i, from) in [
        "198.51.100.7:4000",
        "192.0.2.1:4444",
        "[::ffff:198.51.100.7]:4000",
    ]
    .into_iter()
    .enumerate()
    {
        let verdict =
            receiver.handle_datagram(later, AUDIO, from.parse().unwrap(), &pcmu(2 + i as u16, 9));
        assert_eq!(
            verdict,
            Verdict::Dropped(DropReason::ForeignSource),
            "{from}"
        );
    }
    assert_eq!(receiver.stats().dropped.foreign_source, 3);
    assert_eq!(receiver.stats().audio.unwrap().packets, 1);
    assert_eq!(receiver.latched(AUDIO), Some(callee()));
    // The callee itself carries on.
    assert_eq!(
        receiver.handle_datagram(later, AUDIO, callee(), &pcmu(2, 7)),
        Verdict::Rtp
    );
}

#[test]
fn oversized_datagrams_are_dropped_whole_and_claim_nothing() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = receiver(t0);
    let mut big = pcmu(1, 7);
    big.resize(MAX_DATAGRAM + 1, 0xd5);
    let verdict = receiver.handle_datagram(t0, AUDIO, callee(), &big);
    assert_eq!(verdict, Verdict::Dropped(DropReason::Oversize));
    big.truncate(MAX_DATAGRAM);
    assert_eq!(
        receiver.handle_datagram(t0, AUDIO, callee(), &big),
        Verdict::Rtp
    );
    let stats = receiver.stats();
    assert_eq!(
        (stats.dropped.oversize, stats.audio.unwrap().packets),
        (1, 1)
    );
}

#[test]
fn garbage_is_counted_invalid_and_cannot_latch_a_port_first() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = receiver(t0);
    let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    for garbage in [
        &[][..],
        &[0x80; 11],
        &[0x40; 40],
        &[0xff; 300],
        &[0x80, 0xc8, 0xff, 0xff],
    ] {
        let verdict = receiver.handle_datagram(t0, AUDIO, stranger, garbage);
        assert_eq!(
            verdict,
            Verdict::Dropped(DropReason::Invalid),
            "{garbage:?}"
        );
        let verdict = receiver.handle_datagram(t0, AUDIO_RTCP, stranger, garbage);
        assert_eq!(
            verdict,
            Verdict::Dropped(DropReason::Invalid),
            "{garbage:?}"
        );
    }
    assert_eq!(receiver.latched(AUDIO), None);
    assert_eq!(receiver.stats().dropped.invalid, 10);
    // The callee's first real packet latches.
    let from: SocketAddr = "192.0.2.1:31000".parse().unwrap();
    assert_eq!(
        receiver.handle_datagram(t0, AUDIO, from, &pcmu(1, 7)),
        Verdict::Rtp
    );
    assert_eq!(receiver.latched(AUDIO), Some(from));
}

#[test]
fn a_thousand_ssrcs_from_the_callee_keep_its_stream_and_cost_nothing() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = receiver(t0);
    let mut now = t0;
    let mut delivered = 0;
    for seq in 0..200u16 {
        now += Duration::from_millis(20);
        assert_eq!(
            receiver.handle_datagram(now, AUDIO, callee(), &pcmu(seq, 7)),
            Verdict::Rtp
        );
        // Five forged senders between two of the callee's packets, in sequence each.
        for i in 0..5u32 {
            let ssrc = 1000 + u32::from(seq) * 5 + i;
            for step in 0..3 {
                let verdict = receiver.handle_datagram(now, AUDIO, callee(), &pcmu(step, ssrc));
                assert_eq!(verdict, Verdict::Dropped(DropReason::UnknownSsrc));
            }
        }
        delivered += audio_frames(&mut receiver);
    }
    let stats = receiver.stats();
    assert_eq!(delivered, 200, "every packet of the callee's stream");
    assert_eq!(stats.audio.as_ref().unwrap().ssrc, Some(7));
    assert_eq!(stats.ssrc_changes, 0);
    assert_eq!(stats.dropped.unknown_ssrc, 3000);
    assert_eq!(
        stats.audio.unwrap().discontinuities,
        0,
        "the timeline never re-anchored"
    );
}

#[test]
fn a_sender_restart_takes_over_after_a_pause_and_probation() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = receiver(t0);
    receiver.handle_datagram(t0, AUDIO, callee(), &pcmu(1, 7));
    audio_frames(&mut receiver);
    // Too soon: the old sender may still be talking.
    let soon = t0 + TAKEOVER_SILENCE / 2;
    for seq in 0..4 {
        let verdict = receiver.handle_datagram(soon, AUDIO, callee(), &pcmu(500 + seq, 8));
        assert_eq!(verdict, Verdict::Dropped(DropReason::UnknownSsrc));
    }
    // After the pause: the first packet is on probation, the next in sequence takes over.
    let after = t0 + TAKEOVER_SILENCE;
    for seq in 0..u16::try_from(PROBATION).unwrap() - 1 {
        let verdict = receiver.handle_datagram(after, AUDIO, callee(), &pcmu(900 + seq, 8));
        assert_eq!(verdict, Verdict::Dropped(DropReason::UnknownSsrc));
    }
    let verdict = receiver.handle_datagram(after, AUDIO, callee(), &pcmu(900 + 1, 8));
    assert_eq!(verdict, Verdict::Rtp);
    assert_eq!(audio_frames(&mut receiver), 1);
    let stats = receiver.stats();
    assert_eq!(
        (stats.ssrc_changes, stats.audio.unwrap().ssrc),
        (1, Some(8))
    );
    // The old sender is now the stranger.
    let verdict = receiver.handle_datagram(after, AUDIO, callee(), &pcmu(2, 7));
    assert_eq!(verdict, Verdict::Dropped(DropReason::UnknownSsrc));
}

#[test]
fn sender_reports_of_unknown_ssrcs_move_nothing() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = receiver(t0);
    receiver.handle_datagram(t0, AUDIO, callee(), &pcmu(1, 7));
    let rtcp_from: SocketAddr = "192.0.2.1:4001".parse().unwrap();
    let mut report = Vec::new();
    for ssrc in 0..1000u32 {
        report.clear();
        rtcp::write_sender_report(
            &mut report,
            &rtcp::SenderReport {
                ssrc: 100 + ssrc,
                ntp: u64::from(ssrc) << 40,
                rtp_timestamp: ssrc,
                packet_count: 0,
                octet_count: 0,
            },
        );
        assert_eq!(
            receiver.handle_datagram(t0, AUDIO_RTCP, rtcp_from, &report),
            Verdict::Rtcp
        );
    }
    assert_eq!(receiver.stats().dropped.unknown_ssrc, 1000);
    assert_eq!(
        receiver.last_sr,
        [None, None],
        "no LSR taken from a stranger's report"
    );
    assert!(matches!(
        receiver.handle_datagram(
            t0,
            AUDIO_RTCP,
            "198.51.100.7:4001".parse().unwrap(),
            &report
        ),
        Verdict::Dropped(DropReason::ForeignSource)
    ));
}

#[test]
fn every_byte_value_in_every_header_position_is_survived() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = receiver(t0);
    let template = pcmu(1, 7);
    let mut now = t0;
    for position in 0..16 {
        for value in 0..=255u8 {
            let mut datagram = template.clone();
            datagram[position] = value;
            now += Duration::from_millis(1);
            for port in MediaPort::ALL {
                let _ = receiver.handle_datagram(now, port, callee(), &datagram);
                let _ = receiver.handle_datagram(now, port, callee(), &datagram[..position]);
            }
            receiver.handle_timeout(now);
            while receiver.poll_frame().is_some() {}
            while receiver.poll_transmit().is_some() {}
        }
    }
}
