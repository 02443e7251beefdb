//! Lifecycle races in virtual time: a SIGHUP that arrives while a call is up, and a hostile or
//! mistaken `Retry-After`.

mod support;

use std::time::Duration;

use sipcast::call::scripted::Script;
use sipcast::clock::WallClock;
use support::{spec, start_with};

#[tokio::test(start_paused = true)]
async fn a_sighup_during_a_live_call_does_not_skip_the_next_backoff() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hup.toml"), spec("sip:1@pbx.test", "")).unwrap();
    let script = Script::AnswerThenRemoteBye {
        hold: Duration::from_secs(5),
    };
    let (engine, dialer) = start_with(dir.path(), WallClock::System, script).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(dialer.active(), 1, "the call is up when SIGHUP arrives");
    engine.reload().await;
    // The call ends at +5 s; the redial must wait its ~2 s backoff, not go at once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let dials = dialer.dials();
    assert_eq!(dials.len(), 1, "redialed without backoff: {dials:?}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(dialer.dials().len(), 2, "redialed after the backoff");
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_sighup_during_backoff_redials_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("busy.toml"), spec("sip:1@pbx.test", "")).unwrap();
    let script = Script::Reject {
        after: Duration::ZERO,
        sip_status: 486,
    };
    let (engine, dialer) = start_with(dir.path(), WallClock::System, script).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(dialer.dials().len(), 1);
    engine.reload().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(dialer.dials().len(), 2, "SIGHUP skips the wait in progress");
    engine.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_up_to_one_hour() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("full.toml"), spec("sip:1@pbx.test", "")).unwrap();
    let script = Script::Unavailable {
        retry_after: Duration::from_secs(10 * 24 * 3600),
    };
    let (engine, dialer) = start_with(dir.path(), WallClock::System, script).await;
    tokio::time::sleep(Duration::from_secs(3600 + 60)).await;
    let dials = dialer.dials();
    assert_eq!(dials.len(), 2, "{dials:?}");
    let gap = dials[1].at - dials[0].at;
    assert!(
        gap >= Duration::from_secs(3600) && gap <= Duration::from_secs(3601),
        "redialed after {gap:?}"
    );
    engine.shutdown().await;
}
