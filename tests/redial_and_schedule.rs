//! Supervisors in virtual time: redial backoff and schedule windows, with a scripted call.

mod support;

use std::time::Duration;

use sipcast::call::scripted::{RecordKind, Script};
use sipcast::clock::WallClock;
use support::{spec, start_with};

/// A spec directory holding `NAME.toml`, and an engine on it with a scripted call.
async fn one_broadcast(
    name: &str,
    text: &str,
    clock: WallClock,
    script: Script,
) -> (
    tempfile::TempDir,
    sipcast::daemon::Engine,
    sipcast::call::scripted::ScriptedDialer,
) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{name}.toml")), text).unwrap();
    let (engine, dialer) = start_with(dir.path(), clock, script).await;
    (dir, engine, dialer)
}

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_rejected_call_redials_after_2_4_8_16_32_60_60_seconds_with_jitter() {
    let script = Script::Reject {
        after: Duration::ZERO,
        sip_status: 486,
    };
    let (_dir, engine, dialer) = one_broadcast(
        "busy",
        &spec("sip:1@pbx.test", ""),
        WallClock::System,
        script,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(250)).await;

    let dials = dialer.dials();
    assert!(dials.len() >= 8, "{} dials", dials.len());
    let gaps: Vec<f64> = dials
        .windows(2)
        .map(|w| (w[1].at - w[0].at).as_secs_f64())
        .collect();
    for (gap, nominal) in gaps.iter().zip([2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]) {
        assert!(
            (nominal * 0.8..=nominal * 1.2 + 0.01).contains(gap),
            "gap {gap:.2}s is not {nominal}s ±20 %: {gaps:?}"
        );
    }
    let b = engine.status.with(|s| s.broadcasts["busy"].clone());
    assert_eq!(format!("{:?}", b.phase), "Backoff");
    assert_eq!(b.call.sip_status, Some(486));
    assert!(b.next_attempt_at.is_some());
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_503_retry_after_is_honoured_and_a_remote_bye_redials() {
    let script = Script::Unavailable {
        retry_after: Duration::from_secs(20),
    };
    let (_dir, engine, dialer) = one_broadcast(
        "full",
        &spec("sip:1@pbx.test", ""),
        WallClock::System,
        script,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    let dials = dialer.dials();
    assert_eq!(dials.len(), 2, "{dials:?}");
    assert!(
        dials[1].at - dials[0].at >= Duration::from_secs(20),
        "Retry-After beats the 2 s backoff"
    );
    engine.shutdown().await;

    let script = Script::AnswerThenRemoteBye {
        hold: Duration::from_secs(5),
    };
    let (_dir, engine, dialer) = one_broadcast(
        "bye",
        &spec("sip:1@pbx.test", ""),
        WallClock::System,
        script,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(9)).await;
    let dials = dialer.dials();
    assert_eq!(dials.len(), 2, "remote BYE redials after ~2 s backoff");
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn on_remote_hangup_complete_stays_down() {
    let text =
        spec("sip:1@pbx.test", "").replace("[call]\n", "[call]\non_remote_hangup = \"complete\"\n");
    let script = Script::AnswerThenRemoteBye {
        hold: Duration::from_secs(5),
    };
    let (_dir, engine, dialer) = one_broadcast("once", &text, WallClock::System, script).await;
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(dialer.dials().len(), 1);
    let phase = engine.status.with(|s| s.broadcasts["once"].phase);
    assert_eq!(format!("{phase:?}"), "Idle");
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_one_off_window_with_lead_dials_early_and_hangs_up_at_the_end() {
    let text = spec("sip:1@pbx.test", "")
        + "[schedule]\ntimezone = \"Europe/Berlin\"\nlead = \"1m\"\nwindows = [{ start = \"2026-12-24T15:00\", end = \"2026-12-24T15:30\" }]\n";
    // 14:00 UTC+1 = 13:00Z; the window opens 14:00Z, dial from 13:59Z.
    let clock = WallClock::starting_at(t("2026-12-24T13:50:00Z"));
    let (_dir, engine, dialer) = one_broadcast(
        "xmas",
        &text,
        clock.clone(),
        Script::Answer {
            after: Duration::ZERO,
        },
    )
    .await;
    let waiting = engine.status.with(|s| s.broadcasts["xmas"].clone());
    assert_eq!(format!("{:?}", waiting.phase), "Waiting");
    assert_eq!(
        waiting.schedule.unwrap().next_start,
        Some(t("2026-12-24T14:00:00Z"))
    );

    tokio::time::sleep(Duration::from_secs(8 * 60 + 50)).await; // 13:58:50
    assert!(dialer.dials().is_empty());
    tokio::time::sleep(Duration::from_secs(15)).await; // 13:59:05
    assert_eq!(dialer.dials().len(), 1);
    let dialed_at = clock.now();
    assert!(dialed_at >= t("2026-12-24T13:59:00Z"));

    tokio::time::sleep(Duration::from_secs(31 * 60)).await; // past 14:30Z
    let hung_up = dialer
        .records()
        .into_iter()
        .find(|r| r.kind == RecordKind::HangUp)
        .unwrap();
    let open_for = hung_up.at - dialer.dials()[0].at;
    assert!(
        (Duration::from_secs(30 * 60 + 55)..=Duration::from_secs(31 * 60 + 1)).contains(&open_for),
        "hung up after {open_for:?}"
    );
    assert_eq!(dialer.dials().len(), 1, "a window is not replayed");
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_clock_stepped_past_the_window_end_hangs_up_and_stepped_back_redials() {
    let text = spec("sip:1@pbx.test", "")
        + "[schedule]\ntimezone = \"UTC\"\nwindows = [{ start = \"2026-06-01T10:00\", duration = \"2h\" }]\n";
    let clock = WallClock::starting_at(t("2026-06-01T10:30:00Z")); // joins mid-window
    let (_dir, engine, dialer) = one_broadcast(
        "step",
        &text,
        clock.clone(),
        Script::Answer {
            after: Duration::ZERO,
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(dialer.dials().len(), 1, "starting mid-window joins late");

    clock.step(jiff::SignedDuration::from_hours(3)); // 13:30, past the end
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(dialer.active(), 0, "the step took effect within 30 s");

    clock.step(jiff::SignedDuration::from_hours(-3)); // back inside
    tokio::time::sleep(Duration::from_secs(31)).await;
    assert_eq!(dialer.dials().len(), 2);
    assert_eq!(dialer.active(), 1);
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn sigterm_style_shutdown_hangs_everything_up_quickly() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(
            dir.path().join(format!("b{i}.toml")),
            spec("sip:1@pbx.test", ""),
        )
        .unwrap();
    }
    let (engine, dialer) = start_with(
        dir.path(),
        WallClock::System,
        Script::Answer {
            after: Duration::ZERO,
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(dialer.active(), 5);
    let started = sipcast::clock::monotonic();
    engine.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(dialer.active(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_stayed_up_ten_minutes_resets_the_backoff() {
    // Short calls first: the backoff grows 2, 4, 8 s.
    let script = Script::AnswerThenRemoteBye {
        hold: Duration::from_secs(1),
    };
    let (_dir, engine, dialer) = one_broadcast(
        "long",
        &spec("sip:1@pbx.test", ""),
        WallClock::System,
        script,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(
        dialer.dials().len(),
        4,
        "1 s calls redialed after ~2, 4, 8 s"
    );
    // Then a long call: after it, the next redial comes after ~2 s again, not 16 s.
    dialer.set_script(Script::AnswerThenRemoteBye {
        hold: Duration::from_secs(11 * 60),
    });
    tokio::time::sleep(Duration::from_secs(20 + 11 * 60)).await;
    let dials = dialer.dials();
    let last_gap = dials[dials.len() - 1].at - dials[dials.len() - 2].at;
    assert!(
        last_gap <= Duration::from_secs(11 * 60 + 3),
        "the redial after a 11-minute call waited {:?} beyond the call",
        last_gap - Duration::from_secs(11 * 60)
    );
    engine.shutdown().await;
}
