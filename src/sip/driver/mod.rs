//! The tokio driver: one task owns the SIP sockets and every call and registration core, and
//! does only I/O — receive, route by Call-ID, send what the cores ask, sleep until their next
//! timeout. [`UserAgent`] is the handle the rest of sipcast holds.

mod engine;
#[doc(hidden)]
pub mod harness;
pub(crate) mod resolve;
mod tls;
mod transport;

pub use tls::ClientTls;

use crate::secret::SecretSource;
use crate::sip::core::CallEvent;
use crate::sip::core::dialog::Transport;
use crate::sip::core::sdp::{Direction, VideoContent};
use crate::sip::core::transaction::TimerConfig;
use crate::sip::core::{DtmfMethod, MediaEncryption};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};

/// How the daemon's SIP side is set up (one per daemon).
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Where we listen: UDP, and TCP on the same port (RFC 3261 §18: a request may come back
    /// over TCP). Tests use port 0.
    pub listen: SocketAddr,
    /// Address written in Via, Contact and SDP instead of the socket's own (NAT).
    pub public_addr: Option<IpAddr>,
    pub timers: TimerConfig,
    pub user_agent: String,
    /// Registration lifetime we ask for.
    pub register_expires: u32,
    /// CA certificates (PEM) that SIP TLS peers must chain to when the account names none;
    /// the system's when unset.
    pub tls_ca_file: Option<std::path::PathBuf>,
    /// Inbound SIP over TLS: where, and the certificate and key we present. Without it, TLS
    /// requests reach us only over the connections we opened (RFC 5923 / RFC 5626 reuse).
    pub tls_listen: Option<TlsListen>,
}

/// A TLS listener for requests peers send us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsListen {
    pub addr: SocketAddr,
    pub cert_file: std::path::PathBuf,
    pub key_file: std::path::PathBuf,
}

impl UaConfig {
    pub fn new(listen: SocketAddr) -> Self {
        UaConfig {
            listen,
            public_addr: None,
            timers: TimerConfig::default(),
            user_agent: format!("sipcast/{}", env!("CARGO_PKG_VERSION")),
            register_expires: 3600,
            tls_ca_file: None,
            tls_listen: None,
        }
    }
}

/// Our SIP identity for one broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Account {
    pub user: String,
    /// host[:port] of our address of record.
    pub domain: String,
    pub auth_user: Option<String>,
    pub password: Option<SecretSource>,
    pub register: bool,
    /// Registrar URI; default `sip:{domain}`.
    pub registrar: Option<String>,
    /// Outbound proxy URI; every request outside a dialog goes there.
    pub proxy: Option<String>,
    pub transport: Transport,
    pub display_name: Option<String>,
    /// CA file and client certificate for TLS.
    pub tls: ClientTls,
}

/// Media we receive, offered in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LocalMedia {
    pub audio_rtp_port: Option<u16>,
    pub video_rtp_port: Option<u16>,
    pub direction: Direction,
    /// The meeting video we want when there are two (people or slides).
    pub video_content: VideoContent,
    /// SRTP: offered with fresh SDES keys unless `off`.
    pub encryption: MediaEncryption,
}

/// DTMF to send after answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DtmfPlan {
    /// 0-9 * # A-D; `,` pauses 500 ms.
    pub digits: String,
    pub method: DtmfMethod,
    /// Wait after answer before the first digit.
    pub delay: Duration,
}

/// One call attempt.
#[derive(Debug, Clone)]
pub struct CallConfig {
    pub account: Account,
    /// A `sip:`/`sips:` URI, or a bare user dialed at `account.domain`.
    pub to: String,
    pub answer_timeout: Duration,
    pub local_media: LocalMedia,
    pub dtmf: DtmfPlan,
    /// The audio RTP socket (symmetric RTP): RFC 4733 events are sent from it.
    pub dtmf_rtp: Option<Arc<std::net::UdpSocket>>,
}

#[derive(Debug, thiserror::Error)]
pub enum UaError {
    #[error("cannot bind SIP socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("SIP TLS listener: {0}")]
    Tls(String),
}

/// Counters the status page may show. Everything a peer can make us drop is counted here.
#[derive(Debug, Default)]
pub struct UaStats {
    /// Malformed, oversized or unroutable messages dropped (also 2xx with a branch we never
    /// sent, and streams closed for an invalid or oversized message).
    pub dropped: AtomicU64,
    /// Requests matching nothing of ours that we answered statelessly.
    pub stray_answered: AtomicU64,
    /// Requests matching nothing of ours dropped by the rate limit.
    pub stray_rate_limited: AtomicU64,
    /// 2xx with a new To tag past the per-call fork cap.
    pub forks_refused: AtomicU64,
    /// Retransmitted 2xx not re-ACKed (too soon after the last ACK).
    pub acks_suppressed: AtomicU64,
    /// In-dialog answers (481 and the like) dropped by the rate limit.
    pub replies_suppressed: AtomicU64,
    /// Messages dropped between the TCP/TLS tasks and the engine (a queue was full), or sends
    /// refused for the connection cap.
    pub tcp_dropped: AtomicU64,
    /// Connections peers opened to us that were closed at once: past the cap of inbound
    /// connections, or past the engine's cap of open connections.
    pub connections_refused: AtomicU64,
    /// Times the SIP engine panicked and was restarted.
    pub restarts: AtomicU64,
    /// True while the engine is down (between a panic and its restart).
    pub down: AtomicBool,
}

impl UaStats {
    pub fn snapshot(&self) -> UaCounters {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        UaCounters {
            dropped: get(&self.dropped),
            stray_answered: get(&self.stray_answered),
            stray_rate_limited: get(&self.stray_rate_limited),
            forks_refused: get(&self.forks_refused),
            acks_suppressed: get(&self.acks_suppressed),
            replies_suppressed: get(&self.replies_suppressed),
            tcp_dropped: get(&self.tcp_dropped),
            connections_refused: get(&self.connections_refused),
            restarts: get(&self.restarts),
        }
    }
}

/// A snapshot of [`UaStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UaCounters {
    pub dropped: u64,
    pub stray_answered: u64,
    pub stray_rate_limited: u64,
    pub forks_refused: u64,
    pub acks_suppressed: u64,
    pub replies_suppressed: u64,
    pub tcp_dropped: u64,
    pub connections_refused: u64,
    pub restarts: u64,
}

pub(crate) enum Command {
    Dial {
        call_id: String,
        config: Box<CallConfig>,
        events: mpsc::UnboundedSender<CallEvent>,
    },
    Hangup {
        call_id: String,
        done: oneshot::Sender<()>,
    },
    Keyframe {
        call_id: String,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
    /// Makes the engine panic: tests of its supervision.
    #[cfg(test)]
    Panic,
}

/// The SIP user agent handle. Cheap to clone; the driver task stops when every handle and call
/// is gone.
#[derive(Clone)]
pub struct UserAgent {
    commands: mpsc::UnboundedSender<Command>,
    local_addr: SocketAddr,
    stats: Arc<UaStats>,
}

impl UserAgent {
    /// Binds the SIP sockets (UDP, TCP on the same port, TLS if configured) and starts the
    /// driver task.
    pub async fn bind(config: UaConfig) -> Result<UserAgent, UaError> {
        let socket = UdpSocket::bind(config.listen)
            .await
            .map_err(|source| UaError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| UaError::Bind {
            addr: config.listen,
            source,
        })?;
        let mut listeners = Vec::new();
        match TcpListener::bind(local_addr).await {
            Ok(listener) => listeners.push((listener, None)),
            // Not fatal: requests still come back over the connections we open.
            Err(err) => tracing::warn!(
                addr = %local_addr,
                %err,
                "cannot listen for SIP over TCP; requests over TCP reach us only on our own connections"
            ),
        }
        if let Some(tls) = &config.tls_listen {
            let server = tls::server_config(&tls.cert_file, &tls.key_file).map_err(UaError::Tls)?;
            let listener = TcpListener::bind(tls.addr)
                .await
                .map_err(|source| UaError::Bind {
                    addr: tls.addr,
                    source,
                })?;
            listeners.push((listener, Some(tokio_rustls::TlsAcceptor::from(server))));
        }
        let (commands, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(UaStats::default());
        engine::spawn(
            config,
            socket,
            local_addr,
            listeners,
            receiver,
            stats.clone(),
        );
        Ok(UserAgent {
            commands,
            local_addr,
            stats,
        })
    }

    /// The bound SIP address (UDP).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Messages dropped so far (malformed, oversized, unroutable).
    pub fn dropped_messages(&self) -> u64 {
        self.stats.dropped.load(Ordering::Relaxed)
    }

    /// Times the SIP engine panicked and was restarted (`sipcast_internal_restarts_total`
    /// with `task="sip"`).
    pub fn restarts(&self) -> u64 {
        self.stats.restarts.load(Ordering::Relaxed)
    }

    /// True while the SIP engine is down after a panic, until its restart (`/livez` 503).
    pub fn is_down(&self) -> bool {
        self.stats.down.load(Ordering::Relaxed)
    }

    /// Every counter at once.
    pub fn counters(&self) -> UaCounters {
        self.stats.snapshot()
    }

    /// Hangs up every call, un-REGISTERs every binding and waits until that is done (the BYEs
    /// and REGISTERs answered, or abandoned after a bounded wait of about 2.5 s). Dials after
    /// this end at once.
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Shutdown { done }).is_ok() {
            let _ = wait.await;
        }
    }

    /// Starts a call attempt. Events arrive until [`CallEvent::Ended`], the last one.
    pub fn dial(&self, config: CallConfig) -> (CallHandle, mpsc::UnboundedReceiver<CallEvent>) {
        let call_id = format!("{}@sipcast", random_call_id());
        let (events, receiver) = mpsc::unbounded_channel();
        let sent = self.commands.send(Command::Dial {
            call_id: call_id.clone(),
            config: Box::new(config),
            events: events.clone(),
        });
        if sent.is_err() {
            let _ = events.send(CallEvent::Ended(crate::sip::core::CallEnd::local(
                "SIP user agent has stopped",
            )));
        }
        let handle = CallHandle {
            call_id,
            commands: self.commands.clone(),
        };
        (handle, receiver)
    }
}

fn random_call_id() -> String {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::from_os_rng();
    crate::sip::core::random_token(&mut rng, 24)
}

/// Controls one call.
#[derive(Debug, Clone)]
pub struct CallHandle {
    call_id: String,
    commands: mpsc::UnboundedSender<Command>,
}

impl CallHandle {
    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    /// Asks the peer for a keyframe (SIP INFO picture_fast_update, RFC 5168).
    pub fn request_keyframe(&self) {
        let _ = self.commands.send(Command::Keyframe {
            call_id: self.call_id.clone(),
        });
    }

    /// BYE (or CANCEL before answer); returns once the call is over.
    pub async fn hangup(&self) {
        let (done, wait) = oneshot::channel();
        let sent = self.commands.send(Command::Hangup {
            call_id: self.call_id.clone(),
            done,
        });
        if sent.is_ok() {
            let _ = wait.await;
        }
    }
}
