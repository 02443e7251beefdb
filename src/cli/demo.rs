//! `sipcast demo`: a built-in test callee and RTMP receiver on 127.0.0.1, and the daemon's
//! engine dialing one and publishing to the other (see [`crate::demo`]).

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::demo::{DemoOptions, run};
use crate::spec::DtmfMethod;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Stream this many seconds, then hang up and print the summary (the call and its DTMF
    /// take about 3 s; 8 or more shows the whole chain).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Write the recording here instead of a new temporary directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// How the daemon sends the DTMF digits to the callee.
    #[arg(long, value_enum, default_value_t = DemoDtmf::Rfc4733)]
    dtmf_method: DemoDtmf,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum DemoDtmf {
    /// RTP telephone-events (RFC 4733) on the audio stream.
    Rfc4733,
    /// SIP INFO requests with `application/dtmf-relay` bodies.
    Info,
}

pub fn main(args: DemoArgs) -> ExitCode {
    // Logs stay off unless asked for: the demo's own lines tell the story.
    if std::env::var_os("RUST_LOG").is_some()
        && let Err(e) = crate::logging::init(crate::logging::LogFormat::Text)
    {
        eprintln!("sipcast demo: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipcast demo: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = DemoOptions {
        run_for: Duration::from_secs(args.seconds),
        out: args.out,
        dtmf_method: match args.dtmf_method {
            DemoDtmf::Rfc4733 => DtmfMethod::Rfc4733,
            DemoDtmf::Info => DtmfMethod::Info,
        },
    };
    let started = crate::clock::monotonic();
    let print = move |line: &str| {
        let elapsed = crate::clock::monotonic().saturating_duration_since(started);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{:>5.1}s] {line}", elapsed.as_secs_f64());
        let _ = out.flush();
    };
    let result = runtime.block_on(run(options, print));
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(summary) => {
            // A closed stdout (`| head`) must not turn a passing demo into a panic.
            let _ = writeln!(std::io::stdout().lock(), "{summary}");
            if summary.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("sipcast demo: {e}");
            ExitCode::FAILURE
        }
    }
}
