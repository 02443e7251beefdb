//! The directory source: `broadcasts.d/*.toml` → the whole desired set, every time.
//!
//! Any filesystem event only marks the directory dirty (notify reports a Kubernetes ConfigMap
//! swap as events on `..data`, never on the spec files, so events are not trusted for *what*
//! changed). Then the whole directory is re-read: at once (after a few milliseconds) when the
//! change is atomic by nature — a rename into place, a deletion, a temp or symlink file — and
//! only after `debounce` of quiet when a `*.toml` is being written in place, so a file written
//! in several chunks is never read half-way. A periodic resync catches anything the watcher
//! missed. Files are re-parsed only when their bytes change.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::Watcher;
use sha2::{Digest, Sha256};
use tokio::sync::{Notify, mpsc};

use crate::spec::{self, BroadcastSpec, SpecErrors};

/// One read of the whole directory.
#[derive(Clone, Debug)]
pub struct DirectoryScan {
    /// Spec files by broadcast name.
    pub files: BTreeMap<String, ScannedFile>,
    /// Set when the directory itself could not be read: the files map is then empty and must
    /// not be taken as "everything was deleted".
    pub error: Option<String>,
}

#[derive(Clone, Debug)]
pub struct ScannedFile {
    pub file: String,
    /// SHA-256 of the bytes: equal hashes mean nothing changed.
    pub hash: [u8; 32],
    pub spec: Result<Arc<BroadcastSpec>, SpecErrors>,
}

/// Settings of the directory source.
#[derive(Clone, Debug)]
pub struct SourceConfig {
    pub dir: PathBuf,
    /// Quiet time after the last event before re-reading (editors write in several steps).
    pub debounce: Duration,
    /// Full re-read even without events.
    pub resync: Duration,
}

impl SourceConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        SourceConfig {
            dir: dir.into(),
            debounce: Duration::from_millis(50),
            resync: Duration::from_secs(30),
        }
    }
}

/// Coalescing window for atomic changes (a rename often comes as a burst of events).
const SETTLE: Duration = Duration::from_millis(5);

/// How long to wait for quiet before re-reading, after an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Settle {
    /// The change is complete when we see it: re-read almost at once.
    Quick,
    /// A spec file is being written in place: wait for `debounce` of quiet.
    Quiet,
}

/// Renames into place and deletions are atomic; so is anything on a name that is not a spec
/// file (editor temp files, `..data` symlinks). Writes to a `*.toml` are not.
fn settle_for(event: &notify::Event) -> Settle {
    use notify::EventKind;
    use notify::event::{ModifyKind, RenameMode};
    let atomic = matches!(
        event.kind,
        EventKind::Remove(_)
            | EventKind::Modify(ModifyKind::Name(
                RenameMode::To | RenameMode::Both | RenameMode::From
            ))
    );
    let spec_file = event.paths.iter().any(|p| {
        p.file_name()
            .is_some_and(|n| spec::broadcast_name(&n.to_string_lossy()).is_some())
    });
    if atomic || !spec_file {
        Settle::Quick
    } else {
        Settle::Quiet
    }
}

/// Reads the directory once, re-parsing only files whose bytes changed since `cache`.
pub fn scan(dir: &Path, cache: &mut BTreeMap<String, ScannedFile>) -> DirectoryScan {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            return DirectoryScan {
                files: BTreeMap::new(),
                error: Some(format!("cannot read {}: {e}", dir.display())),
            };
        }
    };
    let mut files = BTreeMap::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(name) = spec::broadcast_name(&file_name) else {
            continue;
        };
        let path = entry.path();
        // Follow symlinks (ConfigMaps link every key); skip directories and other non-files.
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => continue,
            Err(_) => continue, // vanished or dangling: as if absent
        }
        let scanned = match spec::read_bounded(&path) {
            Ok(text) => {
                let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
                match cache.get(name) {
                    Some(prev) if prev.hash == hash && prev.file == file_name => prev.clone(),
                    _ => ScannedFile {
                        file: file_name.clone(),
                        hash,
                        spec: spec::parse(&file_name, &text).map(Arc::new),
                    },
                }
            }
            Err(message) => ScannedFile {
                file: file_name.clone(),
                hash: [0; 32],
                spec: Err(SpecErrors::whole_file(&file_name, message)),
            },
        };
        files.insert(name.to_string(), scanned);
    }
    *cache = files.clone();
    DirectoryScan { files, error: None }
}

/// Watches the directory and sends a [`DirectoryScan`] after each change, on every resync and
/// whenever `rescan_now` is notified (SIGHUP). Runs until the receiver is dropped.
pub async fn run(config: SourceConfig, tx: mpsc::Sender<DirectoryScan>, rescan_now: Arc<Notify>) {
    let (dirty_tx, mut dirty_rx) = mpsc::unbounded_channel::<Settle>();
    let mut watcher = None;
    let mut cache = BTreeMap::new();
    let mut resync = tokio::time::interval(config.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if watcher.is_none() {
            watcher = watch(&config.dir, dirty_tx.clone());
        }
        let scan = scan(&config.dir, &mut cache);
        if scan.error.is_some() {
            watcher = None; // the directory may come back as a new inode: watch it afresh
        }
        if tx.send(scan).await.is_err() {
            return;
        }
        tokio::select! {
            _ = resync.tick() => {}
            _ = rescan_now.notified() => {}
            Some(first) = dirty_rx.recv() => {
                // Trailing debounce: quiet for SETTLE, or for `debounce` once any event says a
                // spec file is being written.
                let mut settle = first;
                loop {
                    let wait = if settle == Settle::Quiet { config.debounce } else { SETTLE };
                    match tokio::time::timeout(wait, dirty_rx.recv()).await {
                        Ok(Some(Settle::Quiet)) => settle = Settle::Quiet,
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}

fn watch(dir: &Path, dirty: mpsc::UnboundedSender<Settle>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| {
        let settle = event.as_ref().map_or(Settle::Quiet, settle_for);
        let _ = dirty.send(settle);
    };
    let mut watcher = notify::recommended_watcher(handler).ok()?;
    match watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
        Ok(()) => Some(watcher),
        Err(e) => {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory; relying on periodic resync");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str =
        "[sip]\nuser = \"u\"\ndomain = \"d\"\n[call]\nto = \"1\"\n[rtmp]\nurl = \"rtmp://h/a/k\"\n";

    #[test]
    fn scan_keeps_only_spec_files_and_reports_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("good.toml"), VALID).unwrap();
        std::fs::write(p.join("bad.toml"), "nope = ").unwrap();
        for leftover in [
            "good.toml.bak",
            "good.toml~",
            ".good.toml.swp",
            "x.tmp",
            "a.toml.dpkg-old",
            "b.toml.rpmnew",
        ] {
            std::fs::write(p.join(leftover), VALID).unwrap();
        }
        std::fs::create_dir(p.join("sub.toml")).unwrap();
        let scan = scan(p, &mut BTreeMap::new());
        assert!(scan.error.is_none());
        assert_eq!(scan.files.keys().collect::<Vec<_>>(), ["bad", "good"]);
        assert!(scan.files["good"].spec.is_ok());
        assert!(scan.files["bad"].spec.is_err());
    }

    #[test]
    fn unchanged_bytes_are_not_parsed_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.toml"), VALID).unwrap();
        let mut cache = BTreeMap::new();
        let first = scan(dir.path(), &mut cache);
        let second = scan(dir.path(), &mut cache);
        let (Ok(a), Ok(b)) = (&first.files["a"].spec, &second.files["a"].spec) else {
            panic!("valid spec rejected");
        };
        assert!(Arc::ptr_eq(a, b));
    }

    #[test]
    fn renames_and_deletions_settle_quickly_and_in_place_writes_wait_for_quiet() {
        use notify::event::{
            AccessKind, AccessMode, CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode,
        };
        use notify::{Event, EventKind};
        let on =
            |kind: EventKind, name: &str| Event::new(kind).add_path(PathBuf::from("/d").join(name));
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(settle_for(&on(renamed, "a.toml")), Settle::Quick);
        assert_eq!(
            settle_for(&on(EventKind::Remove(RemoveKind::File), "a.toml")),
            Settle::Quick
        );
        assert_eq!(settle_for(&on(written, "a.toml.tmp")), Settle::Quick);
        assert_eq!(
            settle_for(&on(EventKind::Create(CreateKind::Any), "..data_tmp")),
            Settle::Quick
        );
        assert_eq!(settle_for(&on(written, "a.toml")), Settle::Quiet);
        assert_eq!(
            settle_for(&on(EventKind::Create(CreateKind::File), "a.toml")),
            Settle::Quiet
        );
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(settle_for(&on(closed, "a.toml")), Settle::Quiet);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_an_empty_set() {
        let scan = scan(Path::new("/nonexistent/broadcasts.d"), &mut BTreeMap::new());
        assert!(scan.error.unwrap().contains("/nonexistent/broadcasts.d"));
    }
}
