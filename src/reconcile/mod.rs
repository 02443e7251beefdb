//! Level-triggered reconciliation: the directory source hands over the whole desired set; a
//! pure [`plan`] compares it with the running supervisors; one [`SupervisorHandle`] per
//! broadcast carries it out.
//!
//! A file whose new content is invalid keeps its last valid version running and reports the
//! error. A supervisor told to stop stays registered here until its task has hung up and
//! exited, so a name that comes back meanwhile reuses it: never two calls for one name.

pub mod plan;
mod supervisor;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

pub use plan::{Plan, plan};
pub use supervisor::{SupervisorContext, SupervisorHandle};

use crate::internal_tasks::{InternalTasks, run_pass};
use crate::source::DirectoryScan;
use crate::spec::BroadcastSpec;
use crate::status::{BroadcastStatus, ConditionStatus, set_condition};

/// How often the loop ticks (reaping finished supervisors, proving liveness) without input.
const TICK: Duration = Duration::from_secs(1);
/// SIGTERM must hang everything up within this.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The reconcile loop's name among the internal tasks.
pub const RECONCILER: &str = "reconciler";

/// Orders for the loop from the daemon's signal handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// SIGHUP: skip every backoff wait (the source rescans on its own notification).
    RetryNow,
    /// SIGTERM/SIGINT: hang up everything and return.
    Shutdown,
}

/// What one scanned file contributes to status: its accepted generation or its errors.
struct FileRow {
    name: String,
    file: String,
    outcome: Result<u64, String>,
    /// The entry is not a readable file at all (a broken link, a FIFO, too large, ...).
    unreadable: bool,
    description: Option<String>,
}

struct Accepted {
    spec: Arc<BroadcastSpec>,
    hash: [u8; 32],
    generation: u64,
}

pub struct Reconciler {
    ctx: SupervisorContext,
    /// Where a pass that panicked is counted (the loop itself goes on with its state).
    tasks: InternalTasks,
    supervisors: BTreeMap<String, SupervisorHandle>,
    /// The last valid version of each present file.
    accepted: BTreeMap<String, Accepted>,
    /// Names of the spec files present at the last successful scan.
    present: std::collections::BTreeSet<String>,
    /// Content hash of each file whose current content was refused (logged once per content).
    rejected: BTreeMap<String, [u8; 32]>,
}

impl Reconciler {
    pub fn new(ctx: SupervisorContext, tasks: InternalTasks) -> Self {
        Reconciler {
            ctx,
            tasks,
            supervisors: BTreeMap::new(),
            accepted: BTreeMap::new(),
            present: Default::default(),
            rejected: BTreeMap::new(),
        }
    }

    /// Takes in one directory scan: new valid versions replace old ones, invalid content keeps
    /// the last valid version, absent files are no longer desired.
    pub fn apply_scan(&mut self, scan: DirectoryScan) {
        let now = self.ctx.clock.now();
        if let Some(error) = scan.error {
            tracing::error!(%error, "spec directory unreadable; keeping every broadcast as it is");
            self.ctx.board.update(|s| {
                s.ready = true;
                *s.reloads.entry("failed").or_default() += 1;
                set_condition(
                    &mut s.conditions,
                    "DirectoryReadable",
                    ConditionStatus::False,
                    "ReadFailed",
                    error,
                    now,
                );
            });
            return;
        }
        let mut changed = false;
        let mut rows: Vec<FileRow> = Vec::new();
        for (name, file) in &scan.files {
            match &file.spec {
                Ok(spec) => {
                    let prev = self.accepted.get(name);
                    if prev.is_none_or(|a| a.hash != file.hash) {
                        let generation = prev.map_or(1, |a| a.generation + 1);
                        tracing::info!(broadcast = %name, generation, "spec accepted");
                        for warning in &spec.warnings {
                            tracing::warn!(broadcast = %name, "{warning}");
                        }
                        self.accepted.insert(
                            name.clone(),
                            Accepted {
                                spec: spec.clone(),
                                hash: file.hash,
                                generation,
                            },
                        );
                        changed = true;
                    }
                    let generation = self.accepted[name].generation;
                    rows.push(FileRow {
                        name: name.clone(),
                        file: file.file.clone(),
                        outcome: Ok(generation),
                        unreadable: false,
                        description: spec.description.clone(),
                    });
                }
                Err(errors) => {
                    let kept = self.accepted.get(name).map_or(0, |a| a.generation);
                    rows.push(FileRow {
                        name: name.clone(),
                        file: file.file.clone(),
                        outcome: Err(errors.to_string()),
                        unreadable: file.unreadable,
                        description: None,
                    });
                    if self.rejected.insert(name.clone(), file.hash) != Some(file.hash) {
                        tracing::warn!(broadcast = %name, kept_generation = kept, "spec rejected: {errors}");
                        changed = true;
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .accepted
            .keys()
            .filter(|n| !scan.files.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            tracing::info!(broadcast = %name, "spec file removed");
            self.accepted.remove(&name);
            changed = true;
        }
        self.rejected
            .retain(|name, _| scan.files.get(name).is_some_and(|f| f.spec.is_err()));
        changed |= self.present.len() != scan.files.len();
        self.present = scan.files.keys().cloned().collect();
        let supervised: Vec<String> = self.supervisors.keys().cloned().collect();
        let present = self.present.clone();
        self.ctx.board.update(|s| {
            s.ready = true;
            *s.reloads
                .entry(if changed { "applied" } else { "unchanged" })
                .or_default() += 1;
            set_condition(
                &mut s.conditions,
                "DirectoryReadable",
                ConditionStatus::True,
                "Scanned",
                "",
                now,
            );
            for FileRow {
                name,
                file,
                outcome,
                unreadable,
                description,
            } in rows
            {
                let b = s
                    .broadcasts
                    .entry(name.clone())
                    .or_insert_with(|| BroadcastStatus::new(&name, &file));
                b.file = file;
                match outcome {
                    Ok(generation) => {
                        b.accepted = true;
                        b.error = None;
                        b.generation = generation;
                        b.description = description;
                        b.set_condition("Accepted", ConditionStatus::True, "Valid", "", now);
                    }
                    Err(error) => {
                        b.accepted = false;
                        let (reason, what) = if unreadable {
                            ("Unreadable", "unreadable file")
                        } else {
                            ("InvalidSpec", "invalid spec")
                        };
                        let message = if b.generation > 0 {
                            format!("{what}; generation {} keeps running", b.generation)
                        } else {
                            format!("{what}; nothing runs")
                        };
                        b.error = Some(error);
                        b.set_condition("Accepted", ConditionStatus::False, reason, message, now);
                    }
                }
            }
            s.broadcasts
                .retain(|name, _| present.contains(name) || supervised.contains(name));
        });
    }

    /// Makes the running supervisors match the accepted specs.
    pub fn reconcile(&mut self) {
        self.reap();
        let desired: BTreeMap<String, Arc<BroadcastSpec>> = self
            .accepted
            .iter()
            .filter(|(name, _)| self.present.contains(*name))
            .map(|(name, a)| (name.clone(), a.spec.clone()))
            .collect();
        let running: BTreeMap<String, Arc<BroadcastSpec>> = self
            .supervisors
            .iter()
            .filter_map(|(name, h)| h.current().map(|spec| (name.clone(), spec)))
            .collect();
        let plan = plan(&desired, &running);
        for name in &plan.start {
            let spec = desired[name].clone();
            match self.supervisors.get(name) {
                Some(stopping) => stopping.set_spec(Some(spec)),
                None => {
                    let handle = SupervisorHandle::spawn(spec, self.ctx.clone());
                    self.supervisors.insert(name.clone(), handle);
                }
            }
        }
        for name in plan.restart.iter().chain(&plan.update) {
            self.supervisors[name].set_spec(Some(desired[name].clone()));
        }
        for name in &plan.stop {
            self.supervisors[name].set_spec(None);
        }
    }

    /// Forgets supervisors whose task has exited, and their status if the file is gone too.
    fn reap(&mut self) {
        let finished: Vec<String> = self
            .supervisors
            .iter()
            .filter(|(_, h)| h.is_finished())
            .map(|(n, _)| n.clone())
            .collect();
        for name in finished {
            self.supervisors.remove(&name);
            if !self.present.contains(&name) {
                self.ctx.board.update(|s| {
                    s.broadcasts.remove(&name);
                });
            }
        }
    }

    /// Skips every backoff wait.
    pub fn retry_all(&self) {
        for handle in self.supervisors.values() {
            handle.retry_now();
        }
    }

    /// Hangs up everything, waiting at most [`SHUTDOWN_GRACE`].
    pub async fn shutdown(self) {
        for handle in self.supervisors.values() {
            handle.set_spec(None);
        }
        // Every supervisor hangs up in its own task at once; awaiting them in turn is enough.
        let all = async {
            for handle in self.supervisors.into_values() {
                handle.join().await;
            }
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::error!("some calls did not hang up within {SHUTDOWN_GRACE:?}");
        }
    }

    /// The loop: applies scans, obeys controls, ticks. `on_tick` sees the snapshot after every
    /// pass (the daemon pings the systemd watchdog from it). Returns after a shutdown.
    ///
    /// Each pass runs under [`run_pass`]: a panic abandons that pass only, and the supervisors
    /// and accepted specs (every live call) stay as they were; the next scan or tick retries.
    pub async fn run(
        mut self,
        mut scans: mpsc::Receiver<DirectoryScan>,
        mut control: mpsc::Receiver<Control>,
        mut on_tick: impl FnMut(&crate::status::Snapshot),
    ) {
        self.tasks.mark_up(RECONCILER);
        let exited = self.ctx.exited.clone();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                scan = scans.recv() => match scan {
                    Some(scan) => {
                        let tasks = self.tasks.clone();
                        run_pass(&tasks, RECONCILER, || {
                            self.apply_scan(scan);
                            self.reconcile();
                        });
                    }
                    None => break,
                },
                order = control.recv() => match order {
                    Some(Control::RetryNow) => self.retry_all(),
                    Some(Control::Shutdown) | None => break,
                },
                _ = tick.tick() => {
                    let tasks = self.tasks.clone();
                    run_pass(&tasks, RECONCILER, || self.reconcile());
                }
                _ = exited.notified() => {
                    // The task may still be returning from its last poll: give it a moment
                    // (if it is not done by then, the next tick reaps it).
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    let tasks = self.tasks.clone();
                    run_pass(&tasks, RECONCILER, || self.reconcile());
                }
            }
            let now = crate::clock::monotonic();
            self.ctx.board.update(|s| s.last_tick = Some(now));
            self.ctx.board.reader().with(&mut on_tick);
        }
        self.shutdown().await;
    }
}
