//! `sipcast run`: the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{SignalKind, signal};

use crate::call::{Dialer, UnavailableDialer};
use crate::clock::WallClock;
use crate::config::{DaemonConfig, PortRange};
use crate::daemon::Engine;
use crate::source::SourceConfig;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Daemon settings file (sipcast.toml); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Directory of broadcast specs [default: ./broadcasts.d].
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Address of the read-only status API [default: 127.0.0.1:8090].
    #[arg(long)]
    api: Option<SocketAddr>,
    /// Address the SIP user agent listens on [default: 0.0.0.0:5060].
    #[arg(long)]
    sip_listen: Option<SocketAddr>,
    /// UDP ports for RTP/RTCP, LOW-HIGH [default: 16384-16999].
    #[arg(long)]
    rtp_ports: Option<PortRange>,
    /// Log format: auto, text, json or journald [default: auto].
    #[arg(long)]
    log_format: Option<String>,
}

impl RunArgs {
    fn config(self) -> Result<DaemonConfig, String> {
        let mut config = match &self.config {
            Some(path) => DaemonConfig::load(path)?,
            None => DaemonConfig::default(),
        };
        if let Some(dir) = self.dir {
            config.dir = dir;
        }
        if let Some(api) = self.api {
            config.api = api;
        }
        if let Some(listen) = self.sip_listen {
            config.sip_listen = listen;
        }
        if let Some(ports) = self.rtp_ports {
            config.rtp_ports = ports;
        }
        if let Some(format) = self.log_format {
            if !crate::config::LOG_FORMATS.contains(&format.as_str()) {
                return Err(format!(
                    "--log-format {format:?} is not one of {:?}",
                    crate::config::LOG_FORMATS
                ));
            }
            config.log_format = format;
        }
        Ok(config)
    }
}

pub fn main(args: RunArgs) -> ExitCode {
    let config = match args.config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sipcast run: {e}");
            return ExitCode::from(super::EX_CONFIG);
        }
    };
    init_logging(&config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipcast run: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sipcast run: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn daemon(config: DaemonConfig) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(config.api)
        .await
        .map_err(|e| format!("cannot listen on {} for the API: {e}", config.api))?;
    let api_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        dir = %config.dir.display(),
        api = %api_addr,
        version = env!("CARGO_PKG_VERSION"),
        commit = super::GIT_COMMIT,
        "sipcast starting"
    );
    let dialer: Arc<dyn Dialer> = Arc::new(UnavailableDialer);
    let mut source = SourceConfig::new(&config.dir);
    source.resync = config.resync;
    let engine = Engine::start(source, dialer, WallClock::System, || {});
    let app = crate::api::router(engine.status.clone());
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("API server stopped: {e}");
        }
    });

    let mut ready = engine.status.clone();
    while !ready.with(|s| s.ready) {
        if !ready.changed().await {
            break;
        }
    }
    tracing::info!(summary = %engine.status.with(|s| s.summary()), "ready");

    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: rescanning and retrying now");
                engine.reload().await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("stopping: hanging up every call");
    let stopped = tokio::time::timeout(
        crate::reconcile::SHUTDOWN_GRACE + Duration::from_secs(1),
        engine.shutdown(),
    )
    .await;
    if stopped.is_err() {
        tracing::error!("shutdown took too long; exiting anyway");
    }
    server.abort();
    tracing::info!("stopped");
    Ok(())
}

fn init_logging(format: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
