//! The assembled control plane: directory source → reconciler → supervisors → status.
//!
//! `sipcast run` wraps an [`Engine`] with the API server, signals and systemd notifications;
//! tests drive one directly with a scripted dialer.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::call::Dialer;
use crate::clock::WallClock;
use crate::internal_tasks::InternalTasks;
use crate::output::PreviewHub;
use crate::reconcile::{Control, Reconciler, SupervisorContext};
use crate::source::{self, SourceConfig};
use crate::status::{StatusBoard, StatusReader};

/// A running control plane.
pub struct Engine {
    pub status: StatusReader,
    /// The internal tasks' health: `/livez` and the restart counters read it; the daemon adds
    /// the SIP engine's probe.
    pub tasks: InternalTasks,
    /// What the outputs publish, for live-preview viewers.
    pub preview: PreviewHub,
    control: mpsc::Sender<Control>,
    rescan: Arc<Notify>,
    reconciler: JoinHandle<()>,
    source: JoinHandle<()>,
}

impl Engine {
    /// Starts watching `source.dir` and reconciling. `on_tick` runs after every loop pass.
    pub fn start(
        source: SourceConfig,
        dialer: Arc<dyn Dialer>,
        clock: WallClock,
        on_tick: impl FnMut(&crate::status::Snapshot) + Send + 'static,
    ) -> Engine {
        Engine::start_with_preview(source, dialer, clock, PreviewHub::enabled(), on_tick)
    }

    /// [`Engine::start`] with the outputs' frames offered to `preview` (a disabled hub takes
    /// none: `sipcast.toml` `preview = false`).
    pub fn start_with_preview(
        source: SourceConfig,
        dialer: Arc<dyn Dialer>,
        clock: WallClock,
        preview: PreviewHub,
        on_tick: impl FnMut(&crate::status::Snapshot) + Send + 'static,
    ) -> Engine {
        let (board, status) = StatusBoard::new();
        let (scan_tx, scan_rx) = mpsc::channel(4);
        let (control, control_rx) = mpsc::channel(8);
        let rescan = Arc::new(Notify::new());
        let tasks = InternalTasks::default();
        let reconciler = Reconciler::new(
            SupervisorContext {
                dialer,
                board,
                clock,
                preview: preview.clone(),
                exited: Arc::new(Notify::new()),
            },
            tasks.clone(),
        );
        // The source keeps nothing the reconciler lacks: a restarted one rescans everything,
        // and unchanged files compare equal by hash.
        let rescan_source = rescan.clone();
        let source = tasks.spawn_restarting("source", move || {
            source::run(source.clone(), scan_tx.clone(), rescan_source.clone())
        });
        Engine {
            status,
            tasks,
            preview,
            control,
            rescan,
            reconciler: tokio::spawn(reconciler.run(scan_rx, control_rx, on_tick)),
            source,
        }
    }

    /// SIGHUP: re-read the directory and skip every backoff wait.
    pub async fn reload(&self) {
        self.rescan.notify_one();
        let _ = self.control.send(Control::RetryNow).await;
    }

    /// SIGTERM: hang up everything (within the reconciler's grace period) and stop.
    pub async fn shutdown(self) {
        let _ = self.control.send(Control::Shutdown).await;
        let _ = self.reconciler.await;
        self.source.abort();
    }
}
