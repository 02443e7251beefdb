//! `sipcast probe [--timeout DURATION] FILE`: the preflight checklist of one spec.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::probe::{self, Check, ProbeOptions, Report};

pub fn main(file: &Path, timeout: Duration) -> ExitCode {
    let spec = match crate::spec::load(file) {
        Ok(spec) => spec,
        Err(errors) => {
            // The same `FILE:LINE:COL: message` lines as `validate`, as red checklist lines.
            let report = Report {
                checks: errors
                    .0
                    .iter()
                    .map(|e| Check::fail("spec", e.to_string()))
                    .collect(),
            };
            print!("{}", probe::report::render(&report));
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = ProbeOptions {
        timeout,
        ..ProbeOptions::default()
    };
    let now = crate::clock::WallClock::System.now();
    let mut report = runtime.block_on(probe::run(&spec, &options, now));
    let mut valid = format!("{} is valid", file.display());
    if !spec.enabled {
        valid.push_str(" (enabled = false: the daemon keeps it idle)");
    }
    report.checks.insert(0, Check::ok("spec", valid));
    print!("{}", probe::report::render(&report));
    if report.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
