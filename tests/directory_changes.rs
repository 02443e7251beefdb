//! The directory source and reconciler against a real directory and real inotify events,
//! with a scripted call that records every dial and hang-up.

mod support;

use std::time::Duration;

use sipcast::call::scripted::RecordKind;
use sipcast::clock::WallClock;
use support::{spec, start, wait_for, write_atomic};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_renamed_in_is_dialed_within_100ms_and_deleting_it_hangs_up_within_1s() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("broadcasts.d");
    std::fs::create_dir(&dir).unwrap();
    let staged = root.path().join("allhands.toml");
    std::fs::write(&staged, spec("sip:100@pbx.test", "1#")).unwrap();
    let (engine, dialer) = start(&dir, WallClock::System).await;

    std::fs::rename(&staged, dir.join("allhands.toml")).unwrap();
    let dialed = wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;
    assert!(
        dialed <= Duration::from_millis(100),
        "dialed after {dialed:?}"
    );

    std::fs::remove_file(dir.join("allhands.toml")).unwrap();
    let hung_up = wait_for(Duration::from_secs(3), || {
        dialer
            .records()
            .iter()
            .any(|r| r.kind == RecordKind::HangUp)
    })
    .await;
    assert!(
        hung_up <= Duration::from_secs(1),
        "hung up after {hung_up:?}"
    );
    wait_for(Duration::from_secs(3), || {
        engine.status.with(|s| s.broadcasts.is_empty())
    })
    .await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_save_and_a_chunked_write_each_dial_once_with_the_full_content() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;

    // vim-style: write a swap/temp file, then rename it over the target.
    std::fs::write(dir.path().join(".saved.toml.swp"), "junk").unwrap();
    write_atomic(
        &dir.path().join("saved.toml"),
        &spec("sip:1@pbx.test", "1#"),
    );

    // Three chunks 20 ms apart; every prefix is valid TOML, so a premature read would dial
    // without the DTMF.
    let full = spec("sip:2@pbx.test", "") + "dtmf_delay = \"2s\"\n";
    let full = full.replace("dtmf = \"\"\n", "");
    let chunks = [
        full.clone(),
        "answer_timeout = \"30s\"\n".to_string(),
        "dtmf = \"1234#\"\n".to_string(),
    ];
    let path = dir.path().join("chunked.toml");
    {
        use std::io::Write;
        let mut file = std::fs::File::create(&path).unwrap();
        for chunk in chunks {
            file.write_all(chunk.as_bytes()).unwrap();
            file.flush().unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dials = dialer.dials();
    assert_eq!(dials.len(), 2, "{dials:?}");
    let chunked: Vec<_> = dials.iter().filter(|d| d.broadcast == "chunked").collect();
    assert_eq!(
        chunked[0].kind,
        RecordKind::Dial {
            to: "sip:2@pbx.test".into(),
            dtmf: "1234#".into()
        }
    );
    assert_eq!(dialer.max_active(), 2);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_copies_and_leftovers_are_not_broadcasts() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    let a = dir.path().join("a.toml");
    write_atomic(&a, &spec("sip:1@pbx.test", ""));
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;
    std::fs::copy(&a, dir.path().join("a.toml.bak")).unwrap();
    std::fs::copy(&a, dir.path().join("a.toml.dpkg-dist")).unwrap();
    std::fs::copy(&a, dir.path().join("a.toml~")).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dialer.dials().len(), 1);
    assert_eq!(
        engine
            .status
            .with(|s| s.broadcasts.keys().cloned().collect::<Vec<_>>()),
        ["a"]
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_style_data_symlink_swap_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("..2026_11_01")).unwrap();
    std::fs::write(d.join("..2026_11_01/meet.toml"), spec("sip:1@pbx.test", "")).unwrap();
    std::os::unix::fs::symlink("..2026_11_01", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/meet.toml", d.join("meet.toml")).unwrap();
    let (engine, dialer) = start(d, WallClock::System).await;
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;

    // What kubelet does: a new timestamped dir, a new ..data link beside, rename over.
    std::fs::create_dir(d.join("..2026_11_02")).unwrap();
    std::fs::write(d.join("..2026_11_02/meet.toml"), spec("sip:2@pbx.test", "")).unwrap();
    std::os::unix::fs::symlink("..2026_11_02", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    std::fs::remove_dir_all(d.join("..2026_11_01")).unwrap();

    wait_for(Duration::from_secs(2), || dialer.dials().len() == 2).await;
    assert_eq!(
        dialer.dials()[1].kind,
        RecordKind::Dial {
            to: "sip:2@pbx.test".into(),
            dtmf: String::new()
        }
    );
    assert_eq!(dialer.max_active(), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_edits_in_two_seconds_never_make_two_concurrent_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    let path = dir.path().join("busy.toml");
    for i in 0..50 {
        write_atomic(&path, &spec(&format!("sip:{i}@pbx.test"), ""));
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    wait_for(Duration::from_secs(3), || {
        dialer.dials().last().is_some_and(|d| {
            d.kind
                == RecordKind::Dial {
                    to: "sip:49@pbx.test".into(),
                    dtmf: String::new(),
                }
        })
    })
    .await;
    assert_eq!(dialer.max_active(), 1, "two calls were up at once");
    engine.shutdown().await;
    assert_eq!(dialer.active(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_edit_keeps_the_running_call_and_reports_where_the_problem_is() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    let path = dir.path().join("keep.toml");
    write_atomic(&path, &spec("sip:1@pbx.test", ""));
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;

    write_atomic(&path, &spec("sip:1@pbx.test", "12x"));
    wait_for(Duration::from_secs(2), || {
        engine
            .status
            .with(|s| s.broadcasts.get("keep").is_some_and(|b| !b.accepted))
    })
    .await;
    let b = engine.status.with(|s| s.broadcasts["keep"].clone());
    assert_eq!(b.generation, 1);
    assert!(
        b.error
            .as_deref()
            .unwrap()
            .starts_with("keep.toml:8:11: invalid DTMF character 'x'"),
        "{:?}",
        b.error
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !dialer
            .records()
            .iter()
            .any(|r| r.kind == RecordKind::HangUp)
    );
    assert_eq!(dialer.active(), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retargeting_updates_in_place_and_a_description_edit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, dialer) = start(dir.path(), WallClock::System).await;
    let path = dir.path().join("live.toml");
    let base = spec("sip:1@pbx.test", "");
    write_atomic(&path, &base);
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;

    write_atomic(
        &path,
        &format!("description = \"new words\"\n# a comment\n{base}"),
    );
    write_atomic(
        &path,
        &format!("{base}[[rtmp]]\nurl = \"rtmp://127.0.0.1/live/second\"\n")
            .replace("[rtmp]\n", "[[rtmp]]\n"),
    );
    wait_for(Duration::from_secs(2), || {
        dialer
            .records()
            .iter()
            .any(|r| r.kind == RecordKind::Retarget { targets: 2 })
    })
    .await;
    assert_eq!(dialer.dials().len(), 1);
    assert!(
        !dialer
            .records()
            .iter()
            .any(|r| r.kind == RecordKind::HangUp)
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_directory_hangs_up_nothing_and_is_reported() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("later");
    let (engine, dialer) = start(&dir, WallClock::System).await;
    let condition = engine.status.with(|s| s.conditions.clone());
    assert_eq!(condition[0].kind, "DirectoryReadable");
    assert_eq!(format!("{:?}", condition[0].status), "False");
    assert!(condition[0].message.contains("later"));
    engine.reload().await; // nothing to read yet, and nothing breaks
    std::fs::create_dir(&dir).unwrap();
    write_atomic(&dir.join("x.toml"), &spec("sip:1@pbx.test", ""));
    engine.reload().await; // SIGHUP rescans at once
    wait_for(Duration::from_secs(2), || dialer.dials().len() == 1).await;
    engine.shutdown().await;
}
