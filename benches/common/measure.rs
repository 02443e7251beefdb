//! What a side costs, read from /proc, and what it delivered, read from nginx.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use sipcast::clock::monotonic;

use crate::nginx::{Nginx, SinkStream, describe_sink, find_stream, sink_delivered, sink_ok};
use crate::{Fallible, Setup};

const WARM_UP: Duration = Duration::from_secs(3);
/// How long every stream of a side gets to reach nginx before the run is declared broken: a
/// base plus a little per stream (a daemon dials its calls one after the other).
fn start_limit(streams: usize) -> Duration {
    Duration::from_secs(20) + Duration::from_millis(100) * streams as u32
}

pub fn warm_up_seconds() -> u64 {
    WARM_UP.as_secs()
}

/// The measured window of one side, all its streams together.
pub struct Window {
    pub measured: Duration,
    /// User + system CPU seconds of the measured processes.
    pub cpu_s: f64,
    /// The part of `cpu_s` spent in the kernel (stime).
    pub sys_s: f64,
    /// Sum of the processes' peak RSS (VmHWM) at the end.
    pub peak_rss_kb: u64,
    /// Sum of the processes' private memory (USS) at the end: what one more would cost, without
    /// the shared libraries that RSS counts in every process.
    pub private_kb: u64,
    /// Sum of the processes' VmRSS at the end minus at the start.
    pub rss_growth_kb: i64,
    /// Bytes nginx received from the side's streams.
    pub sink_bytes: u64,
    /// nginx's streams at the end.
    pub sink: Vec<SinkStream>,
    /// User + system CPU seconds of the processes feeding the side its input (not counted in
    /// `cpu_s`): a saturated source shows here.
    pub source_cpu_s: f64,
    /// The 1-minute load average at the end: how busy the machine was.
    pub load_average: f64,
}

/// Skips the warm-up, then measures `pids` (process ids or `self`), the `sources` feeding them
/// and the streams `names` at the sink over the setup's window.
pub async fn measure(
    setup: &Setup<'_>,
    names: &[String],
    pids: &[String],
    sources: &[String],
) -> Fallible<Window> {
    let nginx = setup.nginx;
    tokio::time::sleep(WARM_UP).await;
    let usages = || pids.iter().map(|p| usage(p)).collect::<Fallible<Vec<_>>>();
    let source_cpu = || -> Fallible<f64> { sources.iter().map(|p| Ok(usage(p)?.cpu_s)).sum() };
    let source_before = source_cpu()?;
    let before = usages()?;
    let sink_before = nginx.streams()?;
    let started = monotonic();
    tokio::time::sleep(setup.window).await;
    let after = usages()?;
    let source_cpu_s = source_cpu()? - source_before;
    let measured = started.elapsed();
    let sink = nginx.streams()?;
    let pairs = || after.iter().zip(&before);
    Ok(Window {
        measured,
        cpu_s: pairs().map(|(a, b)| a.cpu_s - b.cpu_s).sum(),
        sys_s: pairs().map(|(a, b)| a.sys_s - b.sys_s).sum(),
        peak_rss_kb: after.iter().map(|a| a.hwm_kb).sum(),
        private_kb: after.iter().map(|a| a.private_kb).sum(),
        rss_growth_kb: pairs()
            .map(|(a, b)| a.rss_kb as i64 - b.rss_kb as i64)
            .sum(),
        sink_bytes: sink_delivered(&sink_before, &sink, names),
        sink,
        source_cpu_s,
        load_average: load_average(),
    })
}

/// Polls nginx until every stream in `names` is publishing H.264 and AAC and `ready()` holds.
pub async fn wait_until_published(
    nginx: &Nginx,
    names: &[String],
    ready: impl Fn() -> bool,
) -> Fallible<()> {
    let limit = start_limit(names.len());
    let deadline = monotonic() + limit;
    loop {
        let sink = nginx.streams()?;
        if ready() && names.iter().all(|n| sink_ok(find_stream(&sink, n))) {
            return Ok(());
        }
        if monotonic() >= deadline {
            let seen: Vec<String> = names
                .iter()
                .map(|n| format!("{n}: {}", describe_sink(find_stream(&sink, n))))
                .collect();
            let seen = seen.join("\n  ");
            return Err(format!("streams not publishing after {limit:?}:\n  {seen}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A process's CPU time so far and its memory now.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// stime alone, seconds.
    pub sys_s: f64,
    pub rss_kb: u64,
    /// Peak RSS so far (VmHWM).
    pub hwm_kb: u64,
    /// Private_Clean + Private_Dirty now (USS).
    pub private_kb: u64,
}

/// `pid` is a process id or `self`.
pub fn usage(pid: &str) -> Fallible<Usage> {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .map_err(|e| format!("/proc/{pid}/{file}: {e}"))
    };
    let stat = read("stat")?;
    // After the command name, which may hold spaces: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
        return Err(format!("/proc/{pid}/stat unreadable: {stat}"));
    };
    let status = read("status")?;
    let rollup = read("smaps_rollup")?;
    Ok(Usage {
        cpu_s: (utime + stime) as f64 / clock_ticks_per_second(),
        sys_s: stime as f64 / clock_ticks_per_second(),
        rss_kb: kb(&status, "VmRSS:"),
        hwm_kb: kb(&status, "VmHWM:"),
        private_kb: kb(&rollup, "Private_Clean:") + kb(&rollup, "Private_Dirty:"),
    })
}

/// A `Key:   123 kB` line of a /proc file, in kB.
fn kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// USER_HZ, the unit of /proc's CPU times.
fn clock_ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|f| f.parse().ok()))
        .unwrap_or(f64::NAN)
}
