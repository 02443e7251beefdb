//! The daemon benchmark: the whole `sipcast run` as a user runs it (spec files dropped into its
//! directory, each dialing a sipp callee that plays a captured 720p30 H.264 + PCMU call,
//! publishing AAC to nginx-rtmp) against one ffmpeg receiver per stream doing the same job, in
//! the same run, then sipcast alone at higher counts.
//!
//! `cargo bench --bench daemon_vs_ffmpeg -- --streams 1,10,50 --alone 200,400 --seconds 30`
//! (the defaults; `--alone none` skips the sipcast-only rows; `--keep-pcap FILE` saves the
//! captured input for `instructions_per_packet --pcap FILE`). One row per side and count: CPU seconds per stream-minute of the daemon
//! (ffmpeg: the sum of its receivers), peak RSS and private memory per stream, RTP packets
//! lost (the daemon's status API), the CPU share of the source feeding the side (sipp, or the
//! ffmpeg senders), the 1-minute load average, and how many of nginx's recordings are intact
//! ([`verdict`]). Any damaged recording prints `BROKEN` and fails the program.
//!
//! A program that prints figures, not a test: `cargo test --benches` builds it and, without the
//! `--bench` flag `cargo bench` passes, it only says how to run it.

// The crate root is this file, so its modules are named by path.
#[path = "daemon_vs_ffmpeg/capture.rs"]
mod capture;
#[path = "daemon_vs_ffmpeg/daemon.rs"]
mod daemon;
#[path = "common/ffmpeg_side.rs"]
mod ffmpeg_side;
#[path = "common/host.rs"]
mod host;
#[path = "common/measure.rs"]
#[allow(dead_code)] // shared with pipeline_vs_ffmpeg, which reads the rest
mod measure;
#[path = "common/nginx.rs"]
mod nginx;
#[path = "common/peers.rs"]
#[allow(dead_code)] // shared with pipeline_vs_ffmpeg, which reads the rest
mod peers;
#[path = "common/side.rs"]
#[allow(dead_code)] // shared with pipeline_vs_ffmpeg, which reads the rest
mod side;
#[path = "../tests/peers/tone.rs"]
#[allow(dead_code)] // the bench uses its Goertzel filter only
mod tone;
#[path = "daemon_vs_ffmpeg/verdict.rs"]
mod verdict;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use daemon::Packets;
use nginx::Nginx;
use peers::{SourceFormat, make_source, require};
use side::{Fallible, LOOPBACK, Setup, SideResult, kb_to_mb};
use verdict::Expected;

/// The input: 720p30 H.264 Constrained Baseline at ~2 Mbit/s with a keyframe every 2 s, as
/// every recording must show it.
const EXPECTED: Expected = Expected {
    width: 1280,
    height: 720,
    fps: 30,
    video_kbps: 2000,
};

fn main() -> ExitCode {
    side::bench_main(
        "daemon_vs_ffmpeg",
        "--streams 1,10,50 --alone 200,400 --seconds 30",
        |args| async move { run(parse_args(&args)?).await },
    )
}

struct Options {
    /// Counts run on both sides.
    streams: Vec<usize>,
    /// Counts run by sipcast alone.
    alone: Vec<usize>,
    seconds: u64,
    /// Where to save the captured pcap (for `instructions_per_packet --pcap`).
    keep_pcap: Option<std::path::PathBuf>,
}

fn parse_args(args: &[String]) -> Fallible<Options> {
    let mut options = Options {
        streams: vec![1, 10, 50],
        alone: vec![200, 400],
        seconds: 30,
        keep_pcap: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut list = |name: &str| -> Fallible<Vec<usize>> {
            let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            if value == "none" {
                return Ok(vec![]);
            }
            value
                .split(',')
                .map(|n| n.trim().parse().ok().filter(|n| *n > 0))
                .collect::<Option<Vec<usize>>>()
                .ok_or_else(|| format!("{name} needs positive numbers like 1,10,50 (or none)"))
        };
        match arg.as_str() {
            "--streams" => options.streams = list("--streams")?,
            "--alone" => options.alone = list("--alone")?,
            "--seconds" => {
                options.seconds = list("--seconds")?
                    .first()
                    .map(|n| *n as u64)
                    .ok_or("--seconds needs a positive number")?
            }
            "--keep-pcap" => {
                options.keep_pcap = Some(args.next().ok_or("--keep-pcap needs a file")?.into())
            }
            "--bench" => {}
            other => {
                return Err(format!(
                    "unknown argument {other:?} \
                     (--streams N,N --alone N,N --seconds S --keep-pcap FILE)"
                ));
            }
        }
    }
    Ok(options)
}

async fn run(options: Options) -> Fallible<()> {
    for program in ["ffmpeg", "ffprobe", "nginx", "sipp"] {
        require(program)?;
    }
    if !host::sipp_can_play_pcaps() {
        return Err("sipp's play_pcap_audio needs CAP_NET_RAW: run the benchmark as root".into());
    }
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let outcome = compare(&options, dir.path()).await;
    outcome.map_err(|e| {
        // The logs the error points to live there.
        let kept = dir.keep();
        format!(
            "{e}\n(logs, specs and recordings kept in {})",
            kept.display()
        )
    })
}

/// One row of the table.
struct Row {
    result: SideResult,
    /// sipcast only: from the daemon's status API.
    packets: Option<Packets>,
    intact: usize,
}

async fn compare(options: &Options, dir: &Path) -> Fallible<()> {
    let window = Duration::from_secs(options.seconds);
    let most = options.streams.iter().chain(&options.alone).max().copied();
    // Long enough for the slowest start, the warm-up and the window: sipp plays it once.
    let start_margin = 20 + most.unwrap_or(0) / 10;
    let format = SourceFormat {
        pattern: "testsrc2",
        preset: "veryfast",
        size: "1280x720",
        fps: EXPECTED.fps,
        gop: 2 * EXPECTED.fps,
        video_kbps: EXPECTED.video_kbps,
        seconds: (options.seconds + measure::warm_up_seconds()) as u32 + start_margin as u32,
    };
    eprintln!(
        "making the {} s source and capturing it as a pcap (real time)",
        format.seconds
    );
    let source = make_source(dir, &format)?;
    let (pcap, pcap_packets) = capture::capture_pcap(&source, dir)?;
    if let Some(keep) = &options.keep_pcap {
        std::fs::copy(&pcap, keep).map_err(|e| format!("{}: {e}", keep.display()))?;
    }
    let source_kbps =
        std::fs::metadata(&source).map_or(0, |m| m.len()) * 8 / 1000 / u64::from(format.seconds);

    let mut rows = Vec::new();
    let mut broken = Vec::new();
    // The reference's own damaged recordings: reported, not fatal (they say nothing of ours).
    let mut reference = Vec::new();
    let runs = options
        .streams
        .iter()
        .flat_map(|&n| [(n, true), (n, false)])
        .chain(options.alone.iter().map(|&n| (n, true)));
    for (streams, sipcast) in runs {
        let label = if sipcast { "sipcast" } else { "ffmpeg" };
        eprintln!("{label}: {streams} streams");
        let row_dir = dir.join(format!("{label}-{streams}"));
        std::fs::create_dir_all(&row_dir).map_err(|e| format!("{}: {e}", row_dir.display()))?;
        let nginx = Nginx::start(&row_dir, true)?;
        let setup = Setup {
            streams,
            window,
            source: &source,
            nginx: &nginx,
            dir: &row_dir,
        };
        let (result, packets) = if sipcast {
            let (result, packets) = daemon::run(&setup, &pcap).await?;
            (result, Some(packets))
        } else {
            (ffmpeg_side::run(&setup).await?, None)
        };
        // nginx closes a recording when its publisher goes.
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(nginx);
        let mut intact = 0;
        for (name, verdict) in judge_all(&row_dir, &result.names) {
            match verdict {
                Ok(()) => intact += 1,
                Err(e) => {
                    let line = format!("{label} {name}: recording damaged: {e}");
                    if sipcast { &mut broken } else { &mut reference }.push(line);
                }
            }
        }
        let failed = result.broken.iter().map(|b| format!("{label} {b}"));
        if sipcast { &mut broken } else { &mut reference }.extend(failed);
        // The recordings are large: once all are judged intact, only the verdict is kept.
        if intact == result.names.len() {
            let _ = std::fs::remove_dir_all(Nginx::recordings(&row_dir));
        }
        rows.push(Row {
            result,
            packets,
            intact,
        });
    }

    print_report(options, &rows, source_kbps, pcap_packets);
    if !reference.is_empty() {
        println!();
        println!("the reference's own damaged recordings (not ours; the run still counts):");
        for line in &reference {
            println!("  {line}");
        }
    }
    if !broken.is_empty() {
        let broken = broken.join("\n  ");
        return Err(format!(
            "BROKEN, the figures above do not count:\n  {broken}"
        ));
    }
    Ok(())
}

/// Every stream's recording judged, as many at once as there are cores.
fn judge_all(row_dir: &Path, names: &[String]) -> Vec<(String, Result<(), String>)> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = names.len().div_ceil(workers).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = names
            .chunks(chunk)
            .map(|names| {
                scope.spawn(move || {
                    names
                        .iter()
                        .map(|name| {
                            let files = Nginx::recordings_in(row_dir, name);
                            let verdict = match files.as_slice() {
                                [file] => verdict::judge(file, &EXPECTED),
                                files => Err(format!("{} recordings, not one", files.len())),
                            };
                            (name.clone(), verdict)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
}

fn print_report(options: &Options, rows: &[Row], source_kbps: u64, pcap_packets: usize) {
    println!();
    println!(
        "daemon_vs_ffmpeg: {} s measured per row after a {} s warm-up, rows one after the other",
        options.seconds,
        measure::warm_up_seconds()
    );
    let Expected {
        width, height, fps, ..
    } = EXPECTED;
    println!(
        "input: H.264 Constrained Baseline {width}x{height}@{fps} (keyframe every 2 s) + 440 Hz \
         PCMU, {source_kbps} kbit/s; sipcast: `sipcast run` with one spec per stream, one sipp \
         callee playing a {pcap_packets}-packet pcap to every call; ffmpeg: one sender and one \
         receiver per stream"
    );
    println!(
        "output: H.264 copied + AAC-LC 48 kHz mono 64 kbit/s to nginx-rtmp, every stream \
         recorded and checked; machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!(
        "| N | side | CPU s per stream-minute | of it in the kernel | ffmpeg ÷ sipcast | peak RSS MB per stream | \
         private MB per stream | RTP packets lost | source CPU (% of a core) | load average \
         (1 min) | recordings intact |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for row in rows {
        let r = &row.result;
        let ratio = (r.label == "ffmpeg")
            .then(|| {
                rows.iter()
                    .find(|s| s.result.label == "sipcast" && s.result.streams == r.streams)
            })
            .flatten()
            .map(|s| {
                let times = r.cpu_per_stream_minute() / s.result.cpu_per_stream_minute();
                format!("{times:.1}×")
            })
            .unwrap_or_default();
        let lost = row
            .packets
            .map_or("–".into(), |p| format!("{} of {}", p.lost, p.received));
        println!(
            "| {} | {} | {:.3} | {:.0} % | {ratio} | {:.1} | {:.2} | {lost} | {:.0} % | {:.2} | {}/{} |",
            r.streams,
            r.label,
            r.cpu_per_stream_minute(),
            r.kernel_percent(),
            r.peak_rss_mb_per_stream(),
            r.private_mb_per_stream(),
            r.source_cpu_percent(),
            r.window.load_average,
            row.intact,
            r.streams
        );
    }
    println!();
    println!(
        "(sipcast: the daemon process's CPU and memory over all its streams, its fixed cost \
         charged to them; ffmpeg: the sum over its receivers. Source: sipp's CPU, or the ffmpeg \
         senders'; not counted in either side. Recording intact: H.264 {width}x{height} + \
         AAC, keyframe first, timestamps monotonic, the caller's video throughout (not the \
         slate), decodes without an error, the 440 Hz tone present.)"
    );
    let peak = rows
        .iter()
        .filter(|r| r.result.label == "sipcast")
        .max_by_key(|r| r.result.streams);
    if let Some(row) = peak {
        println!(
            "(sipcast at {} streams: peak RSS {:.0} MB in all)",
            row.result.streams,
            kb_to_mb(row.result.window.peak_rss_kb)
        );
    }
}
