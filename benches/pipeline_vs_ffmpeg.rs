//! The media benchmark: N sipcast pipelines against N ffmpeg processes doing the same job, on the
//! same input, in the same run, one side after the other.
//!
//! `cargo bench --bench pipeline_vs_ffmpeg -- --streams N --seconds S` (defaults 4 and 30).
//!
//! The job, per stream: H.264 and PCMU arrive over RTP on loopback (an ffmpeg *sender* replays a
//! recorded call in real time); video is passed through, audio becomes AAC-LC; the result is
//! published over RTMP to nginx-rtmp (`live on`, nothing recorded). sipcast runs in this process
//! through the library API, as the daemon runs it ([`sipcast_side`]); the reference is one
//! `ffmpeg -c:v copy -c:a aac -f flv` *receiver* per stream ([`ffmpeg_side`]). Measured per
//! side after a warm-up ([`measure`]): CPU seconds (user + system, `/proc/PID/stat`) per
//! stream-minute, peak RSS (`VmHWM`) per stream and RSS growth over the window. The senders are
//! separate processes and not counted on either side. nginx's own statistics ([`nginx`]) show
//! what each stream delivered, so a broken pipeline cannot look fast: the program fails if any
//! stream published nothing.
//!
//! A third run repeats the sipcast side with every sender encrypting (SRTP, ffmpeg's `srtp`
//! protocol) and prints its CPU beside the plain run's.
//!
//! A program that prints figures, not a test: `cargo test --benches` builds it and, without the
//! `--bench` flag `cargo bench` passes, it only says how to run it.

// The crate root is this file, so its modules are named by path.
#[path = "common/ffmpeg_side.rs"]
mod ffmpeg_side;
#[path = "common/host.rs"]
#[allow(dead_code)] // shared with daemon_vs_ffmpeg and the tests
mod host;
#[path = "common/measure.rs"]
#[allow(dead_code)] // shared with daemon_vs_ffmpeg, which reads the rest
mod measure;
#[path = "common/nginx.rs"]
#[allow(dead_code)] // shared with daemon_vs_ffmpeg, which reads the rest
mod nginx;
#[path = "common/peers.rs"]
#[allow(dead_code)] // shared with daemon_vs_ffmpeg, which reads the rest
mod peers;
#[path = "common/side.rs"]
#[allow(dead_code)] // shared with daemon_vs_ffmpeg, which reads the rest
mod side;
#[path = "pipeline_vs_ffmpeg/sipcast_side.rs"]
mod sipcast_side;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use sipcast::media::aac::AacConfig;

use nginx::Nginx;
use peers::{SourceFormat, make_source, require};
use side::{Fallible, LOOPBACK, Setup, SideResult, kb_to_mb};

fn main() -> ExitCode {
    side::bench_main(
        "pipeline_vs_ffmpeg",
        "--streams N --seconds S",
        |args| async move { run(parse_args(&args)?).await },
    )
}

struct Options {
    streams: usize,
    seconds: u64,
}

fn parse_args(args: &[String]) -> Fallible<Options> {
    let mut options = Options {
        streams: 4,
        seconds: 30,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Fallible<u64> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} needs a positive number"))
        };
        match arg.as_str() {
            "--streams" => options.streams = number("--streams")? as usize,
            "--seconds" => options.seconds = number("--seconds")?,
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown argument {other:?} (--streams N --seconds S)"
                ));
            }
        }
    }
    Ok(options)
}

async fn run(options: Options) -> Fallible<()> {
    for program in ["ffmpeg", "nginx"] {
        require(program)?;
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let outcome = compare(&options, dir.path()).await;
    outcome.map_err(|e| {
        // The logs the error points to live there.
        let kept = dir.keep();
        format!(
            "{e}
(logs, SDP files and nginx's config kept in {})",
            kept.display()
        )
    })
}

/// Runs both sides against one sink, prints the report, and fails if a stream did not publish.
async fn compare(options: &Options, dir: &Path) -> Fallible<()> {
    let format = SourceFormat::PIPELINE;
    let source = make_source(dir, &format)?;
    let source_kbps =
        std::fs::metadata(&source).map_or(0, |m| m.len()) * 8 / 1000 / u64::from(format.seconds);
    let nginx = Nginx::start(dir, false)?;

    // sipcast first: this process's VmHWM then covers the sipcast side only.
    let setup = Setup {
        streams: options.streams,
        window: Duration::from_secs(options.seconds),
        source: &source,
        nginx: &nginx,
        dir,
    };
    let sipcast = sipcast_side::run(&setup, false).await?;
    let ffmpeg = ffmpeg_side::run(&setup).await?;
    let srtp = sipcast_side::run(&setup, true).await?;

    print_report(&sipcast, &ffmpeg, &srtp, source_kbps);
    let broken: Vec<&str> = sipcast
        .broken
        .iter()
        .chain(&ffmpeg.broken)
        .chain(&srtp.broken)
        .map(String::as_str)
        .collect();
    if !broken.is_empty() {
        let broken = broken.join("\n  ");
        return Err(format!(
            "BROKEN, the figures above do not count:\n  {broken}"
        ));
    }
    Ok(())
}

fn print_report(sipcast: &SideResult, ffmpeg: &SideResult, srtp: &SideResult, source_kbps: u64) {
    let aac = AacConfig::default();
    println!();
    println!(
        "pipeline_vs_ffmpeg: {} streams per side, {:.1} s measured after a {} s warm-up, \
         sides run one after the other",
        sipcast.streams,
        sipcast.window.measured.as_secs_f64(),
        measure::warm_up_seconds()
    );
    println!(
        "input: H.264 Constrained Baseline 640x360@25 (-g 50, no B-frames) + PCMU 8 kHz in 20 ms \
         packets, {source_kbps} kbit/s, replayed over RTP on loopback"
    );
    println!(
        "output: H.264 copied + AAC-LC {} kHz mono {} kbit/s, RTMP to nginx-rtmp on loopback",
        aac.sample_rate / 1000,
        aac.bitrate / 1000
    );
    println!(
        "machine: {} cores, shared with other builds (1-min load average {:.2} / {:.2} at the \
         end of each window)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        sipcast.window.load_average,
        ffmpeg.window.load_average
    );
    println!();
    println!(
        "{:<16}{:>8}{:>20}{:>22}{:>22}{:>24}{:>20}",
        "side",
        "streams",
        "CPU s/stream-min",
        "peak RSS MB/stream",
        "private MB/stream",
        "RSS growth MB/stream",
        "sink kbit/s/stream"
    );
    for side in [sipcast, ffmpeg, srtp] {
        println!(
            "{:<16}{:>8}{:>20.3}{:>22.1}{:>22.1}{:>+24.2}{:>20.0}",
            side.label,
            side.streams,
            side.cpu_per_stream_minute(),
            side.peak_rss_mb_per_stream(),
            side.private_mb_per_stream(),
            side.rss_growth_mb_per_stream(),
            side.sink_kbps_per_stream()
        );
    }
    println!(
        "{:<16}{:>8}{:>19.1}x{:>21.1}x{:>21.1}x",
        "ffmpeg/sipcast",
        "",
        ffmpeg.cpu_per_stream_minute() / sipcast.cpu_per_stream_minute(),
        ffmpeg.peak_rss_mb_per_stream() / sipcast.peak_rss_mb_per_stream(),
        ffmpeg.private_mb_per_stream() / sipcast.private_mb_per_stream()
    );
    println!(
        "{:<16}{:>8}{:>19.2}x   (the same job with every packet SRTP, decrypted by sipcast; \
         its peak RSS is the process's highest so far, both sipcast runs included)",
        "SRTP/plain",
        "",
        srtp.cpu_per_stream_minute() / sipcast.cpu_per_stream_minute(),
    );
    println!(
        "(sipcast's memory is the whole process's divided by the streams; its RSS was {:.1} MB \
         before the first pipeline. RSS counts shared libraries in every process, private \
         memory (USS, smaps_rollup) does not.)",
        kb_to_mb(sipcast.baseline_rss_kb)
    );
    println!();
    for line in sipcast
        .checks
        .iter()
        .chain(&ffmpeg.checks)
        .chain(&srtp.checks)
    {
        println!("{line}");
    }
}
