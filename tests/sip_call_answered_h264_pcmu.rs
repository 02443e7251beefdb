//! A gateway answering with H.264 + PCMU: we report the negotiated media, then hang up with BYE.
mod sip_support;
use sip_support::*;
use sipcast::sip::{CallEvent, Direction};

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
