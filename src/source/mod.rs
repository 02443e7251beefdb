//! The directory source: `broadcasts.d/*.toml` → the whole desired set, every time.
//!
//! Any filesystem event only marks the directory dirty (notify reports a Kubernetes ConfigMap
//! swap as events on `..data`, never on the spec files, so events are not trusted for *what*
//! changed). Then the whole directory is re-read: at once (after a few milliseconds) when the
//! change is atomic by nature — a rename into place, a deletion, a temp or symlink file — and
//! only after `debounce` of quiet when a `*.toml` is being written in place, so a file written
//! in several chunks is never read half-way. A periodic resync catches anything the watcher
//! missed. Files are re-parsed only when their bytes change.
//!
//! The directory is watched as a path that can vanish or be swapped ([`watch`]). An entry that
//! cannot be read as a spec file (a broken link, a FIFO, a device, a directory, too large) is
//! reported like an invalid file, never skipped: status shows why, and a broadcast whose file
//! turns into one keeps its last valid version running.
//!
//! Cost per pass, for 1 000 specs: one `read_dir`, and per file one `stat`, one open + `fstat`,
//! one read (bounded by the spec size limit) and one SHA-256; parsing only for changed bytes.
//! Passes happen on changes and on the periodic resync (30 s by default), never on a timer tick.

mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Notify, mpsc};

use crate::spec::{self, BroadcastSpec, SpecErrors, Unreadable};
use watch::{DirWatch, Dirty};

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
    /// SHA-256 of the bytes (of the reason, for an unreadable entry): equal hashes mean
    /// nothing changed.
    pub hash: [u8; 32],
    pub spec: Result<Arc<BroadcastSpec>, SpecErrors>,
    /// The entry could not be read as a file at all (`spec` holds why), as opposed to a file
    /// whose content is invalid.
    pub unreadable: bool,
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
        // Follows symlinks (ConfigMaps link every key); refuses whatever is not a regular file.
        let scanned = match spec::read_spec_file(&entry.path()) {
            Ok(bytes) => {
                let hash: [u8; 32] = Sha256::digest(&bytes).into();
                match cache.get(name) {
                    Some(prev) if prev.hash == hash && prev.file == file_name => prev.clone(),
                    _ => ScannedFile {
                        file: file_name.clone(),
                        hash,
                        spec: spec::parse_bytes(&file_name, &bytes).map(Arc::new),
                        unreadable: false,
                    },
                }
            }
            Err(Unreadable::Vanished) => continue, // deleted since listed: as if absent
            Err(why) => {
                let message = why.to_string();
                ScannedFile {
                    file: file_name.clone(),
                    hash: Sha256::digest(message.as_bytes()).into(),
                    spec: Err(SpecErrors::whole_file(&file_name, message)),
                    unreadable: true,
                }
            }
        };
        files.insert(name.to_string(), scanned);
    }
    *cache = files.clone();
    DirectoryScan { files, error: None }
}

/// Scans in a row that may find the directory swapped while it was being read.
const MAX_SWAPPED_RESCANS: u32 = 3;

/// How long a scan that lost spec files waits before it is believed. `rm -rf broadcasts.d`
/// deletes the files first and the directory last, and a deploy tool may empty a directory
/// just before swapping it: the pause lets the directory's own disappearance be seen, so the
/// running calls are kept instead of hung up by the first half of the change.
const REMOVAL_CONFIRM: Duration = Duration::from_millis(250);

/// Reads the directory, arming (or re-arming) the watches first, so a change made during the
/// read is heard.
fn scan_watched(
    config: &SourceConfig,
    watch: &mut DirWatch,
    cache: &mut BTreeMap<String, ScannedFile>,
) -> DirectoryScan {
    let mut scan = None;
    for _ in 0..MAX_SWAPPED_RESCANS {
        if watch.ensure() {
            tracing::debug!(dir = %config.dir.display(), "spec directory watch armed");
        }
        scan = Some(self::scan(&config.dir, cache));
        if !watch.swapped() {
            break;
        }
    }
    scan.unwrap_or_else(|| self::scan(&config.dir, cache))
}

/// Whether `scan` read the directory and found some spec file of `before` missing.
fn lost_files(before: &BTreeSet<String>, scan: &DirectoryScan) -> bool {
    scan.error.is_none() && before.iter().any(|name| !scan.files.contains_key(name))
}

/// Watches the directory and sends a [`DirectoryScan`] after each change, on every resync and
/// whenever `rescan_now` is notified (SIGHUP). Runs until the receiver is dropped.
pub async fn run(config: SourceConfig, tx: mpsc::Sender<DirectoryScan>, rescan_now: Arc<Notify>) {
    let dirty = Arc::new(Dirty::default());
    let mut watch = DirWatch::new(&config.dir, dirty.clone());
    let mut cache = BTreeMap::new();
    let mut sent = BTreeSet::new();
    let mut resync = tokio::time::interval(config.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let mut scan = scan_watched(&config, &mut watch, &mut cache);
        if lost_files(&sent, &scan) {
            tokio::time::sleep(REMOVAL_CONFIRM).await;
            scan = scan_watched(&config, &mut watch, &mut cache);
        }
        if scan.error.is_none() {
            sent = scan.files.keys().cloned().collect();
        }
        if tx.send(scan).await.is_err() {
            return;
        }
        tokio::select! {
            _ = resync.tick() => {}
            _ = rescan_now.notified() => {}
            _ = dirty.notify.notified() => {
                // Trailing debounce: quiet for SETTLE, or for `debounce` once any event says a
                // spec file is being written.
                let mut settle = dirty.take_settle();
                loop {
                    let wait = if settle == Settle::Quiet { config.debounce } else { SETTLE };
                    if tokio::time::timeout(wait, dirty.notify.notified()).await.is_err() {
                        break;
                    }
                    if dirty.take_settle() == Settle::Quiet {
                        settle = Settle::Quiet;
                    }
                }
            }
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
        assert_eq!(
            scan.files.keys().collect::<Vec<_>>(),
            ["bad", "good", "sub"]
        );
        assert!(scan.files["good"].spec.is_ok());
        assert!(scan.files["bad"].spec.is_err());
        assert!(!scan.files["bad"].unreadable, "readable, but invalid");
        let sub = &scan.files["sub"];
        assert!(sub.unreadable);
        assert_eq!(
            sub.spec.as_ref().map(|_| ()).unwrap_err().to_string(),
            "sub.toml:1:1: is a directory, not a regular file"
        );
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
