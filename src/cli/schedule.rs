//! `sipcast schedule FILE [--count N] [--from TIME]`

use std::path::Path;
use std::process::ExitCode;

use super::EX_CONFIG;

pub fn main(file: &Path, count: usize, from: Option<jiff::Timestamp>) -> ExitCode {
    let spec = match crate::spec::load(file) {
        Ok(spec) => spec,
        Err(errors) => {
            println!("{errors}");
            return ExitCode::from(EX_CONFIG);
        }
    };
    let Some(schedule) = &spec.schedule else {
        println!(
            "{}: no [schedule]: live whenever the file exists and is enabled",
            file.display()
        );
        return ExitCode::SUCCESS;
    };
    let now = from.unwrap_or_else(|| crate::clock::WallClock::System.now());
    let tz = schedule.timezone().clone();
    let windows = schedule.windows(now, count);
    if windows.is_empty() {
        println!("no windows after {}", now.to_zoned(tz.clone()));
    }
    for window in windows {
        println!(
            "{}  {}",
            window.start.to_zoned(tz.clone()),
            window.end.to_zoned(tz.clone())
        );
    }
    ExitCode::SUCCESS
}
