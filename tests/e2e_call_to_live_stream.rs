//! End to end: a spec file dropped into the daemon's directory makes `sipcast run` dial a real
//! sipp callee that plays the committed H.264 + PCMU pcaps; the stream reaches nginx-rtmp;
//! deleting the file hangs up within a second. Directly, through a registrar/proxy with digest
//! authentication, and with a callee sending wideband Speex instead of PCMU.

mod e2e_support;
mod peers;

use std::time::Duration;

use e2e_support::*;

#[test]
fn dropped_spec_dials_sipp_streams_to_nginx_and_deleting_it_sends_bye_within_a_second() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let mut callee = Sipp::start("e2e_callee.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "allhands")]);
    let live = daemon.go_live("allhands", &spec);
    assert_eq!(live["phase"], "streaming", "{live}");
    assert_eq!(live["call"]["sip_status"], 200);
    assert_eq!(live["call"]["audio_codec"], "PCMU");
    assert_eq!(live["call"]["video_codec"], "H264");
    assert_eq!(live["attempts"], 1);
    let url = live["rtmp"][0]["url"].as_str().unwrap_or("");
    assert!(url.ends_with("/live/****"), "stream key redacted: {url}");

    // Halfway through, bytes are flowing.
    std::thread::sleep(Duration::from_secs(3));
    let midway = daemon.status("allhands").expect("status");
    assert!(is_streaming(&midway), "{midway}");
    assert!(
        midway["rtmp"][0]["bytes_sent"].as_u64().unwrap_or(0) > 20_000,
        "{midway}"
    );
    // The call's media as measured: packets flowing, the pcap's 1 s GOP seen.
    let media = &midway["call"]["media"];
    assert!(media["rtp_packets"].as_u64().unwrap_or(0) > 20, "{midway}");
    let gop = media["keyframe_interval_ms"].as_u64().unwrap_or(0);
    assert!(
        (800..=1200).contains(&gop),
        "keyframe interval {gop} ms: {midway}"
    );
    assert!(media["jitter_ms"].as_f64().is_some(), "{midway}");

    let call_seconds = hang_up_after_the_pcap(daemon, &mut callee, "allhands", answered_at(&live));
    check_recording(nginx, "allhands", call_seconds);
    daemon.wait_gone("allhands", Duration::from_secs(2));
}

#[test]
fn registered_call_through_digest_registrar_and_proxy_streams_then_unregisters() {
    let Stage {
        daemon,
        nginx,
        work,
    } = &Stage::new();
    let mut registrar = Sipp::start("e2e_registrar.xml", &[]);
    let mut proxy = Sipp::start("e2e_proxy_callee.xml", &[]);
    let secret = work.path().join("pbx-alice");
    std::fs::write(&secret, "wonderland\n").unwrap();
    let spec = SpecText {
        sip: vec![
            "user = \"alice\"".into(),
            "domain = \"pbx.test\"".into(),
            format!("password_file = \"{}\"", secret.display()),
            "register = true".into(),
            format!("registrar = \"sip:{}\"", registrar.addr()),
            format!("proxy = \"sip:{}\"", proxy.addr()),
        ],
        ..SpecText::direct("pbx.test", &[stream_url(nginx, "pbx")])
    };
    let live = daemon.go_live("pbx", &spec);
    assert_eq!(live["attempts"], 1, "{live}");
    assert_eq!(live["call"]["video_codec"], "H264");
    let call_seconds = hang_up_after_the_pcap(daemon, &mut proxy, "pbx", answered_at(&live));
    check_recording(nginx, "pbx", call_seconds);
    // The registration ends with the call: the registrar's scenario ends with our un-REGISTER.
    registrar.finish(Duration::from_secs(5));
}

#[test]
fn a_wideband_speex_call_reaches_nginx_as_aac_carrying_the_callee_s_tone() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let mut callee = Sipp::start("e2e_callee_speex.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "speex")]);
    let live = daemon.go_live("speex", &spec);
    assert_eq!(live["call"]["audio_codec"], "speex", "{live}");

    std::thread::sleep(Duration::from_secs(3));
    let midway = daemon.status("speex").expect("status");
    let media = &midway["call"]["media"];
    assert!(media["rtp_packets"].as_u64().unwrap_or(0) > 20, "{midway}");
    assert_eq!(media["audio_decode_errors"], 0, "{midway}");

    let call_seconds = hang_up_after_the_pcap(daemon, &mut callee, "speex", answered_at(&live));
    check_recording(nginx, "speex", call_seconds);
}
