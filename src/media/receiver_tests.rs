use super::*;
use crate::media::remote::{AudioOutputs, RemoteStream};
use crate::media::rtp::write_packet;
use crate::media::speex::{SpeexBand, SpeexEncoder};
use crate::media::sps::tests::{PPS, SPS_320X240};

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
    receiver.handle_timeout(t0);
    assert!(
        receiver.poll_timeout().is_some_and(|at| at > t0),
        "a request waiting for the video SSRC must not keep the driver spinning"
    );
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
    for second in 1..=3u16 {
        let now = t0 + Duration::from_secs(u64::from(second));
        // The sender keeps sending (no IDR): requests pause only when its video stops.
        receiver
            .handle_rtp(now, Track::Video, &rtp(96, 1 + second, 0, 7, true, NON_IDR))
            .unwrap();
        receiver.handle_timeout(now);
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
    let rates: Vec<_> = out
        .iter()
        .filter_map(|f| match f {
            MediaFrame::Metadata(meta) => meta.frame_rate,
            _ => None,
        })
        .collect();
    assert_eq!(rates, vec![25.0], "the frame rate is measured once");
    let stats = receiver.stats();
    assert_eq!(stats.keyframe_interval_ms, Some(2000));
    assert_eq!(stats.video.unwrap().packets, 150);
}

/// One second of `codec` audio in 20 ms packets becomes about one second of AAC.
fn one_second_of_aac(codec: &str, payload_type: u8, clock_rate: u32, payloads: &[Vec<u8>]) {
    let t0 = crate::clock::monotonic().into_std();
    let remote = RemoteMedia {
        audio: Some(stream(codec, payload_type, clock_rate, "")),
        video: None,
    };
    let mut receiver = MediaReceiver::new(&remote, MediaConfig::default(), t0).unwrap();
    let step = clock_rate / 50;
    for (i, payload) in payloads.iter().enumerate() {
        let now = t0 + Duration::from_millis(i as u64 * 20);
        let datagram = rtp(payload_type, i as u16, i as u32 * step, 5, false, payload);
        receiver.handle_rtp(now, Track::Audio, &datagram).unwrap();
    }
    let aac: Vec<u32> = frames(&mut receiver)
        .into_iter()
        .filter_map(|f| match f {
            MediaFrame::Audio {
                ts_ms,
                format: AudioFormat::Aac,
                ..
            } => Some(ts_ms),
            _ => None,
        })
        .collect();
    // 50 packets of 20 ms = 46.9 AAC frames at 48 kHz; the encoder holds back its delay.
    assert!(
        (40..=47).contains(&aac.len()),
        "{codec}: {} frames",
        aac.len()
    );
    assert_eq!(aac[0], 0);
    assert_eq!(receiver.stats().audio.unwrap().errors, 0, "{codec}");
}

#[test]
fn g722_opus_and_speex_calls_are_transcoded_to_aac() {
    use audio_codec::Encoder as _;
    let tone = |rate: u32, n: usize| -> Vec<i16> {
        (0..n)
            .map(|i| (6000.0 * (i as f64 * 0.05 * 48_000.0 / f64::from(rate)).sin()) as i16)
            .collect()
    };
    let mut g722 = audio_codec::g722::G722Encoder::new();
    let g722_payloads: Vec<_> = tone(16_000, 16_000)
        .chunks(320)
        .map(|f| g722.encode(f))
        .collect();
    one_second_of_aac("G722", 9, 8000, &g722_payloads);
    let mut opus = opus_rs::OpusEncoder::new(48_000, 1, opus_rs::Application::Voip).unwrap();
    let opus_payloads: Vec<_> = tone(48_000, 48_000)
        .chunks(960)
        .map(|f| {
            let mut packet = vec![0; 1500];
            let len = opus.encode_i16(f, 960, &mut packet).unwrap();
            packet.truncate(len);
            packet
        })
        .collect();
    one_second_of_aac("opus", 111, 48_000, &opus_payloads);
    for (band, rate) in [(SpeexBand::Narrow, 8000), (SpeexBand::Wide, 16_000)] {
        let mut speex = SpeexEncoder::new(band);
        let payloads: Vec<_> = tone(rate, rate as usize)
            .chunks(speex.frame_size())
            .map(|f| speex.encode(f))
            .collect();
        one_second_of_aac("speex", 97, rate, &payloads);
    }
}

#[test]
fn wideband_speex_is_both_copied_and_transcoded() {
    let t0 = crate::clock::monotonic().into_std();
    let remote = RemoteMedia {
        audio: Some(stream("speex", 97, 16_000, "")),
        video: None,
    };
    let config = MediaConfig {
        audio_outputs: AudioOutputs {
            aac: Some(Default::default()),
            copy: true,
        },
        ..Default::default()
    };
    let mut receiver = MediaReceiver::new(&remote, config, t0).unwrap();
    let mut speex = SpeexEncoder::new(SpeexBand::Wide);
    for i in 0..50u16 {
        let now = t0 + Duration::from_millis(u64::from(i) * 20);
        let payload = speex.encode(&[0; 320]);
        let datagram = rtp(97, i, u32::from(i) * 320, 5, false, &payload);
        receiver.handle_rtp(now, Track::Audio, &datagram).unwrap();
        receiver.handle_timeout(now);
    }
    let out = frames(&mut receiver);
    let count = |format| {
        out.iter()
            .filter(|f| matches!(f, MediaFrame::Audio { format: x, .. } if *x == format))
            .count()
    };
    assert_eq!(count(AudioFormat::Speex), 50);
    assert!(
        (40..=47).contains(&count(AudioFormat::Aac)),
        "{}",
        count(AudioFormat::Aac)
    );
    assert_eq!(receiver.stats().audio.unwrap().errors, 0);
}

#[test]
fn a_reinvite_rebuilds_only_what_changed_and_keeps_the_timeline() {
    let t0 = crate::clock::monotonic().into_std();
    let mut receiver = MediaReceiver::new(&remote(), MediaConfig::default(), t0).unwrap();
    receiver
        .handle_rtp(t0, Track::Video, &rtp(96, 1, 0, 7, true, IDR))
        .unwrap();
    frames(&mut receiver);
    transmits(&mut receiver);

    // Only the address moved: nothing restarts.
    let mut moved = remote();
    moved.video.as_mut().unwrap().rtp = "127.0.0.1:7000".parse().unwrap();
    let t1 = t0 + Duration::from_secs(1);
    receiver.update_remote(&moved, t1).unwrap();
    receiver
        .handle_rtp(t1, Track::Video, &rtp(96, 2, 90_000, 7, true, NON_IDR))
        .unwrap();
    let out = frames(&mut receiver);
    assert!(
        matches!(
            out[..],
            [MediaFrame::Video {
                dts_ms: 1000,
                keyframe: false,
                ..
            }]
        ),
        "{out:?}"
    );

    // New video parameters: the video path restarts, waits for an IDR and asks for one.
    let mut renegotiated = moved.clone();
    renegotiated.video.as_mut().unwrap().fmtp = "packetization-mode=1".into();
    let t2 = t0 + Duration::from_secs(2);
    receiver.update_remote(&renegotiated, t2).unwrap();
    let idr_with_sets = [SPS_320X240, PPS, IDR];
    let mut stap = vec![0x18];
    for nal in idr_with_sets {
        stap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        stap.extend_from_slice(nal);
    }
    receiver
        .handle_rtp(t2, Track::Video, &rtp(96, 3, 180_000, 7, true, NON_IDR))
        .unwrap();
    assert_eq!(
        transmits(&mut receiver).len(),
        1,
        "a PLI for the restarted path"
    );
    let t3 = t2 + Duration::from_millis(40);
    receiver
        .handle_rtp(t3, Track::Video, &rtp(96, 4, 183_600, 7, true, &stap))
        .unwrap();
    let out = frames(&mut receiver);
    assert!(matches!(out[0], MediaFrame::VideoConfig(_)), "{out:?}");
    assert!(
        matches!(
            out[1],
            MediaFrame::Video {
                dts_ms: 2040,
                keyframe: true,
                ..
            }
        ),
        "{out:?}"
    );
}

#[test]
fn audio_outputs_follow_the_targets_mid_call() {
    let t0 = crate::clock::monotonic().into_std();
    let remote = RemoteMedia {
        audio: Some(stream("PCMU", 0, 8000, "")),
        video: None,
    };
    let copy_only = AudioOutputs {
        aac: None,
        copy: true,
    };
    let config = MediaConfig {
        audio_outputs: copy_only,
        ..Default::default()
    };
    let mut receiver = MediaReceiver::new(&remote, config, t0).unwrap();
    let mut seq = 0u16;
    let mut feed = |receiver: &mut MediaReceiver, packets: u16| {
        for _ in 0..packets {
            let now = t0 + Duration::from_millis(u64::from(seq) * 20);
            let datagram = rtp(0, seq, u32::from(seq) * 160, 5, false, &[0x55; 160]);
            receiver.handle_rtp(now, Track::Audio, &datagram).unwrap();
            receiver.handle_timeout(now);
            seq += 1;
        }
        let now = t0 + Duration::from_millis(u64::from(seq) * 20);
        (frames(receiver), now)
    };
    let count = |frames: &[MediaFrame], format| {
        frames
            .iter()
            .filter(|f| matches!(f, MediaFrame::Audio { format: x, .. } if *x == format))
            .count()
    };

    let (first, now) = feed(&mut receiver, 25);
    assert_eq!(
        (
            count(&first, AudioFormat::Pcmu),
            count(&first, AudioFormat::Aac)
        ),
        (25, 0)
    );

    // An AAC target joins: the metadata now says AAC, and the sequence header goes out.
    let both = AudioOutputs {
        aac: Some(Default::default()),
        copy: true,
    };
    receiver.set_audio_outputs(both, now).unwrap();
    let announced = frames(&mut receiver);
    assert!(
        matches!(&announced[..], [MediaFrame::Metadata(m), MediaFrame::AudioConfig(_)] if m.audio == Some(AudioFormat::Aac)),
        "{announced:?}"
    );
    let (second, now) = feed(&mut receiver, 50);
    assert_eq!(count(&second, AudioFormat::Pcmu), 50);
    assert!(
        (40..=47).contains(&count(&second, AudioFormat::Aac)),
        "{second:?}"
    );

    // The copy target leaves: the AAC encoder carries on, no header repeated.
    let aac_only = AudioOutputs {
        copy: false,
        ..both
    };
    receiver.set_audio_outputs(aac_only, now).unwrap();
    let (third, _) = feed(&mut receiver, 25);
    assert_eq!(count(&third, AudioFormat::Pcmu), 0);
    assert!(count(&third, AudioFormat::Aac) > 20);
    assert!(
        !third
            .iter()
            .any(|f| matches!(f, MediaFrame::AudioConfig(_)))
    );
    assert_eq!(receiver.stats().audio.unwrap().errors, 0);
}
