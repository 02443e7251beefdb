//! A meeting connector answers with two video m-lines, the slides first: the main one (by its
//! `a=content`, not its position) is streamed. Real `sipcast run`, sipp and nginx-rtmp.

mod e2e_support;
mod peers;

use e2e_support::*;

#[test]
fn the_main_video_is_streamed_when_the_slides_come_first() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let mut callee = Sipp::start("e2e_callee_slides_and_main.xml", &[]);
    let live = daemon.go_live(
        "connector",
        &SpecText::direct(&callee.addr(), &[stream_url(nginx, "connector")]),
    );
    let call = hang_up_after_the_pcap(daemon, &mut callee, "connector", answered_at(&live));
    let status_video = live["call"]["video_codec"].clone();
    assert_eq!(status_video, "H264", "{live}");
    // The pcap's video is PT 96, the main m-line's: chosen by position (the slides, PT 97) it
    // would be dropped and the recording would be the slate.
    let probe = check_recording(nginx, "connector", call);
    assert_eq!((probe.width, probe.height), (Some(320), Some(240)));
}

#[test]
fn a_spec_that_wants_the_slides_takes_the_slides_m_line() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let callee = Sipp::start("e2e_callee_slides_and_main.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "slides")])
        .call_line("video_content = \"slides\"");
    let live = daemon.go_live("slides", &spec);
    // The pcap sends the people (PT 96); the slides m-line (PT 97) carries nothing here, so
    // the viewers keep seeing the slate: proof the slides stream was the one chosen.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = daemon.status("slides").unwrap();
    assert_eq!(live["call"]["video_codec"], "H264");
    assert_eq!(status["rtmp"][0]["showing"], "slate", "{status}");
    assert_eq!(status["call"]["state"], "established", "{status}");
}
