//! `sipcast run`: the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{Signal, SignalKind, signal};

use crate::call::Dialer;
use crate::call::live::{LiveDialer, MediaPorts};
use crate::clock::WallClock;
use crate::config::{DaemonConfig, PortRange};
use crate::daemon::Engine;
use crate::logging::LogFormat;
use crate::source::SourceConfig;
use crate::status::Snapshot;
use crate::systemd::Notifier;

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
    /// Log format [default: auto: journald under systemd, text otherwise].
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
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
    if let Err(e) = crate::logging::init(config.log_format) {
        eprintln!("sipcast run: {e}");
        return ExitCode::FAILURE;
    }
    crate::internal_tasks::install_panic_hook();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sipcast run: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(daemon(config));
    // Blocking helpers (DNS lookups, file reads) must not hold the exit hostage.
    runtime.shutdown_timeout(Duration::from_millis(500));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("sipcast run: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn daemon(config: DaemonConfig) -> Result<(), String> {
    // Before anything slow: a SIGHUP or SIGTERM during start-up must not kill the process.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let open_files = crate::limits::raise_open_files();
    let listener = api_listener(config.api)
        .map_err(|e| format!("cannot listen on {} for the API: {e}", config.api))?;
    let api_addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(
        dir = %config.dir.display(),
        api = %api_addr,
        version = env!("CARGO_PKG_VERSION"),
        commit = super::GIT_COMMIT,
        open_files,
        "sipcast starting"
    );
    let (dialer, ua) = live_dialer(&config).await?;
    let mut source = SourceConfig::new(&config.dir);
    source.resync = config.resync;
    let notifier = Arc::new(Notifier::from_env());
    let preview = if config.preview {
        crate::output::PreviewHub::enabled()
    } else {
        crate::output::PreviewHub::disabled()
    };
    let engine = Engine::start_with_preview(
        source,
        dialer,
        WallClock::System,
        preview,
        tick_hook(notifier.clone()),
    );
    engine.tasks.add_probe("sip", {
        let ua = ua.clone();
        move || crate::internal_tasks::TaskHealth {
            up: !ua.is_down(),
            restarts: ua.restarts(),
        }
    });
    engine.tasks.add_counters(
        "sip_refused_total",
        "SIP input the user agent dropped, refused or answered at a limited rate, by kind.",
        {
            let ua = ua.clone();
            move || {
                let c = ua.counters();
                vec![
                    ("unparsable", c.dropped),
                    ("stray_answered", c.stray_answered),
                    ("stray_rate_limited", c.stray_rate_limited),
                    ("fork_refused", c.forks_refused),
                    ("ack_suppressed", c.acks_suppressed),
                    ("reply_suppressed", c.replies_suppressed),
                    ("tcp_dropped", c.tcp_dropped),
                    ("connection_refused", c.connections_refused),
                ]
            }
        },
    );
    let app = crate::api::router_with_preview(
        engine.status.clone(),
        engine.tasks.clone(),
        engine.preview.clone(),
    );
    let limits = crate::api::ServeLimits::for_descriptor_limit(open_files);
    let server = engine.tasks.spawn_restarting("api", move || {
        let app = app.clone();
        let listener = listener.try_clone();
        async move {
            match listener.and_then(tokio::net::TcpListener::from_std) {
                Ok(listener) => crate::api::serve(listener, app, limits).await,
                Err(e) => tracing::error!("API listener unusable: {e}"),
            }
        }
    });

    let mut ready = engine.status.clone();
    let first_scan = async {
        while !ready.with(|s| s.ready) {
            if !ready.changed().await {
                break;
            }
        }
    };
    // A SIGHUP before the first scan has nothing to redo: that scan reads the directory anyway.
    let stop_before_ready = tokio::select! {
        _ = first_scan => false,
        _ = term.recv() => true,
        _ = int.recv() => true,
    };
    if !stop_before_ready {
        tracing::info!(summary = %engine.status.with(|s| s.summary()), "ready");
        notifier.ready();
        serve_signals(&engine, &notifier, &mut hup, &mut term, &mut int).await;
    }
    tracing::info!("stopping: hanging up every call");
    notifier.stopping();
    let stopped = tokio::time::timeout(
        crate::reconcile::SHUTDOWN_GRACE + Duration::from_secs(1),
        engine.shutdown(),
    )
    .await;
    if stopped.is_err() {
        tracing::error!("shutdown took too long; exiting anyway");
    }
    // Every call is down; un-REGISTER the accounts (bounded, a registrar may not answer).
    let _ = tokio::time::timeout(Duration::from_secs(3), ua.shutdown()).await;
    server.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Until SIGTERM or SIGINT: each SIGHUP rescans the directory and skips every backoff wait.
async fn serve_signals(
    engine: &Engine,
    notifier: &Notifier,
    hup: &mut Signal,
    term: &mut Signal,
    int: &mut Signal,
) {
    loop {
        tokio::select! {
            _ = hup.recv() => {
                tracing::info!("SIGHUP: rescanning and retrying now");
                notifier.reloading();
                let scans_before = engine.status.with(scans);
                engine.reload().await;
                let mut status = engine.status.clone();
                let rescanned = async {
                    while status.with(scans) == scans_before && status.changed().await {}
                };
                let _ = tokio::time::timeout(Duration::from_secs(5), rescanned).await;
                notifier.ready();
            }
            _ = term.recv() => return,
            _ = int.recv() => return,
        }
    }
}

/// The API's listening socket, with a backlog deep enough that clients beyond the connection
/// cap wait in the kernel rather than being refused.
fn api_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)?.into_std()
}

/// Directory scans applied so far, whatever their result.
fn scans(s: &Snapshot) -> u64 {
    s.reloads.values().sum()
}

/// Runs after every pass of the reconcile loop: pings the systemd watchdog at half its
/// interval and publishes a one-line STATUS= when the summary changes.
fn tick_hook(notifier: Arc<Notifier>) -> impl FnMut(&Snapshot) + Send + 'static {
    let ping_every = notifier.watchdog_interval().map(|i| i / 2);
    let mut last_ping: Option<tokio::time::Instant> = None;
    let mut last_summary = String::new();
    move |snapshot| {
        let now = crate::clock::monotonic();
        if let Some(every) = ping_every
            && last_ping.is_none_or(|at| now.duration_since(at) >= every)
        {
            notifier.watchdog();
            last_ping = Some(now);
        }
        let summary = snapshot.summary();
        if summary != last_summary {
            notifier.status(&summary);
            last_summary = summary;
        }
    }
}

/// The SIP user agent on `sip_listen`, media on the same address within `rtp_ports`.
async fn live_dialer(
    config: &DaemonConfig,
) -> Result<(Arc<dyn Dialer>, crate::sip::UserAgent), String> {
    let mut ua_config = crate::sip::UaConfig::new(config.sip_listen);
    ua_config.public_addr = config.public_address;
    ua_config.tls_listen = config.sip_tls.clone();
    let ua = crate::sip::UserAgent::bind(ua_config)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(sip = %ua.local_addr(), rtp_ports = ?config.rtp_ports, "SIP user agent listening");
    let ports = MediaPorts {
        ip: config.sip_listen.ip(),
        range: config.rtp_ports.low..=config.rtp_ports.high,
    };
    Ok((Arc::new(LiveDialer::new(ua.clone(), ports)), ua))
}
