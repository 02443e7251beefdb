//! Idle costs nothing: a directory of specs at rest is read once, not over and over. The
//! source's own reads make inotify report open/close events on every file; reacting to them
//! made each scan trigger the next (1 000 specs kept the daemon at 22 % of a core).

mod support;

use std::time::Duration;

use sipcast::clock::WallClock;
use support::{start, wait_for};

/// A spec waiting for a yearly window: nothing dials.
fn yearly(i: usize) -> String {
    format!(
        "[sip]\nuser = \"u{i}\"\ndomain = \"pbx.test\"\n[call]\nto = \"sip:{i}@pbx.test\"\n\
         [schedule]\ntimezone = \"Europe/Berlin\"\nwindows = [{{ cron = \"0 12 1 7 *\", duration = \"1h\" }}]\n\
         [rtmp]\nurl = \"rtmp://127.0.0.1/live/k{i}\"\n"
    )
}

fn scans(engine: &sipcast::daemon::Engine) -> u64 {
    engine.status.with(|s| s.reloads.values().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_at_rest_are_not_read_again_until_the_resync() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..200 {
        std::fs::write(dir.path().join(format!("b{i}.toml")), yearly(i)).unwrap();
    }
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    wait_for(Duration::from_secs(5), || {
        engine.status.with(|s| s.broadcasts.len() == 200)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = scans(&engine);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = scans(&engine);
    assert_eq!(
        after,
        before,
        "the directory was re-read {} times at rest",
        after - before
    );
    assert!(dialer.dials().is_empty());
    // A real change is still seen at once.
    std::fs::write(dir.path().join("b0.toml"), yearly(1000)).unwrap();
    wait_for(Duration::from_secs(2), || scans(&engine) > after).await;
    engine.shutdown().await;
}
