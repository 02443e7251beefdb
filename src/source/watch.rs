//! Watching the spec directory as a *path* that can vanish, be recreated or be swapped, not as
//! the inode it named when the daemon started.
//!
//! inotify watches inodes. After `rm -rf broadcasts.d && mkdir broadcasts.d`, a rename of a new
//! directory over the path, or a symlink swap (`ln -sfn rev2 broadcasts.d`, as GitOps tools and
//! Kubernetes do), a watch on the old inode hears nothing ever again. So the parent directory is
//! watched too, for events on the directory's own name, and every scan compares the identity
//! (device, inode) of what the path names now with the one being watched: any difference
//! re-arms both watches at once.
//!
//! Events caused by reading (open, read, close without writing) are dropped at the source: the
//! daemon's own scans cause them, and acting on them made every scan cause the next one.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::Watcher;
use notify::event::{AccessKind, AccessMode, EventKind};
use tokio::sync::Notify;

use super::{Settle, settle_for};

/// (device, inode) of a directory.
type Identity = (u64, u64);

/// What the path names now (following symbolic links), if anything.
fn identity(path: &Path) -> Option<Identity> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// "Something changed": a coalescing flag, so a burst of events costs no memory.
#[derive(Default)]
pub(super) struct Dirty {
    pub(super) notify: Notify,
    /// Set when an event says a spec file is being written in place (wait for quiet).
    quiet: AtomicBool,
    /// Set when an event concerned the directory itself (removed, created, renamed): the
    /// watches must be armed again even if the path's identity looks unchanged.
    rearm: AtomicBool,
}

impl Dirty {
    fn mark(&self, settle: Settle) {
        if settle == Settle::Quiet {
            self.quiet.store(true, Ordering::Relaxed);
        }
        self.notify.notify_one();
    }

    /// How the changes seen since the last call want to be settled; clears the flag.
    pub(super) fn take_settle(&self) -> Settle {
        if self.quiet.swap(false, Ordering::Relaxed) {
            Settle::Quiet
        } else {
            Settle::Quick
        }
    }
}

/// The watches on the directory and its parent.
pub(super) struct DirWatch {
    /// The directory, absolute (symbolic links not resolved).
    dir: PathBuf,
    dirty: Arc<Dirty>,
    watcher: Option<notify::RecommendedWatcher>,
    /// What the path named when the watches were armed (`None`: nothing).
    armed_on: Option<Identity>,
    /// Every watch that should exist was added; otherwise arming is retried on each scan.
    complete: bool,
    /// Whether a failure to watch was already logged (once per failure, not per scan).
    warned: bool,
}

impl DirWatch {
    pub(super) fn new(dir: &Path, dirty: Arc<Dirty>) -> DirWatch {
        DirWatch {
            dir: std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf()),
            dirty,
            watcher: None,
            armed_on: None,
            complete: false,
            warned: false,
        }
    }

    /// Whether the path names something else than when the watches were armed: a scan made
    /// since may have read the old directory.
    pub(super) fn swapped(&self) -> bool {
        self.dirty.rearm.load(Ordering::Relaxed) || identity(&self.dir) != self.armed_on
    }

    /// Arms both watches, again if the path names something else than when they were armed or
    /// if a watch could not be added last time. Returns whether it did.
    pub(super) fn ensure(&mut self) -> bool {
        if self.complete && !self.swapped() {
            return false;
        }
        self.dirty.rearm.store(false, Ordering::Relaxed);
        self.watcher = None; // drop the old watches before adding new ones
        self.armed_on = identity(&self.dir);
        self.complete = false;
        let dir = self.dir.clone();
        let dirty = self.dirty.clone();
        let handler = move |event: notify::Result<notify::Event>| match &event {
            Ok(event) => {
                if replaces_the_directory(&dir, event) {
                    dirty.rearm.store(true, Ordering::Relaxed);
                }
                if let Some(settle) = classify(&dir, event) {
                    dirty.mark(settle);
                }
            }
            Err(_) => dirty.mark(Settle::Quiet),
        };
        let mut watcher = match notify::recommended_watcher(handler) {
            Ok(watcher) => watcher,
            Err(e) => {
                self.warn(&format!("cannot create a watcher: {e}"));
                return true;
            }
        };
        let mut complete = true;
        if let Some(parent) = self.dir.parent()
            && let Err(e) = watcher.watch(parent, notify::RecursiveMode::NonRecursive)
        {
            self.warn(&format!("cannot watch {}: {e}", parent.display()));
            complete = false;
        }
        // Absent: the parent's watch sees it come back.
        if self.armed_on.is_some()
            && let Err(e) = watcher.watch(&self.dir, notify::RecursiveMode::NonRecursive)
        {
            self.warn(&format!("cannot watch it: {e}"));
            complete = false;
        }
        if complete && self.warned {
            tracing::info!(dir = %self.dir.display(), "watching the spec directory again");
            self.warned = false;
        }
        self.complete = complete;
        self.watcher = Some(watcher);
        true
    }

    fn warn(&mut self, error: &str) {
        if !self.warned {
            tracing::warn!(dir = %self.dir.display(), %error, "spec directory watch incomplete; relying on periodic resync");
            self.warned = true;
        }
    }
}

/// Whether an event says the directory itself was removed, created or renamed (reads of it,
/// ours included, and attribute changes do not).
fn replaces_the_directory(dir: &Path, event: &notify::Event) -> bool {
    use notify::event::ModifyKind;
    matches!(
        event.kind,
        EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    ) && event.paths.iter().any(|p| p == dir)
}

/// Whether an event from either watch matters, and how to settle it. `dir` is absolute.
pub(super) fn classify(dir: &Path, event: &notify::Event) -> Option<Settle> {
    if let EventKind::Access(kind) = event.kind
        && kind != AccessKind::Close(AccessMode::Write)
    {
        return None; // a read, often our own
    }
    if event.paths.is_empty() {
        return Some(Settle::Quick); // e.g. the kernel's queue overflowed: rescan
    }
    if event.paths.iter().any(|p| p == dir) {
        return Some(Settle::Quick); // the directory itself: removed, created, renamed, swapped
    }
    if event.paths.iter().any(|p| p.parent() == Some(dir)) {
        return Some(settle_for(event));
    }
    None // another entry of the parent directory
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::Event;
    use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind, RenameMode};

    #[test]
    fn reads_and_the_parents_other_entries_are_ignored() {
        let dir = Path::new("/etc/sipcast/broadcasts.d");
        let on = |kind: EventKind, path: &str| Event::new(kind).add_path(PathBuf::from(path));
        let spec = "/etc/sipcast/broadcasts.d/a.toml";
        for read in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
        ] {
            assert_eq!(classify(dir, &on(EventKind::Access(read), spec)), None);
            assert_eq!(
                classify(
                    dir,
                    &on(EventKind::Access(read), "/etc/sipcast/broadcasts.d")
                ),
                None,
                "our own read_dir, as the parent's watch reports it"
            );
        }
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(classify(dir, &on(written, spec)), Some(Settle::Quiet));
        let data = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(classify(dir, &on(data, spec)), Some(Settle::Quiet));
        assert_eq!(classify(dir, &on(data, "/etc/sipcast/sipcast.toml")), None);
        for kind in [
            EventKind::Remove(RemoveKind::Folder),
            EventKind::Create(CreateKind::Folder),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::Other),
        ] {
            assert_eq!(
                classify(dir, &on(kind, "/etc/sipcast/broadcasts.d")),
                Some(Settle::Quick),
                "{kind:?} on the directory itself"
            );
        }
        assert_eq!(
            classify(dir, &Event::new(EventKind::Other)),
            Some(Settle::Quick),
            "an overflow names no path"
        );
    }

    #[test]
    fn only_a_removal_creation_or_rename_of_the_directory_itself_re_arms() {
        let dir = Path::new("/etc/sipcast/broadcasts.d");
        let on = |kind: EventKind, path: &str| Event::new(kind).add_path(PathBuf::from(path));
        let itself = "/etc/sipcast/broadcasts.d";
        for kind in [
            EventKind::Remove(RemoveKind::Folder),
            EventKind::Create(CreateKind::Folder),
            EventKind::Modify(ModifyKind::Name(RenameMode::From)),
        ] {
            assert!(replaces_the_directory(dir, &on(kind, itself)), "{kind:?}");
        }
        let read = EventKind::Access(AccessKind::Open(AccessMode::Any));
        assert!(
            !replaces_the_directory(dir, &on(read, itself)),
            "our own read_dir"
        );
        let created = EventKind::Create(CreateKind::File);
        let spec = "/etc/sipcast/broadcasts.d/a.toml";
        assert!(
            !replaces_the_directory(dir, &on(created, spec)),
            "a spec file"
        );
    }
}
