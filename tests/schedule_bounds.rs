//! Schedules evaluate in bounded time and report bounded answers, end to end: touching windows
//! show a `next_end` within the merge look-ahead (weeks, not the eight-year horizon), and a spec
//! with more windows than allowed is refused with its position, in status and by `validate`.

mod support;

use std::time::Duration;

use sipcast::clock::WallClock;
use support::{start, wait_for, write_atomic};

fn with_windows(windows: &str) -> String {
    format!(
        "[sip]\nuser = \"u\"\ndomain = \"pbx.test\"\n[call]\nto = \"sip:1@pbx.test\"\n\
         [rtmp]\nurl = \"rtmp://127.0.0.1/live/k\"\n\
         [schedule]\ntimezone = \"Europe/Berlin\"\nwindows = [{windows}]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touching_windows_report_an_end_weeks_ahead_not_years() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    write_atomic(
        &dir.path().join("always.toml"),
        &with_windows(
            "{ cron = \"0 * * * *\", duration = \"1h\" }, { cron = \"* * * * *\", duration = \"1m\" }",
        ),
    );
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;
    let schedule = engine
        .status
        .with(|s| s.broadcasts["always"].schedule.clone())
        .expect("schedule status");
    assert!(schedule.in_window);
    let end = schedule.next_end.expect("next_end");
    let ahead = end.duration_since(WallClock::System.now());
    assert!(
        ahead > jiff::SignedDuration::from_hours(24 * 10)
            && ahead < jiff::SignedDuration::from_hours(24 * 16),
        "next_end {end} is {ahead:?} ahead"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_with_too_many_windows_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    let many = vec!["{ cron = \"0 * * * *\", duration = \"1h\" }"; 6000].join(", ");
    let path = dir.path().join("many.toml");
    write_atomic(&path, &with_windows(&many));
    wait_for(Duration::from_secs(2), || {
        engine
            .status
            .with(|s| s.broadcasts.get("many").is_some_and(|b| b.error.is_some()))
    })
    .await;
    let error = engine
        .status
        .with(|s| s.broadcasts["many"].error.clone())
        .unwrap_or_default();
    assert_eq!(
        error,
        "many.toml:10:11: too many windows (6000, at most 100)"
    );
    assert!(dialer.dials().is_empty());
    engine.shutdown().await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipcast"))
        .arg("validate")
        .arg(&path)
        .output()
        .expect("run sipcast validate");
    assert_eq!(out.status.code(), Some(78));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "{}:10:11: too many windows (6000, at most 100)",
            path.display()
        )
    );
}
