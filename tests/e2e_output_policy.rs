//! `[output]` and `backup_url` end to end: a backup ingest records the whole call beside the
//! primary; `unpublish_after` takes the slate off air when the call stays down; `before_call =
//! false` keeps the targets dark until a call is answered. Real `sipcast run`, sipp and
//! nginx-rtmp on 127.0.0.1.

mod e2e_support;
mod peers;

use std::time::Duration;

use e2e_support::*;

#[test]
fn a_backup_ingest_records_the_whole_call_over_its_own_connection() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let backup_dir = tempfile::tempdir().unwrap();
    let backup = Nginx::start(backup_dir.path(), None);
    let mut callee = Sipp::start("e2e_callee.xml", &[]);
    let target = target_with(
        &stream_url(nginx, "twin"),
        &format!("backup_url = \"{}\"", stream_url(&backup, "twin")),
    );
    let live = daemon.go_live("twin", &SpecText::direct(&callee.addr(), &[target]));
    let rtmp = live["rtmp"].as_array().unwrap();
    assert_eq!(rtmp.len(), 2, "primary and backup: {live}");
    assert_eq!(
        (rtmp[0]["backup"].as_bool(), rtmp[1]["backup"].as_bool()),
        (Some(false), Some(true))
    );
    let call = hang_up_after_the_pcap(daemon, &mut callee, "twin", answered_at(&live));
    for ingest in [nginx, &backup] {
        check_recording(ingest, "twin", call);
    }
}

#[test]
fn unpublish_after_takes_the_slate_off_air_while_the_call_stays_down() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let _busy = Sipp::start("uas_busy_486.xml", &["-m", "100"]);
    let mut spec = SpecText::direct(&_busy.addr(), &[stream_url(nginx, "brb")]);
    spec.extra =
        "[redial]\ninitial = \"1s\"\nmax = \"1s\"\n\n[output]\nunpublish_after = \"3s\"\n".into();
    daemon.put_spec("brb", &spec.render());
    let on_air = daemon.wait_status("brb", Duration::from_secs(10), "the slate on air", |s| {
        target_state(s, 0) == "publishing"
    });
    assert_eq!(on_air["rtmp"][0]["showing"], "slate");
    let since = sipcast::clock::monotonic();
    daemon.wait_status(
        "brb",
        Duration::from_secs(8),
        "the target idle again",
        |s| target_state(s, 0) == "idle",
    );
    let off_after = since.elapsed();
    eprintln!(
        "slate unpublished {:.1} s after going on air",
        off_after.as_secs_f64()
    );
    assert!(off_after <= Duration::from_secs(5), "{off_after:?}");
    // It stays off while the callee keeps refusing.
    std::thread::sleep(Duration::from_secs(3));
    let later = daemon.status("brb").unwrap();
    assert_eq!(target_state(&later, 0), "idle", "{later}");
    assert!(
        later["attempts"].as_u64() >= Some(4),
        "still redialing: {later}"
    );
    let files = recordings_of(nginx, "brb");
    assert_eq!(files.len(), 1, "{files:?}");
    let probe = ffprobe(&files[0]);
    assert!(probe.first_video_is_keyframe());
    // `unpublish_after` runs from the moment the call is down (the first 486, milliseconds
    // after the spec lands), while the target still connects: the slate is on air for the 3 s
    // less that connect and publish (up to ~1 s on a loaded machine; measured 1.99 s on air).
    assert!(
        (1.5..5.0).contains(&probe.duration),
        "{} s of slate",
        probe.duration
    );
}

#[test]
fn before_call_false_keeps_the_targets_dark_until_an_answer() {
    let Stage { daemon, nginx, .. } = &Stage::new();
    let ringing = Sipp::start("e2e_callee_rings_forever.xml", &[]);
    let mut spec = SpecText::direct(&ringing.addr(), &[stream_url(nginx, "dark")]);
    spec.extra = "[output]\nbefore_call = false\n".into();
    daemon.put_spec("dark", &spec.render());
    daemon.wait_status("dark", Duration::from_secs(5), "ringing", |s| {
        s["phase"] == "ringing"
    });
    std::thread::sleep(Duration::from_secs(2));
    let status = daemon.status("dark").unwrap();
    assert_eq!(target_state(&status, 0), "idle", "{status}");
    assert!(recordings_of(nginx, "dark").is_empty());
}
