//! What the benchmark programs share about a side (sipcast or ffmpeg): what it runs against and
//! what it cost and delivered.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::measure::Window;
use crate::nginx::Nginx;

pub type Fallible<T> = Result<T, String>;

pub const LOOPBACK: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// What each side runs against.
#[derive(Clone, Copy)]
pub struct Setup<'a> {
    pub streams: usize,
    /// The measured window, after the warm-up.
    pub window: Duration,
    /// The recording the ffmpeg senders replay.
    pub source: &'a Path,
    pub nginx: &'a Nginx,
    /// Where SDP files and logs go.
    pub dir: &'a Path,
}

/// What one side cost and delivered.
pub struct SideResult {
    pub label: &'static str,
    pub streams: usize,
    /// The streams' names at the sink.
    pub names: Vec<String>,
    /// RSS of the measured process before any pipeline (in-process sipcast only).
    pub baseline_rss_kb: u64,
    pub window: Window,
    /// One line per stream saying what it delivered.
    pub checks: Vec<String>,
    /// Streams that did not do the job.
    pub broken: Vec<String>,
}

impl SideResult {
    pub fn new(
        label: &'static str,
        names: Vec<String>,
        window: Window,
        checks: Vec<String>,
        broken: Vec<String>,
    ) -> SideResult {
        SideResult {
            label,
            streams: names.len(),
            names,
            baseline_rss_kb: 0,
            window,
            checks,
            broken,
        }
    }

    pub fn cpu_per_stream_minute(&self) -> f64 {
        let minutes = self.window.measured.as_secs_f64() / 60.0;
        self.window.cpu_s / self.streams as f64 / minutes
    }

    /// The share of the side's CPU time spent in the kernel (sockets, wake-ups), in percent.
    pub fn kernel_percent(&self) -> f64 {
        100.0 * self.window.sys_s / self.window.cpu_s.max(f64::MIN_POSITIVE)
    }

    pub fn peak_rss_mb_per_stream(&self) -> f64 {
        kb_to_mb(self.window.peak_rss_kb) / self.streams as f64
    }

    pub fn private_mb_per_stream(&self) -> f64 {
        kb_to_mb(self.window.private_kb) / self.streams as f64
    }

    pub fn rss_growth_mb_per_stream(&self) -> f64 {
        self.window.rss_growth_kb as f64 / 1024.0 / self.streams as f64
    }

    pub fn sink_kbps_per_stream(&self) -> f64 {
        let bits = self.window.sink_bytes as f64 * 8.0;
        bits / 1000.0 / self.window.measured.as_secs_f64() / self.streams as f64
    }

    /// The source processes' CPU over the window, in percent of one core.
    pub fn source_cpu_percent(&self) -> f64 {
        100.0 * self.window.source_cpu_s / self.window.measured.as_secs_f64()
    }
}

pub fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// A benchmark program's `main`: without the `--bench` flag `cargo bench` passes (as under
/// `cargo test --benches`) it only says how to run it; otherwise it runs `bench` on the
/// arguments in the daemon's tokio runtime and exits non-zero on an error.
pub fn bench_main<F>(name: &str, usage: &str, bench: impl FnOnce(Vec<String>) -> F) -> ExitCode
where
    F: std::future::Future<Output = Fallible<()>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!(
            "{name} is a benchmark program: run it with `cargo bench --bench {name} -- {usage}`"
        );
        return ExitCode::SUCCESS;
    }
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|e| format!("tokio runtime: {e}"))
        .and_then(|runtime| runtime.block_on(bench(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
