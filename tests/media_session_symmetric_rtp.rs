//! The session's sockets: RTP/RTCP port pairs from the range, symmetric RTP (our RTCP goes back
//! to where the peer's packets come from, on the muxed port when rtcp-mux is negotiated), and
//! source latching (a second sender is ignored while the first is alive).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use sipcast::media::rtcp::{RtcpPacket, parse_compound};
use sipcast::media::rtp::{RtpPacket, write_packet};
use sipcast::media::{LocalMedia, MediaConfig, MediaSession, RemoteMedia, RemoteStream};
use tokio::net::UdpSocket;

const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
const IDR: &[u8] = &[0x65, 0x88, 0x84, 0x00, 0x33, 0xff];
const SPROP: &str = "Z0LADdkBQfsBEAAAAwAQAAADAyDxQqSA,aMuDyyA=";

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut out = Vec::new();
    write_packet(
        &mut out,
        &RtpPacket {
            marker: true,
            payload_type: 96,
            sequence: seq,
            timestamp: u32::from(seq) * 3600,
            ssrc,
            payload: IDR,
        },
    );
    out
}

/// Waits for an RTCP datagram with a PLI on `socket`.
async fn receive_pli(socket: &UdpSocket) -> (Vec<RtcpPacket<'static>>, SocketAddr) {
    let mut buf = vec![0u8; 2048];
    let (len, from) = tokio::time::timeout(Duration::from_secs(5), socket.recv_from(&mut buf))
        .await
        .expect("RTCP from the session")
        .unwrap();
    let bytes: &'static [u8] = Box::leak(buf[..len].to_vec().into_boxed_slice());
    (parse_compound(bytes).map(Result::unwrap).collect(), from)
}

#[tokio::test]
async fn rtcp_goes_back_to_the_latched_source_and_other_senders_are_ignored() {
    let local = LocalMedia::bind(LOCALHOST, 40_000..=40_999, true)
        .await
        .unwrap();
    let video = local.video.clone().unwrap();
    let (rtp_port, rtcp_port) = (video.rtp_port(), video.rtcp.local_addr().unwrap().port());
    assert!(rtp_port % 2 == 0 && rtcp_port == rtp_port + 1);
    assert!((40_000..=40_999).contains(&rtp_port));
    assert_ne!(rtp_port, local.audio.rtp_port());

    // The SDP names a dead address; the peer really sends from elsewhere (NAT).
    let peer_rtp = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let stream = RemoteStream {
        fmtp: format!("packetization-mode=1;sprop-parameter-sets={SPROP}"),
        ..RemoteStream::new("127.0.0.1:9".parse().unwrap(), 96, "H264", 90_000)
    };
    let remote = RemoteMedia {
        audio: None,
        video: Some(stream),
    };
    let (session, mut media) = MediaSession::start(local, remote, MediaConfig::default()).unwrap();
    let rogue = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    peer_rtp
        .send_to(&rtp(1, 7), (LOCALHOST, rtp_port))
        .await
        .unwrap();
    rogue
        .send_to(&rtp(500, 99), (LOCALHOST, rtp_port))
        .await
        .unwrap();

    // Without a latched RTCP source the PLI goes to the SDP's RTCP address (port 10, dead);
    // once the peer's RTCP arrives it is latched and the next request comes back to it.
    let peer_rtcp = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let mut sr = Vec::new();
    sipcast::media::rtcp::write_receiver_report(&mut sr, 7, &[]);
    peer_rtcp
        .send_to(&sr, (LOCALHOST, rtcp_port))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    session.request_keyframe();
    // The IDR above answered the start request, so this opens a new episode: a PLI now.
    let (packets, from) = receive_pli(&peer_rtcp).await;
    assert_eq!(from.port(), rtcp_port, "sent from our RTCP port");
    assert!(
        packets
            .iter()
            .any(|p| matches!(p, RtcpPacket::Pli { media_ssrc: 7, .. })),
        "{packets:?}"
    );

    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = session.status();
    assert_eq!(
        status.stats.video.as_ref().unwrap().ssrc,
        Some(7),
        "the rogue SSRC never got in"
    );
    assert!(status.last_rtp_at.is_some() && status.last_rtcp_at.is_some());
    let first = media.frames.recv().await.unwrap();
    assert!(matches!(first, sipcast::frame::MediaFrame::Metadata(_)));
    session.stop().await;
}

#[tokio::test]
async fn with_rtcp_mux_rtcp_shares_the_rtp_port_both_ways() {
    let local = LocalMedia::bind(LOCALHOST, 41_000..=41_999, true)
        .await
        .unwrap();
    let rtp_port = local.video.as_ref().unwrap().rtp_port();
    let peer = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let stream = RemoteStream {
        rtcp_mux: true,
        fmtp: format!("sprop-parameter-sets={SPROP}"),
        ..RemoteStream::new(peer.local_addr().unwrap(), 96, "H264", 90_000)
    };
    let remote = RemoteMedia {
        audio: None,
        video: Some(stream),
    };
    let (session, _media) = MediaSession::start(local, remote, MediaConfig::default()).unwrap();
    // A non-IDR frame first: the start request stays open and a PLI comes at once.
    let mut packet = rtp(1, 7);
    let last = packet.len() - IDR.len();
    packet[last] = 0x41;
    peer.send_to(&packet, (LOCALHOST, rtp_port)).await.unwrap();
    let (packets, from) = receive_pli(&peer).await;
    assert_eq!(from.port(), rtp_port, "RTCP from the RTP port");
    assert!(packets.iter().any(|p| matches!(p, RtcpPacket::Pli { .. })));
    // RTCP from the peer on the same port is recognised as RTCP, not RTP.
    let mut rr = Vec::new();
    sipcast::media::rtcp::write_receiver_report(&mut rr, 7, &[]);
    peer.send_to(&rr, (LOCALHOST, rtp_port)).await.unwrap();
    // Status is published every 250 ms.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = session.status();
    assert!(status.last_rtcp_at.is_some());
    assert_eq!(status.stats.video.unwrap().packets, 1);
    session.stop().await;
}
