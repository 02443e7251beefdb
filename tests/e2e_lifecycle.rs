//! End to end, one call and one publish per broadcast whatever the order of events: a spec
//! deleted and dropped again while its callee never answers BYE. Real `sipcast run`, sipp and
//! nginx-rtmp on 127.0.0.1.

mod e2e_support;
mod peers;

use std::time::Duration;

use e2e_support::*;

#[test]
fn delete_and_re_add_while_the_bye_goes_unanswered_never_doubles_the_publisher() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let silent = Sipp::start(
        "e2e_callee_ignores_bye.xml",
        &["-default_behaviors", "none"],
    );
    let key = stream_url(nginx, "race");
    let first = daemon.go_live(
        "race",
        &SpecText::direct(&silent.addr(), std::slice::from_ref(&key)),
    );
    let first_call = first["call"]["call_id"].clone();
    std::thread::sleep(Duration::from_secs(2));

    // Delete, then drop the spec again at once, now pointing at a callee that behaves.
    let mut next = Sipp::start("e2e_callee.xml", &[]);
    daemon.delete_spec("race");
    let deleted = sipcast::clock::monotonic();
    std::thread::sleep(Duration::from_millis(300));
    daemon.put_spec(
        "race",
        &SpecText::direct(&next.addr(), std::slice::from_ref(&key)).render(),
    );
    let live = daemon.wait_status(
        "race",
        Duration::from_secs(8),
        "the re-added spec's call established and publishing",
        |s| is_streaming(s) && s["call"]["call_id"] != first_call,
    );
    let took = deleted.elapsed();
    eprintln!(
        "re-added spec publishing {:.2} s after the delete",
        took.as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(6),
        "the new attempt waited for the old BYE ({took:?})"
    );
    assert!(
        !nginx
            .error_log()
            .to_lowercase()
            .contains("already publishing"),
        "two publishers met on one key:\n{}",
        nginx.error_log()
    );
    assert_eq!(live["rtmp"][0]["error"], serde_json::Value::Null, "{live}");

    hang_up_after_the_pcap(daemon, &mut next, "race", answered_at(&live));
    std::thread::sleep(Duration::from_millis(500));
    let files = recordings_of(nginx, "race");
    assert_eq!(files.len(), 2, "one recording per call: {files:?}");
    for file in &files {
        let probe = probe_stream(file);
        assert!(probe.first_video_is_keyframe(), "{file:?}");
    }
    peers::tone::check_440_hz(&files[1]);
    let byes = std::fs::read_to_string(silent.dir.path().join("byes")).unwrap_or_default();
    eprintln!(
        "the silent callee got {} BYE(s) while the new call ran",
        byes.lines().count()
    );
}
