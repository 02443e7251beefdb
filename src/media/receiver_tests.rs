use super::*;
use crate::media::remote::{AudioOutputs, RemoteStream};
use crate::media::rtp::write_packet;

const SPROP: &str = "Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA=";
const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33, 0xff];
const NON_IDR: &[u8] = &[0x41, 0x9a, 0x02, 0x04];

fn stream(codec: &str, payload_type: u8, clock_rate: u32, fmtp: &str) -> RemoteStream {
    RemoteStream {
        fmtp: fmtp.into(),
        ..RemoteStream::new(
            "127.0.0.1:9".parse().unwrap(),
            payload_type,
            codec,
            clock_rate,
        )
    }
}

fn remote() -> RemoteMedia {
    RemoteMedia {
        audio: Some(stream("PCMU", 0, 8000, "")),
        video: Some(stream(
            "H264",
            96,
            90_000,
            &format!("packetization-mode=1;sprop-parameter-sets={SPROP}"),
        )),
    }
}

fn rtp(payload_type: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    write_packet(
        &mut out,
        &RtpPacket {
            marker,
            payload_type,
            sequence: seq,
            timestamp: ts,
            ssrc,
            payload,
        },
    );
    out
}

fn frames(receiver: &mut MediaReceiver) -> Vec<MediaFrame> {
    std::iter::from_fn(|| receiver.poll_frame()).collect()
}

fn transmits(receiver: &mut MediaReceiver) -> Vec<RtcpTransmit> {
    std::iter::from_fn(|| receiver.poll_transmit()).collect()
}

#[test]
fn publishes_metadata_and_configs_before_media_and_video_from_the_first_idr() {
    let t0 = crate::clock::monotonic().into_std();
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: Some(Default::default()),
            copy: true,
        },
        ..Default::default()
    };
    let mut receiver = MediaReceiver::new(&remote(), config, t0).unwrap();
    let start = frames(&mut receiver);
    let MediaFrame::Metadata(meta) = &start[0] else {
        panic!("{start:?}")
    };
    assert_eq!(
        (meta.width, meta.height, meta.audio),
        (Some(320), Some(240), Some(AudioFormat::Aac))
    );
    assert_eq!(start[1], MediaFrame::AudioConfig(vec![0x11, 0x88].into()));

    receiver
        .handle_rtp(t0, Track::Video, &rtp(96, 1, 0, 7, true, NON_IDR))
        .unwrap();
    receiver
        .handle_rtp(t0, Track::Audio, &rtp(0, 1, 0, 8, false, &[0xff; 160]))
        .unwrap();
    let later = t0 + Duration::from_millis(40);
    receiver
        .handle_rtp(later, Track::Video, &rtp(96, 2, 3600, 7, true, IDR))
        .unwrap();
    let out = frames(&mut receiver);
    assert!(
        matches!(
            out[0],
            MediaFrame::Audio {
                ts_ms: 0,
                format: AudioFormat::Pcmu,
                ..
            }
        ),
        "{out:?}"
    );
    assert!(matches!(out[1], MediaFrame::VideoConfig(_)), "{out:?}");
    assert!(
        matches!(
            out[2],
            MediaFrame::Video {
                dts_ms: 40,
                keyframe: true,
                ..
            }
        ),
        "{out:?}"
    );
    assert_eq!(receiver.stats().video_frames_dropped, 1);
}

#[test]
fn asks_for_a_keyframe_once_the_video_source_is_known_then_escalates() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = MediaReceiver::new(&remote(), MediaConfig::default(), t0).unwrap();
    assert!(transmits(&mut receiver).is_empty(), "no SSRC to name yet");
    receiver
        .handle_rtp(t0, Track::Video, &rtp(96, 1, 0, 7, true, NON_IDR))
        .unwrap();
    let sent = transmits(&mut receiver);
    assert_eq!(sent.len(), 1);
    let packets: Vec<_> = rtcp::parse_compound(&sent[0].data).collect();
    assert_eq!(
        packets[2],
        Ok(RtcpPacket::Pli {
            sender_ssrc: 0x5143_4153,
            media_ssrc: 7
        })
    );
    for second in 1..=3 {
        receiver.handle_timeout(t0 + Duration::from_secs(second));
    }
    assert_eq!(receiver.poll_event(), Some(MediaEvent::KeyframeUnanswered));
    assert_eq!(receiver.stats().keyframe_requests, 4);
}

#[test]
fn sends_receiver_reports_and_aac_silence_without_audio() {
    let t0 = crate::clock::monotonic().into_std();
    let remote = RemoteMedia {
        audio: None,
        ..remote()
    };
    let mut receiver = MediaReceiver::new(&remote, MediaConfig::default(), t0).unwrap();
    frames(&mut receiver);
    for i in 0..150u16 {
        let now = t0 + Duration::from_millis(u64::from(i) * 40);
        let payload = if i % 50 == 0 { IDR } else { NON_IDR };
        receiver
            .handle_rtp(
                now,
                Track::Video,
                &rtp(96, i, u32::from(i) * 3600, 7, true, payload),
            )
            .unwrap();
        receiver.handle_timeout(now);
    }
    let out = frames(&mut receiver);
    let aac = out
        .iter()
        .filter(|f| {
            matches!(
                f,
                MediaFrame::Audio {
                    format: AudioFormat::Aac,
                    ..
                }
            )
        })
        .count();
    // 6 s of video, silence kept 200 ms behind: about 270 AAC frames of 21.3 ms.
    assert!((250..=290).contains(&aac), "{aac}");
    let reports: Vec<_> = transmits(&mut receiver)
        .into_iter()
        .filter(|t| rtcp::parse_compound(&t.data).nth(2).is_none())
        .collect();
    assert!(!reports.is_empty());
    assert!(matches!(
        rtcp::parse_compound(&reports[0].data).next(),
        Some(Ok(RtcpPacket::ReceiverReport { ssrc: 0x5143_4153 }))
    ));
    let stats = receiver.stats();
    assert_eq!(stats.keyframe_interval_ms, Some(2000));
    assert_eq!(stats.video.unwrap().packets, 150);
}
