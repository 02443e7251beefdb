//! The `sipcast` command line (DESIGN.md, "Command line").

mod demo;
mod probe;
mod run;
mod schedule;
mod status;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

/// The git commit this binary was built from (set by build.rs), or `unknown`.
pub const GIT_COMMIT: &str = match option_env!("SIPCAST_GIT_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// `sysexits.h` EX_CONFIG: a spec or config file is invalid.
pub const EX_CONFIG: u8 = 78;

#[derive(Parser, Debug)]
#[command(
    name = "sipcast",
    about = "Declarative SIP-to-RTMP gateway: dials the calls described in broadcasts.d/*.toml and publishes them live",
    version = version(),
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `0.1.0 (abc1234)`. Built once per process; clap wants a `&'static str`.
fn version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| format!("{} ({GIT_COMMIT})", env!("CARGO_PKG_VERSION")))
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon.
    Run(run::RunArgs),
    /// Prove the whole chain on this machine: a built-in test callee and RTMP receiver on
    /// 127.0.0.1, the daemon dialing one and publishing to the other.
    Demo(demo::DemoArgs),
    /// Check spec files or directories exactly as the daemon would, offline.
    Validate {
        /// Also read every password/stream key file and variable the specs name.
        #[arg(long)]
        check_secrets: bool,
        /// Spec files, or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Print the JSON Schema of a spec file.
    Schema,
    /// Print the next windows of a spec's schedule, from the daemon's own evaluator.
    Schedule {
        file: PathBuf,
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Evaluate from this instant (RFC 3339) instead of now.
        #[arg(long)]
        from: Option<jiff::Timestamp>,
    },
    /// Preflight one spec without streaming: secrets, schedule, the SIP side (OPTIONS, or
    /// REGISTER with the real credentials) and a publish of each RTMP stream key (unpublished
    /// at once). Prints a checklist; exit 1 on any failure.
    Probe {
        file: PathBuf,
        /// Bound of each network step (DNS, SIP transaction, connect, RTMP setup).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Show what a running daemon reports, as a table.
    Status {
        /// Base URL of the daemon's API.
        #[arg(long, default_value = "http://127.0.0.1:8090")]
        api: String,
    },
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::main(args),
        Command::Demo(args) => demo::main(args),
        Command::Validate {
            check_secrets,
            paths,
        } => validate::main(&paths, check_secrets),
        Command::Schema => {
            print!("{}", crate::spec::schema_json());
            ExitCode::SUCCESS
        }
        Command::Schedule { file, count, from } => schedule::main(&file, count, from),
        Command::Probe { file, timeout } => probe::main(&file, timeout),
        Command::Status { api } => status::main(&api),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "sipcast",
                &mut std::io::stdout(),
            );
            ExitCode::SUCCESS
        }
    }
}
