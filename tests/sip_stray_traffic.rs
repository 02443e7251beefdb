//! Traffic that belongs to no call: garbage is dropped and counted, an unsolicited INVITE is
//! refused, OPTIONS pings are answered, requests for unknown dialogs get 481.
use sipcast::sip::{UaConfig, UserAgent};
use std::time::Duration;
use tokio::net::UdpSocket;

async fn exchange(peer: &UdpSocket, ua: std::net::SocketAddr, request: &str) -> String {
    peer.send_to(request.as_bytes(), ua).await.unwrap();
    let mut buf = [0u8; 4096];
    let (len, _) = tokio::time::timeout(Duration::from_secs(5), peer.recv_from(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    String::from_utf8_lossy(&buf[..len]).to_string()
}

fn request(method: &str, to_tag: &str, port: u16) -> String {
    format!(
        "{method} sip:sipcast@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method}\r\n\
         From: <sip:intruder@127.0.0.1>;tag=x\r\nTo: <sip:sipcast@127.0.0.1>{to_tag}\r\nCall-ID: stray-{method}\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn stray_requests_get_final_answers_and_garbage_is_counted() {
    let ua = UserAgent::bind(UaConfig::new("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = peer.local_addr().unwrap().port();
    let answer = exchange(&peer, ua.local_addr(), &request("INVITE", "", port)).await;
    assert!(answer.starts_with("SIP/2.0 603 "), "{answer}");
    let answer = exchange(&peer, ua.local_addr(), &request("OPTIONS", "", port)).await;
    assert!(
        answer.starts_with("SIP/2.0 200 ") && answer.contains("Allow: "),
        "{answer}"
    );
    let answer = exchange(&peer, ua.local_addr(), &request("BYE", ";tag=gone", port)).await;
    assert!(answer.starts_with("SIP/2.0 481 "), "{answer}");
    let answer = exchange(&peer, ua.local_addr(), &request("SUBSCRIBE", "", port)).await;
    assert!(answer.starts_with("SIP/2.0 405 "), "{answer}");

    peer.send_to(b"\x00\xffnot sip at all\r\n\r\n", ua.local_addr())
        .await
        .unwrap();
    peer.send_to(&vec![b'A'; 70_000][..65_000], ua.local_addr())
        .await
        .unwrap();
    peer.send_to(b"\r\n\r\n", ua.local_addr()).await.unwrap(); // a keep-alive, not an error
    // The UA still answers after the garbage, and counted exactly the two bad datagrams.
    let answer = exchange(&peer, ua.local_addr(), &request("OPTIONS", "", port)).await;
    assert!(answer.starts_with("SIP/2.0 200 "), "{answer}");
    assert_eq!(ua.dropped_messages(), 2);
}
