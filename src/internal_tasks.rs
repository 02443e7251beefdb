//! The daemon's internal tasks: the ones that serve every broadcast at once (the reconciler, the
//! directory source, the status API, the SIP engine). A panic in one of them must not stop
//! every broadcast on the host: it is caught, logged with its location through the configured
//! log format (see [`install_panic_hook`]), counted per task, and the task is restarted.
//!
//! [`InternalTasks`] is the registry `/livez` and `/metrics` read: a task that is down (between
//! its panic and its restart) makes `/livez` answer 503, and every restart shows in
//! `sipcast_internal_restarts_total{task}`. Tasks that supervise themselves elsewhere (the SIP
//! engine keeps its command channel across restarts) report through a probe instead.

use std::collections::BTreeMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::FutureExt;

use crate::backoff::{Backoff, Jitter};
use tokio::task::JoinHandle;

/// The first restart waits this long; each further one in a row doubles it up to
/// [`RESTART_MAX`], so a task that panics on every start does not spin a core.
const RESTART_INITIAL: Duration = Duration::from_millis(100);
const RESTART_MAX: Duration = Duration::from_secs(10);
/// A task that ran this long since its last restart is healthy again: the delay starts over.
pub const RESTART_RESET_AFTER: Duration = Duration::from_secs(60);

/// The delays between restarts of a task that keeps failing (every internal task, the SIP
/// engine's own supervisor included): 100 ms doubling to 10 s; `reset()` it after a run of
/// [`RESTART_RESET_AFTER`].
pub fn restart_backoff() -> Backoff {
    Backoff::new(RESTART_INITIAL, RESTART_MAX, Jitter::NONE)
}

/// What is known of one internal task.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskHealth {
    /// False between a panic and the restart.
    pub up: bool,
    /// Panics caught (and so restarts) since the daemon started.
    pub restarts: u64,
}

type Probe = Box<dyn Fn() -> TaskHealth + Send + Sync>;
/// Counters a task keeps of what it refused or limited, by fixed kind.
type CounterSource = Box<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

#[derive(Default)]
struct Registry {
    tasks: BTreeMap<&'static str, TaskHealth>,
    probes: BTreeMap<&'static str, Probe>,
    /// Metric family (without the `sipcast_` prefix), its help text and its source.
    counters: BTreeMap<&'static str, (&'static str, CounterSource)>,
}

/// The shared registry of internal tasks. Cheap to clone.
#[derive(Clone, Default)]
pub struct InternalTasks {
    inner: Arc<Mutex<Registry>>,
}

impl InternalTasks {
    /// Every task, by name, with its health now.
    pub fn health(&self) -> BTreeMap<&'static str, TaskHealth> {
        self.with(|r| {
            let mut all = r.tasks.clone();
            for (name, probe) in &r.probes {
                all.insert(name, probe());
            }
            all
        })
    }

    /// True when no internal task is down.
    pub fn all_up(&self) -> bool {
        self.health().values().all(|h| h.up)
    }

    /// Names of the tasks that are down now.
    pub fn down(&self) -> Vec<&'static str> {
        self.health()
            .into_iter()
            .filter(|(_, h)| !h.up)
            .map(|(name, _)| name)
            .collect()
    }

    /// Registers a task that supervises itself and reports through `probe`.
    pub fn add_probe(
        &self,
        name: &'static str,
        probe: impl Fn() -> TaskHealth + Send + Sync + 'static,
    ) {
        self.with(|r| r.probes.insert(name, Box::new(probe)));
    }

    /// Renders `sipcast_{family}{kind="…"}` counters from `source` with the other metrics.
    pub fn add_counters(
        &self,
        family: &'static str,
        help: &'static str,
        source: impl Fn() -> Vec<(&'static str, u64)> + Send + Sync + 'static,
    ) {
        self.with(|r| r.counters.insert(family, (help, Box::new(source))));
    }

    /// Marks `name` up (registering it if new).
    pub fn mark_up(&self, name: &'static str) {
        self.with(|r| r.tasks.entry(name).or_default().up = true);
    }

    /// Records a caught panic of `name`; `still_up` when its state survived (a pass was
    /// abandoned, the task itself goes on).
    pub fn record_panic(&self, name: &'static str, still_up: bool) {
        self.with(|r| {
            let task = r.tasks.entry(name).or_default();
            task.restarts += 1;
            task.up = still_up;
        });
    }

    /// Appends `sipcast_internal_restarts_total{task}` and `sipcast_internal_task_up{task}`
    /// (Prometheus text); task names are fixed identifiers, never input.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let health = self.health();
        let _ = writeln!(
            out,
            "# HELP sipcast_internal_restarts_total Internal tasks restarted (or passes abandoned) after a panic.\n# TYPE sipcast_internal_restarts_total counter"
        );
        for (name, h) in &health {
            let _ = writeln!(
                out,
                "sipcast_internal_restarts_total{{task=\"{name}\"}} {}",
                h.restarts
            );
        }
        let _ = writeln!(
            out,
            "# HELP sipcast_internal_task_up 1 while the internal task runs, 0 between a panic and its restart.\n# TYPE sipcast_internal_task_up gauge"
        );
        for (name, h) in &health {
            let _ = writeln!(
                out,
                "sipcast_internal_task_up{{task=\"{name}\"}} {}",
                u8::from(h.up)
            );
        }
        self.with(|r| {
            for (family, (help, source)) in &r.counters {
                let _ = writeln!(out, "# HELP sipcast_{family} {help}");
                let _ = writeln!(out, "# TYPE sipcast_{family} counter");
                for (kind, value) in source() {
                    let _ = writeln!(out, "sipcast_{family}{{kind=\"{kind}\"}} {value}");
                }
            }
        });
    }

    fn with<T>(&self, f: impl FnOnce(&mut Registry) -> T) -> T {
        // A panic while the lock was held cannot leave the plain counters inconsistent.
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut registry)
    }

    /// Spawns the task `make()` builds and builds it again whenever it panics, after a delay
    /// that grows while the panics come in a row. A task that returns is done for good.
    pub fn spawn_restarting<F, Fut>(&self, name: &'static str, mut make: F) -> JoinHandle<()>
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let tasks = self.clone();
        tokio::spawn(async move {
            let mut backoff = restart_backoff();
            loop {
                tasks.mark_up(name);
                let started = crate::clock::monotonic();
                if AssertUnwindSafe(make()).catch_unwind().await.is_ok() {
                    return;
                }
                tasks.record_panic(name, false);
                if started.elapsed() >= RESTART_RESET_AFTER {
                    backoff.reset();
                }
                let delay = backoff.next_delay(0.0);
                tracing::error!(task = name, restart_in = ?delay, "internal task failed; restarting it");
                tokio::time::sleep(delay).await;
            }
        })
    }
}

/// Runs one pass of a task whose state must survive a panic (the reconciler's scan and plan):
/// a panic abandons the pass, is counted, and the task goes on with the state it had.
pub fn run_pass<T>(
    tasks: &InternalTasks,
    name: &'static str,
    pass: impl FnOnce() -> T,
) -> Option<T> {
    match std::panic::catch_unwind(AssertUnwindSafe(pass)) {
        Ok(value) => Some(value),
        Err(_) => {
            tasks.record_panic(name, true);
            tracing::error!(task = name, "internal task failed in one pass; going on");
            None
        }
    }
}

/// Routes panic messages through `tracing`, so they reach the configured log format (one JSON
/// object, or one journald entry) instead of plain lines on stderr, with the location and with
/// the message escaped: a panic message may quote bytes a peer sent.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(no message)");
        let message: String = message
            .chars()
            .take(512)
            .flat_map(char::escape_debug)
            .collect();
        let thread = std::thread::current();
        tracing::error!(
            panic.location = %location,
            panic.thread = thread.name().unwrap_or("unnamed"),
            panic.message = %message,
            "internal error (panic)"
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_task_that_panics_is_restarted_and_counted() {
        let tasks = InternalTasks::default();
        let runs = Arc::new(Mutex::new(0u32));
        let counter = runs.clone();
        let handle = tasks.spawn_restarting("flaky", move || {
            let counter = counter.clone();
            async move {
                let run = {
                    let mut runs = counter.lock().unwrap();
                    *runs += 1;
                    *runs
                };
                if run <= 3 {
                    panic!("run {run} fails");
                }
                std::future::pending::<()>().await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(tasks.down(), vec!["flaky"], "down until the first restart");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(*runs.lock().unwrap(), 4);
        assert!(tasks.all_up());
        assert_eq!(tasks.health()["flaky"].restarts, 3);
        handle.abort();
    }

    #[test]
    fn a_pass_that_panics_keeps_the_task_up() {
        let tasks = InternalTasks::default();
        tasks.mark_up("loop");
        let mut state = vec![1];
        let out = run_pass(&tasks, "loop", || {
            state.push(2);
            if state.len() == 2 {
                panic!("bad pass");
            }
        });
        assert_eq!(out, None);
        assert_eq!(state, vec![1, 2], "the state survives");
        assert_eq!(
            tasks.health()["loop"],
            TaskHealth {
                up: true,
                restarts: 1
            }
        );
    }

    #[test]
    fn probes_count_as_tasks() {
        let tasks = InternalTasks::default();
        tasks.add_probe("sip", || TaskHealth {
            up: false,
            restarts: 2,
        });
        assert!(!tasks.all_up());
        assert_eq!(tasks.down(), vec!["sip"]);
    }
}
