//! The SIP user agent against real sipp peers on 127.0.0.1. Each test passes only if sipp ran
//! its scenario (tests/sipp/*.xml) to the end and exited 0.
mod peers;
mod sip_support;
use sip_support::*;
use sipcast::secret::{Secret, SecretSource};
use sipcast::sip::core::dtmf::parse_event_packet;
use sipcast::sip::{CallEvent, Direction, DtmfMethod, DtmfPlan, Transport};
use std::sync::Arc;
use std::time::Duration;

fn password() -> Option<SecretSource> {
    Some(SecretSource::Inline(Secret::new("wonderland")))
}

#[tokio::test]
async fn answered_call_reports_h264_and_pcmu_and_hangs_up_with_bye() {
    let sipp = Sipp::uas("uas_answer_h264_pcmu.xml", &[]);
    let ua = user_agent().await;
    let (call, mut events) = ua.dial(call_config(&sipp));
    let established = wait_for(&mut events, 20, |e| {
        matches!(e, CallEvent::Established { .. })
    })
    .await;
    let CallEvent::Established {
        negotiated,
        call_id,
    } = established
    else {
        unreachable!()
    };
    assert_eq!(call_id, call.call_id());
    let audio = negotiated.audio.expect("audio negotiated");
    assert_eq!(
        (audio.codec.as_str(), audio.payload_type, audio.clock_rate),
        ("PCMU", 0, 8000)
    );
    assert_eq!(audio.telephone_event_pt, Some(101));
    assert_eq!(audio.remote_rtp.port(), 6000);
    let video = negotiated.video.expect("video negotiated");
    assert_eq!(
        (video.codec.as_str(), video.payload_type, video.clock_rate),
        ("H264", 109, 90000)
    );
    assert_eq!(
        video.fmtp.get("packetization-mode").map(String::as_str),
        Some("1")
    );
    assert!(video.fmtp.contains_key("sprop-parameter-sets"));
    assert_eq!(video.rtcp_fb, vec!["nack pli", "ccm fir"]);
    assert_eq!(video.direction, Direction::SendOnly);
    call.hangup().await;
    let ended = wait_for(&mut events, 10, |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(matches!(ended, CallEvent::Ended(end) if end.reason == "hung up"));
    sipp.finish().await;
}

#[tokio::test]
async fn call_over_tcp_uses_one_connection_for_invite_ack_and_bye() {
    let sipp = Sipp::uas_tcp("uas_answer_h264_pcmu.xml");
    let ua = user_agent().await;
    let mut config = call_config(&sipp);
    config.account.transport = Transport::Tcp;
    answer_then_hang_up(&ua, config).await;
    sipp.finish().await;
}

#[tokio::test]
async fn call_over_tls_checks_the_certificate_and_name() {
    let sipp = Sipp::uas_tcp("uas_answer_h264_pcmu.xml");
    let front = TlsFront::new(sipp.port);
    let proxy = format!("sip:127.0.0.1:{};transport=tls", front.port);

    // Without our CA the certificate is not trusted: the call fails fast with 503.
    let ua = user_agent().await;
    let mut config = call_config(&sipp);
    config.account.transport = Transport::Tls;
    config.account.proxy = Some(proxy.clone());
    let (_call, mut events) = ua.dial(config.clone());
    let CallEvent::Ended(end) = wait_for_end(&mut events).await else {
        unreachable!()
    };
    assert_eq!(end.sip_status, Some(503));
    assert_eq!(
        end.reason, "TLS certificate not trusted for 127.0.0.1",
        "{end:?}"
    );

    let mut ua_config = sipcast::sip::UaConfig::new("127.0.0.1:0".parse().unwrap());
    ua_config.tls_ca_file = Some(front.ca_file());
    let ua = sipcast::sip::UserAgent::bind(ua_config).await.unwrap();
    answer_then_hang_up(&ua, config).await;
    sipp.finish().await;
}

/// Dials, waits for the answer, hangs up.
async fn answer_then_hang_up(ua: &sipcast::sip::UserAgent, config: sipcast::sip::CallConfig) {
    let (call, mut events) = ua.dial(config);
    wait_for(&mut events, 20, |e| {
        matches!(e, CallEvent::Established { .. })
    })
    .await;
    call.hangup().await;
}

async fn wait_for_end(events: &mut tokio::sync::mpsc::UnboundedReceiver<CallEvent>) -> CallEvent {
    loop {
        let event = next_event(events, 10).await;
        if matches!(event, CallEvent::Ended(_)) {
            return event;
        }
    }
}

#[tokio::test]
async fn invite_challenged_with_401_is_retried_with_digest_and_answered() {
    let sipp = Sipp::uas("uas_challenge_401.xml", &[]);
    let ua = user_agent().await;
    let mut config = call_config(&sipp);
    config.account.auth_user = Some("alice".into());
    config.account.password = password();
    answer_then_hang_up(&ua, config).await;
    sipp.finish().await;
}

#[tokio::test]
async fn busy_callee_ends_the_call_with_486() {
    let sipp = Sipp::uas("uas_busy_486.xml", &[]);
    let ua = user_agent().await;
    let (_call, mut events) = ua.dial(call_config(&sipp));
    let end = loop {
        if let CallEvent::Ended(end) = next_event(&mut events, 20).await {
            break end;
        }
    };
    assert_eq!(end.sip_status, Some(486));
    assert_eq!(end.reason, "486 Busy Here");
    sipp.finish().await;
}

#[tokio::test]
async fn remote_bye_ends_the_call_as_remote_hangup() {
    let sipp = Sipp::uas("uas_remote_bye.xml", &[]);
    let ua = user_agent().await;
    let (_call, mut events) = ua.dial(call_config(&sipp));
    wait_for(&mut events, 20, |e| {
        matches!(e, CallEvent::Established { .. })
    })
    .await;
    let ended = wait_for(&mut events, 20, |e| matches!(e, CallEvent::Ended(_))).await;
    let CallEvent::Ended(end) = ended else {
        unreachable!()
    };
    assert!(end.by_remote, "{end:?}");
    sipp.finish().await;
}

#[tokio::test]
async fn peer_reinvite_refreshes_the_session_and_moves_media() {
    let sipp = Sipp::uas("uas_reinvite_refresh.xml", &[]);
    let ua = user_agent().await;
    let (call, mut events) = ua.dial(call_config(&sipp));
    wait_for(&mut events, 20, |e| {
        matches!(e, CallEvent::Established { .. })
    })
    .await;
    let changed = wait_for(&mut events, 20, |e| matches!(e, CallEvent::MediaChanged(_))).await;
    let CallEvent::MediaChanged(media) = changed else {
        unreachable!()
    };
    assert_eq!(media.audio.map(|a| a.remote_rtp.port()), Some(6010));
    // Give sipp time to ACK our 200 before we hang up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.hangup().await;
    sipp.finish().await;
}

#[tokio::test]
async fn dtmf_falls_back_to_info_and_keyframe_request_is_an_info() {
    let sipp = Sipp::uas("uas_dtmf_info.xml", &[]);
    let ua = user_agent().await;
    let mut config = call_config(&sipp);
    config.dtmf = DtmfPlan {
        digits: "12#".into(),
        method: DtmfMethod::Rfc4733,
        delay: Duration::from_millis(100),
    };
    let (call, mut events) = ua.dial(config);
    wait_for(&mut events, 20, |e| {
        matches!(e, CallEvent::Established { .. })
    })
    .await;
    let mut so_far = String::new();
    while so_far != "12#" {
        if let CallEvent::DtmfSent { so_far: sent } =
            wait_for(&mut events, 10, |e| matches!(e, CallEvent::DtmfSent { .. })).await
        {
            so_far = sent;
        }
    }
    call.request_keyframe();
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.hangup().await;
    sipp.finish().await;
}

#[tokio::test]
async fn rfc4733_packets_for_123_hash_on_the_wire() {
    let receiver = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let rtp_port = receiver.local_addr().unwrap().port().to_string();
    let sipp = Sipp::uas("uas_dtmf_rfc4733.xml", &["-key", "rtp_port", &rtp_port]);
    let ua = user_agent().await;
    let sender = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    let mut config = call_config(&sipp);
    config.dtmf = DtmfPlan {
        digits: "123#".into(),
        method: DtmfMethod::Rfc4733,
        delay: Duration::from_millis(50),
    };
    config.local_media.audio_rtp_port = Some(sender.local_addr().unwrap().port());
    config.dtmf_rtp = Some(sender.clone());
    let (call, mut events) = ua.dial(config);
    wait_for(&mut events, 20, |e| {
        matches!(e, CallEvent::Established { .. })
    })
    .await;
    let mut packets = Vec::new();
    let mut buf = [0u8; 1500];
    loop {
        let (len, from) =
            tokio::time::timeout(Duration::from_secs(5), receiver.recv_from(&mut buf))
                .await
                .expect("RTP in time")
                .unwrap();
        assert_eq!(
            from,
            sender.local_addr().unwrap(),
            "symmetric RTP: sent from the audio port"
        );
        let packet = parse_event_packet(&buf[..len]).expect("an RFC 4733 packet");
        packets.push(packet);
        if packet.event == 11 && packets.iter().filter(|p| p.event == 11 && p.end).count() == 3 {
            break;
        }
    }
    let events_in_order: Vec<u8> = packets
        .iter()
        .filter(|p| p.marker)
        .map(|p| p.event)
        .collect();
    assert_eq!(events_in_order, vec![1, 2, 3, 11]);
    for event in [1u8, 2, 3, 11] {
        let of: Vec<_> = packets.iter().filter(|p| p.event == event).collect();
        assert_eq!(
            of.len(),
            10,
            "8 packets over 160 ms plus 2 repeated end packets"
        );
        assert!(of[0].marker && of[1..].iter().all(|p| !p.marker));
        assert!(
            of.iter()
                .all(|p| p.payload_type == 101 && p.timestamp == of[0].timestamp)
        );
        assert!(of.windows(2).all(|w| w[1].duration >= w[0].duration));
        assert_eq!(of.iter().filter(|p| p.end).count(), 3);
        assert_eq!(of.last().unwrap().duration, 1280);
    }
    let starts: Vec<u32> = packets
        .iter()
        .filter(|p| p.marker)
        .map(|p| p.timestamp)
        .collect();
    assert!(
        starts
            .windows(2)
            .all(|w| w[1].wrapping_sub(w[0]) == 260 * 8),
        "160 ms tone + 100 ms gap: {starts:?}"
    );
    let seqs: Vec<u16> = packets.iter().map(|p| p.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)));
    let sent = wait_for(
        &mut events,
        5,
        |e| matches!(e, CallEvent::DtmfSent { so_far } if so_far == "123#"),
    )
    .await;
    assert!(matches!(sent, CallEvent::DtmfSent { .. }));
    call.hangup().await;
    sipp.finish().await;
}

#[tokio::test]
async fn registrar_with_digest_then_call_then_unregister() {
    let registrar = Sipp::uas("registrar_digest.xml", &[]);
    let callee = Sipp::uas("uas_answer_h264_pcmu.xml", &[]);
    let ua = user_agent().await;
    let mut config = call_config(&registrar);
    config.account.register = true;
    config.account.auth_user = Some("alice".into());
    config.account.password = password();
    config.to = format!("sip:service@{}", callee.addr());
    let (call, mut events) = ua.dial(config);
    assert_eq!(next_event(&mut events, 10).await, CallEvent::Registering);
    wait_for(&mut events, 20, |e| matches!(e, CallEvent::Registered)).await;
    wait_for(&mut events, 20, |e| {
        matches!(e, CallEvent::Established { .. })
    })
    .await;
    call.hangup().await;
    callee.finish().await;
    registrar.finish().await;
}

#[tokio::test]
async fn two_calls_on_one_account_share_one_registration_until_shutdown() {
    let registrar = Sipp::uas("registrar_digest.xml", &[]);
    let callee = Sipp::uas("uas_answer_h264_pcmu.xml", &["-m", "2"]);
    let ua = user_agent().await;
    let mut config = call_config(&registrar);
    config.account.register = true;
    config.account.auth_user = Some("alice".into());
    config.account.password = password();
    config.to = format!("sip:service@{}", callee.addr());
    let (_first, mut first_events) = ua.dial(config.clone());
    let (_second, mut second_events) = ua.dial(config);
    for events in [&mut first_events, &mut second_events] {
        wait_for(events, 20, |e| matches!(e, CallEvent::Established { .. })).await;
    }
    // Shutdown hangs up both calls, then removes the one binding.
    ua.shutdown().await;
    // The registrar scenario takes exactly one REGISTER exchange and one un-REGISTER.
    callee.finish().await;
    registrar.finish().await;
}
