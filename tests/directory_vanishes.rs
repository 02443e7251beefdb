//! The spec directory is a path, not an inode: removed and recreated, swapped by a symlink
//! rename (GitOps tools, Kubernetes) or replaced by a renamed directory, it is watched again at
//! once, and a spec dropped into the new directory dials within a second. Real inotify events
//! against a real directory; a scripted call records every dial and hang-up.

mod support;

use std::path::Path;
use std::time::Duration;

use sipcast::call::scripted::RecordKind;
use sipcast::clock::WallClock;
use support::{spec, start, wait_for, write_atomic};

fn dialed(dialer: &sipcast::call::scripted::ScriptedDialer, name: &str) -> bool {
    dialer.dials().iter().any(|d| d.broadcast == name)
}

fn hung_up(dialer: &sipcast::call::scripted::ScriptedDialer, name: &str) -> bool {
    dialer
        .records()
        .iter()
        .any(|r| r.broadcast == name && r.kind == RecordKind::HangUp)
}

/// Drops `name.toml` into `dir` and returns how long until it was dialed (at most 3 s).
async fn drop_spec_and_time_the_dial(
    dialer: &sipcast::call::scripted::ScriptedDialer,
    dir: &Path,
    name: &str,
) -> Duration {
    write_atomic(
        &dir.join(format!("{name}.toml")),
        &spec("sip:9@pbx.test", ""),
    );
    wait_for(Duration::from_secs(3), || dialed(dialer, name)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rm_rf_and_mkdir_then_a_new_spec_dials_within_a_second() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("broadcasts.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("old.toml"), spec("sip:1@pbx.test", "")).unwrap();
    let (engine, dialer) = start(&dir, WallClock::System).await;
    wait_for(Duration::from_secs(2), || dialed(&dialer, "old")).await;

    // A missing directory is not "every file deleted": the call stays up until the directory
    // is back, and then what it holds is the desired set.
    std::fs::remove_dir_all(&dir).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!hung_up(&dialer, "old"));
    std::fs::create_dir(&dir).unwrap();
    let took = drop_spec_and_time_the_dial(&dialer, &dir, "new").await;
    assert!(took <= Duration::from_secs(1), "dialed after {took:?}");
    wait_for(Duration::from_secs(2), || hung_up(&dialer, "old")).await;
    // And the new directory stays watched: a second spec and a deletion are seen too.
    let took = drop_spec_and_time_the_dial(&dialer, &dir, "newer").await;
    assert!(
        took <= Duration::from_secs(1),
        "second spec dialed after {took:?}"
    );
    std::fs::remove_file(dir.join("new.toml")).unwrap();
    let took = wait_for(Duration::from_secs(3), || hung_up(&dialer, "new")).await;
    assert!(took <= Duration::from_secs(1), "hung up after {took:?}");
    engine.shutdown().await;
}

/// `rm -rf d && mkdir d` in one breath: ext4 and tmpfs hand the new directory the inode number
/// of the old one, so "same (device, inode)" must not be taken for "same directory, still
/// watched".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_recreated_at_once_with_the_same_inode_number_is_watched_again() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("broadcasts.d");
    std::fs::create_dir(&dir).unwrap();
    let (engine, dialer) = start(&dir, WallClock::System).await;
    for round in 0..5 {
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::create_dir(&dir).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let name = format!("round{round}");
        let took = drop_spec_and_time_the_dial(&dialer, &dir, &name).await;
        assert!(
            took <= Duration::from_secs(1),
            "{name} dialed after {took:?}"
        );
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_renamed_over_the_path_is_read_and_watched_at_once() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("broadcasts.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("old.toml"), spec("sip:1@pbx.test", "")).unwrap();
    let (engine, dialer) = start(&dir, WallClock::System).await;
    wait_for(Duration::from_secs(2), || dialed(&dialer, "old")).await;

    // A deploy tool: build the new tree beside, move the old one away, rename the new one in.
    let staged = root.path().join("broadcasts.d.new");
    std::fs::create_dir(&staged).unwrap();
    std::fs::write(staged.join("swapped.toml"), spec("sip:2@pbx.test", "")).unwrap();
    std::fs::rename(&dir, root.path().join("broadcasts.d.old")).unwrap();
    std::fs::rename(&staged, &dir).unwrap();
    let took = wait_for(Duration::from_secs(3), || dialed(&dialer, "swapped")).await;
    assert!(took <= Duration::from_secs(1), "swapped in after {took:?}");
    wait_for(Duration::from_secs(2), || hung_up(&dialer, "old")).await;
    let took = drop_spec_and_time_the_dial(&dialer, &dir, "later").await;
    assert!(took <= Duration::from_secs(1), "dialed after {took:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlink_swap_of_the_directory_is_followed() {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    std::fs::create_dir(r.join("rev1")).unwrap();
    std::fs::write(r.join("rev1/a.toml"), spec("sip:1@pbx.test", "")).unwrap();
    std::os::unix::fs::symlink("rev1", r.join("broadcasts.d")).unwrap();
    let dir = r.join("broadcasts.d");
    let (engine, dialer) = start(&dir, WallClock::System).await;
    wait_for(Duration::from_secs(2), || dialed(&dialer, "a")).await;

    // `ln -sfn rev2 broadcasts.d`, atomically: a new link beside, renamed over the old one.
    std::fs::create_dir(r.join("rev2")).unwrap();
    std::fs::write(r.join("rev2/b.toml"), spec("sip:2@pbx.test", "")).unwrap();
    std::os::unix::fs::symlink("rev2", r.join("broadcasts.d.tmp")).unwrap();
    std::fs::rename(r.join("broadcasts.d.tmp"), &dir).unwrap();
    let took = wait_for(Duration::from_secs(3), || dialed(&dialer, "b")).await;
    assert!(
        took <= Duration::from_secs(1),
        "rev2 applied after {took:?}"
    );
    wait_for(Duration::from_secs(2), || hung_up(&dialer, "a")).await;
    // The watch follows the link to rev2: a spec added there is seen, one added to rev1 is not.
    let took = drop_spec_and_time_the_dial(&dialer, &r.join("rev2"), "c").await;
    assert!(took <= Duration::from_secs(1), "dialed after {took:?}");
    write_atomic(&r.join("rev1/stale.toml"), &spec("sip:3@pbx.test", ""));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!dialed(&dialer, "stale"));
    engine.shutdown().await;
}
