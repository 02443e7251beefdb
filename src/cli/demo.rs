//! `sipcast demo` (in progress).

use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {}

pub fn main(_args: DemoArgs) -> ExitCode {
    eprintln!("sipcast demo: not built yet");
    ExitCode::FAILURE
}
