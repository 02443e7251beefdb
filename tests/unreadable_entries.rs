//! Directory entries that cannot be read as spec files — FIFOs, dangling and looping links,
//! directories, devices, oversized files — show in status with the reason, are reported by
//! `sipcast validate`, never block the source, and never hang up a broadcast whose file turned
//! into one: its last valid version keeps running.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use sipcast::call::scripted::RecordKind;
use sipcast::clock::WallClock;
use sipcast::status::BroadcastStatus;
use support::{spec, start, wait_for, write_atomic};

fn mkfifo(path: &Path) {
    let made = Command::new("mkfifo").arg(path).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
}

/// Every kind of unreadable entry, named `<kind>.toml`.
fn make_unreadable_entries(dir: &Path) {
    mkfifo(&dir.join("fifo.toml"));
    std::os::unix::fs::symlink("nowhere.toml", dir.join("dangling.toml")).unwrap();
    std::os::unix::fs::symlink("loop2.toml", dir.join("loop1.toml")).unwrap();
    std::os::unix::fs::symlink("loop1.toml", dir.join("loop2.toml")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("device.toml")).unwrap();
    std::fs::create_dir(dir.join("folder.toml")).unwrap();
    // Starts like a valid spec; far past the size limit.
    let mut big = spec("sip:1@pbx.test", "").into_bytes();
    big.resize(2 * 1024 * 1024, b'#');
    std::fs::write(dir.join("huge.toml"), big).unwrap();
}

const EXPECTED: &[(&str, &str)] = &[
    (
        "dangling",
        "is a symbolic link that cannot be followed: its target does not exist",
    ),
    ("device", "is a character device, not a regular file"),
    ("fifo", "is a FIFO, not a regular file"),
    ("folder", "is a directory, not a regular file"),
    (
        "huge",
        "is 2097152 bytes, larger than the limit of 262144 bytes",
    ),
    ("loop1", "is a symbolic link that cannot be followed"),
    ("loop2", "is a symbolic link that cannot be followed"),
];

fn unreadable_condition(b: &BroadcastStatus) -> bool {
    b.conditions
        .iter()
        .any(|c| c.kind == "Accepted" && c.reason == "Unreadable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unreadable_entry_shows_in_status_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    make_unreadable_entries(dir.path());
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    // A good spec dropped afterwards still dials: nothing blocked on the FIFO.
    write_atomic(&dir.path().join("good.toml"), &spec("sip:1@pbx.test", ""));
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;

    let broadcasts = engine.status.with(|s| s.broadcasts.clone());
    for (name, why) in EXPECTED {
        let b = broadcasts
            .get(*name)
            .unwrap_or_else(|| panic!("{name} missing from status"));
        assert!(!b.accepted, "{name}");
        let error = b.error.as_deref().unwrap_or_default();
        let want = format!("{name}.toml:1:1: {why}");
        assert!(error.starts_with(&want), "{name}: {error:?}, want {want:?}");
        assert!(unreadable_condition(b), "{name}: {:?}", b.conditions);
    }
    assert!(broadcasts["good"].accepted);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(dialer.dials().len(), 1, "only the good spec dials");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_spec_that_turns_unreadable_keeps_its_last_valid_version_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.toml");
    let text = spec("sip:1@pbx.test", "");
    write_atomic(&path, &text);
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;

    let status = |engine: &sipcast::daemon::Engine| {
        engine.status.with(|s| s.broadcasts.get("live").cloned())
    };
    // The file becomes a FIFO, a dangling link, a device and an oversized file, each renamed
    // into place: each is reported, none hangs up.
    type Make<'a> = &'a dyn Fn(&Path);
    let swaps: [(&str, Make); 4] = [
        ("is a FIFO", &|p| mkfifo(p)),
        ("cannot be followed", &|p| {
            std::os::unix::fs::symlink("gone.toml", p).unwrap()
        }),
        ("is a character device", &|p| {
            std::os::unix::fs::symlink("/dev/null", p).unwrap()
        }),
        ("larger than the limit", &|p| {
            std::fs::write(p, vec![b'#'; 300 * 1024]).unwrap()
        }),
    ];
    for (why, make) in swaps {
        let staged = dir.path().join(".staged");
        make(&staged);
        std::fs::rename(&staged, &path).unwrap();
        wait_for(Duration::from_secs(2), || {
            status(&engine).is_some_and(|b| {
                !b.accepted && b.error.as_deref().unwrap_or_default().contains(why)
            })
        })
        .await;
        let b = status(&engine).unwrap();
        assert_eq!(b.generation, 1);
        let condition = b.conditions.iter().find(|c| c.kind == "Accepted").unwrap();
        assert_eq!(condition.reason, "Unreadable");
        assert_eq!(
            condition.message,
            "unreadable file; generation 1 keeps running"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !dialer
            .records()
            .iter()
            .any(|r| r.kind == RecordKind::HangUp),
        "{:?}",
        dialer.records()
    );
    assert_eq!(dialer.dials().len(), 1);

    // The same content back: accepted again, same generation, no redial.
    write_atomic(&path, &text);
    wait_for(Duration::from_secs(2), || {
        status(&engine).is_some_and(|b| b.accepted)
    })
    .await;
    assert_eq!(status(&engine).unwrap().generation, 1);
    assert_eq!(dialer.dials().len(), 1);
    engine.shutdown().await;
}

#[test]
fn validate_reports_every_unreadable_entry_of_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    make_unreadable_entries(dir.path());
    std::fs::write(dir.path().join("good.toml"), spec("sip:1@pbx.test", "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sipcast"))
        .arg("validate")
        .arg(dir.path())
        .output()
        .expect("run sipcast validate");
    assert_eq!(out.status.code(), Some(78));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (name, why) in EXPECTED {
        let want = format!(
            "{}:1:1: {why}",
            dir.path().join(format!("{name}.toml")).display()
        );
        assert!(
            stdout.lines().any(|l| l.starts_with(&want)),
            "{want:?} not in:\n{stdout}"
        );
    }
    assert_eq!(stdout.lines().count(), EXPECTED.len(), "{stdout}");
}

/// Root reads a `chmod 000` file anyway, so the check runs `validate` as `nobody` (skipped where
/// `setpriv` is missing or the test does not run as root).
#[test]
fn a_file_without_read_permission_is_reported_as_such() {
    use std::os::unix::fs::PermissionsExt;
    let setpriv = Path::new("/usr/bin/setpriv");
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !setpriv.exists() || !is_root {
        eprintln!("skipped: needs root and setpriv");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("secret.toml");
    std::fs::write(&path, spec("sip:1@pbx.test", "")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_sipcast"))
        .arg("validate")
        .arg(dir.path())
        .output()
        .expect("run sipcast validate as nobody");
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("{}:1:1: cannot read: Permission denied", path.display());
    assert!(stdout.starts_with(&want), "{stdout:?}, want {want:?}");
}
