//! The demo's test callee reads SIP requests and RTP from the network: whatever arrives, in
//! or out of its call, it answers or ignores without panicking. Also feeds the bytes to the
//! Annex-B splitter that reads the bundled clip.
#![no_main]

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sipcast::demo::callee::{Callee, CalleeMedia};
use sipcast::demo::clip::{Clip, split_annex_b};
use sipcast::sip::core::message::{Framed, SipMessage, parse_datagram};
use sipcast::sip::core::sdp::{Direction, LocalMedia, render};

fn clip() -> Arc<Clip> {
    static CLIP: OnceLock<Arc<Clip>> = OnceLock::new();
    CLIP.get_or_init(|| Arc::new(Clip::bundled().expect("the bundled clip parses")))
        .clone()
}

fn message(text: &str) -> Option<SipMessage> {
    match parse_datagram(text.as_bytes()) {
        Ok(Framed::Message(m, _)) => Some(*m),
        _ => None,
    }
}

/// A request of ours in the call `call-1`, as the daemon would send it.
fn request(method: &str, to_tag: &str, body: &str) -> Option<SipMessage> {
    message(&format!(
        "{method} sip:callee@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n\
         From: <sip:demo@127.0.0.1>;tag=caller\r\nTo: <sip:callee@127.0.0.1:5070>{to_tag}\r\n\
         Call-ID: call-1\r\nCSeq: 1 {method}\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    ))
}

fuzz_target!(|data: &[u8]| {
    let _ = split_annex_b(Bytes::copy_from_slice(data));
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let media = CalleeMedia {
        ip: "127.0.0.1".parse().expect("an IP"),
        audio_port: 7000,
        video_port: 7002,
        sip_port: 5070,
    };
    let mut callee = Callee::new(clip(), media, "fuzz".into());
    if mode & 1 == 1 {
        // Answer a real offer first, so in-dialog requests and RTP events are looked at.
        let offer = render(
            &LocalMedia {
                address: "127.0.0.1".parse().expect("an IP"),
                audio_rtp_port: Some(40000),
                video_rtp_port: Some(40002),
                direction: Direction::SendRecv,
                video_content: Default::default(),
                crypto: None,
            },
            1,
            1,
            None,
        );
        for request in [
            request("INVITE", "", &offer),
            request("ACK", ";tag=fuzz", ""),
        ] {
            if let Some(request) = request {
                callee.handle_request(&request);
            }
        }
    }
    if mode & 2 == 2 {
        let _ = callee.handle_audio_rtp(rest);
    } else if let Ok(Framed::Message(request, _)) = parse_datagram(rest) {
        let _ = callee.handle_request(&request);
    }
});
