//! Observed state, written in one place and read everywhere else.
//!
//! Supervisors and the reconciler write through a [`StatusBoard`]; the API and the metrics
//! endpoint read [`Snapshot`]s through a [`StatusReader`]. A `tokio::sync::watch` channel sits
//! between them, so readers never block writers.

mod metrics;
mod model;

use std::collections::BTreeMap;

pub use metrics::render_metrics;
pub use model::*;
use tokio::sync::watch;

/// Everything the daemon reports at one moment.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub broadcasts: BTreeMap<String, BroadcastStatus>,
    /// True once the first directory scan has been applied.
    pub ready: bool,
    /// When the reconcile loop last ran (monotonic); `/livez` checks it is recent.
    pub last_tick: Option<tokio::time::Instant>,
    /// Daemon-level conditions (e.g. `DirectoryReadable`).
    pub conditions: Vec<Condition>,
    /// Directory rescans by result (`applied`, `unchanged`, `failed`).
    pub reloads: BTreeMap<&'static str, u64>,
}

impl Snapshot {
    /// Number of broadcasts and how many of them are streaming, for systemd's STATUS=.
    pub fn summary(&self) -> String {
        let total = self.broadcasts.len();
        let live = self
            .broadcasts
            .values()
            .filter(|b| matches!(b.phase, Phase::Streaming | Phase::Connected))
            .count();
        let plural = if total == 1 { "" } else { "s" };
        format!("{total} broadcast{plural}, {live} live")
    }
}

/// The writing side. Cheap to clone; every clone writes the same snapshot.
#[derive(Clone)]
pub struct StatusBoard {
    tx: watch::Sender<Snapshot>,
}

/// The reading side, for the API.
#[derive(Clone)]
pub struct StatusReader {
    rx: watch::Receiver<Snapshot>,
}

impl StatusBoard {
    pub fn new() -> (StatusBoard, StatusReader) {
        let (tx, rx) = watch::channel(Snapshot::default());
        (StatusBoard { tx }, StatusReader { rx })
    }

    /// Changes the snapshot in place.
    pub fn update(&self, change: impl FnOnce(&mut Snapshot)) {
        self.tx.send_modify(change);
    }

    /// Changes one broadcast's entry, if it exists.
    pub fn update_broadcast(&self, name: &str, change: impl FnOnce(&mut BroadcastStatus)) {
        self.tx.send_modify(|s| {
            if let Some(b) = s.broadcasts.get_mut(name) {
                change(b);
            }
        });
    }

    pub fn reader(&self) -> StatusReader {
        StatusReader {
            rx: self.tx.subscribe(),
        }
    }
}

impl StatusReader {
    /// A copy of the current snapshot.
    pub fn snapshot(&self) -> Snapshot {
        self.rx.borrow().clone()
    }

    /// Runs `f` on the current snapshot without copying it.
    pub fn with<T>(&self, f: impl FnOnce(&Snapshot) -> T) -> T {
        f(&self.rx.borrow())
    }

    /// Waits until the snapshot changes.
    pub async fn changed(&mut self) -> bool {
        self.rx.changed().await.is_ok()
    }
}
