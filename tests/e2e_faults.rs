//! End to end, when things go wrong: nginx dies mid-call, the callee vanishes without a BYE,
//! the callee is busy, and the spec gains a target while live. Real `sipcast run`, sipp and
//! nginx-rtmp on 127.0.0.1.

mod e2e_support;
mod peers;

use std::time::Duration;

use e2e_support::*;

#[test]
fn nginx_killed_and_restarted_mid_call_keeps_the_call_and_resumes_with_a_keyframe() {
    let Stage { daemon, nginx, .. } = &mut Stage::new();
    let mut callee = Sipp::start("e2e_callee.xml", &[]);
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "restart")]);
    let live = daemon.go_live("restart", &spec);
    let call_id = live["call"]["call_id"].clone();

    std::thread::sleep(Duration::from_millis(2500));
    nginx.kill();
    let lost = daemon.wait_status("restart", Duration::from_secs(5), "the target lost", |s| {
        target_state(s, 0) != "publishing"
    });
    assert_eq!(
        call_state(&lost),
        "established",
        "the call stays up: {lost}"
    );
    nginx.restart();
    let back = daemon.wait_status(
        "restart",
        Duration::from_secs(8),
        "the target publishing again",
        |s| target_state(s, 0) == "publishing",
    );
    eprintln!("target back after the restart: {}", back["rtmp"][0]);
    assert!(
        back["rtmp"][0]["reconnects"].as_u64().unwrap_or(0) >= 1,
        "{back}"
    );
    assert_eq!(back["call"]["call_id"], call_id, "no redial: {back}");
    assert_eq!(back["attempts"], 1, "{back}");
    assert_eq!(call_state(&back), "established");

    hang_up_after_the_pcap(daemon, &mut callee, "restart", answered_at(&live));
    std::thread::sleep(Duration::from_millis(500));
    let files = recordings_of(nginx, "restart");
    assert_eq!(files.len(), 2, "one recording per connection: {files:?}");
    let after = probe_stream(&files[1]);
    assert!(
        covered_seconds(&after, "video") > 2.0,
        "video resumed after the restart"
    );
    peers::tone::check_440_hz(&files[1]);
}

#[test]
fn callee_killed_without_bye_times_out_media_and_redials_with_backoff() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let mut callee = Sipp::start("e2e_callee.xml", &[]);
    let port = callee.port;
    let spec = SpecText::direct(&callee.addr(), &[stream_url(nginx, "vanish")])
        .call_line("media_timeout = \"3s\"");
    let live = daemon.go_live("vanish", &spec);
    assert_eq!(live["attempts"], 1);

    std::thread::sleep(Duration::from_secs(1));
    callee.kill();
    let killed = sipcast::clock::monotonic();
    let down = daemon.wait_status(
        "vanish",
        Duration::from_secs(10),
        "backoff after the media timeout",
        |s| s["phase"] == "backoff",
    );
    let noticed = killed.elapsed();
    eprintln!(
        "media timeout noticed {:.2} s after the callee died: {}",
        noticed.as_secs_f64(),
        down["call"]
    );
    assert!(
        noticed >= Duration::from_millis(2500),
        "not before the 3 s media timeout"
    );
    assert_eq!(call_state(&down), "failed", "{down}");
    let reason = down["call"]["reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("RTP"),
        "reason names the silent media: {reason}"
    );
    assert!(down["next_attempt_at"].is_string(), "{down}");

    let redialing = daemon.wait_status("vanish", Duration::from_secs(5), "the redial", |s| {
        s["attempts"] == 2
    });
    eprintln!(
        "redial: phase {} call {}",
        redialing["phase"], redialing["call"]["state"]
    );

    // The callee comes back where it was: a redial reaches it. Our BYE to the dead one is
    // still being retransmitted to this port; sipp counts each as a stray call, hence `-m`.
    let _callee = Sipp::start_on("e2e_callee.xml", port, &["-m", "50"]);
    let again = daemon.wait_status(
        "vanish",
        Duration::from_secs(15),
        "a redial answered",
        |s| s["attempts"].as_u64().unwrap_or(0) >= 2 && is_streaming(s),
    );
    eprintln!("answered again on attempt {}", again["attempts"]);
    assert_ne!(again["call"]["call_id"], live["call"]["call_id"]);
}

#[test]
fn busy_callee_486_backs_off_with_sip_status_486() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let busy = Sipp::start("uas_busy_486.xml", &[]);
    let spec = SpecText::direct(&busy.addr(), &[stream_url(nginx, "busy")]);
    daemon.put_spec("busy", &spec.render());
    let down = daemon.wait_status("busy", Duration::from_secs(10), "backoff", |s| {
        s["phase"] == "backoff"
    });
    eprintln!("busy: {} {}", down["call"], down["next_attempt_at"]);
    assert_eq!(down["call"]["sip_status"], 486, "{down}");
    assert_eq!(call_state(&down), "failed", "{down}");
    assert_eq!(down["attempts"], 1, "{down}");
    assert!(down["next_attempt_at"].is_string(), "{down}");
    // The broadcast is desired live: its target shows the slate while the call is down.
    let slate = daemon.wait_status("busy", Duration::from_secs(5), "the slate on air", |s| {
        target_state(s, 0) == "publishing"
    });
    assert_eq!(slate["rtmp"][0]["showing"], "slate", "{slate}");
    assert_eq!(slate["phase"], "backoff", "{slate}");
}

#[test]
fn target_added_while_live_starts_publishing_without_a_redial() {
    add_a_target_while_live(Check::Publishing);
}

/// The new publisher gets the stream's metadata and sequence headers replayed, so its
/// recording starts on a keyframe with AAC.
#[test]
fn target_added_while_live_records_h264_and_aac_from_a_keyframe() {
    add_a_target_while_live(Check::Recordings);
}

/// The first target copies the call's PCMU; the second wants AAC, which nobody produced until
/// then: the media path starts an encoder mid-call and both recordings carry the tone.
#[test]
fn aac_target_added_to_a_copy_only_call_gets_transcoded_audio() {
    add_a_target_while_live(Check::CopyThenAac);
}

#[derive(Clone, Copy, PartialEq)]
enum Check {
    Publishing,
    Recordings,
    CopyThenAac,
}

fn add_a_target_while_live(check: Check) {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let mut callee = Sipp::start("e2e_callee.xml", &[]);
    let first = match check {
        Check::CopyThenAac => target_with(&stream_url(nginx, "first"), "audio_codec = \"copy\""),
        _ => stream_url(nginx, "first"),
    };
    let spec = SpecText::direct(&callee.addr(), std::slice::from_ref(&first));
    let live = daemon.go_live("grow", &spec);

    std::thread::sleep(Duration::from_secs(2));
    let grown = SpecText {
        targets: vec![first, stream_url(nginx, "second")],
        ..spec
    };
    daemon.put_spec("grow", &grown.render());
    daemon.wait_status(
        "grow",
        Duration::from_secs(8),
        "both targets publishing",
        |s| s["rtmp"].as_array().is_some_and(|t| t.len() == 2) && is_streaming(s),
    );
    std::thread::sleep(Duration::from_secs(2));
    let both = daemon.status("grow").expect("status");
    eprintln!("targets 2 s after the edit: {}", both["rtmp"]);
    assert!(is_streaming(&both), "{both}");
    assert_eq!(
        both["call"]["call_id"], live["call"]["call_id"],
        "no redial"
    );
    assert_eq!(both["attempts"], 1, "{both}");
    assert_eq!(both["generation"], 2, "{both}");
    assert_eq!(
        both["rtmp"][0]["reconnects"], 0,
        "the first target untouched"
    );
    assert!(
        both["rtmp"][1]["bytes_sent"].as_u64().unwrap_or(0) > 10_000,
        "{both}"
    );

    // sipp's scenario would fail on a second INVITE; it ends on our one BYE.
    hang_up_after_the_pcap(daemon, &mut callee, "grow", answered_at(&live));
    if check == Check::Publishing {
        return;
    }
    std::thread::sleep(Duration::from_millis(500));
    let first = recordings_of(nginx, "first");
    assert_eq!(first.len(), 1);
    if check == Check::CopyThenAac {
        assert_eq!(ffprobe(&first[0]).audio_codec.as_deref(), Some("pcm_mulaw"));
        peers::tone::check_440_hz(&first[0]);
    }
    let second = recordings_of(nginx, "second");
    assert_eq!(second.len(), 1, "{second:?}");
    let probe = probe_stream(&second[0]);
    assert!(covered_seconds(&probe, "video") > 3.0);
    peers::tone::check_440_hz(&second[0]);
}
