//! The driver task: sockets in, [`state::EngineState`] in the middle, sockets out; and the
//! supervisor around it. One engine serves every call of the daemon, so a panic in it must not
//! stop the broadcasts: the supervisor catches it, logs it with its location through `tracing`,
//! counts it, ends the calls in flight (their broadcasts redial) and restarts the engine with a
//! fresh state after a backoff.

mod outbound;
mod state;
mod supervise;

pub(crate) use state::{Action, EngineState, Hop};

use super::resolve::resolve;
use super::transport::Outgoing;
use super::{ClientTls, Command, UaConfig, UaStats};
use crate::sip::core::dialog::Transport;
use crate::sip::core::message::SipMessage;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Messages framed by the TCP/TLS tasks waiting for the engine. Past this, frames are dropped
/// and counted: a fast peer cannot queue unbounded work.
const FRAME_QUEUE: usize = 256;
/// How long the whole next-hop resolution of one dial may take (SRV, then A/AAAA).
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(8);

/// What the connection tasks and resolvers tell the engine. Bounded by the number of dials and
/// connections, not by what peers send (their messages go through the bounded frame queue).
pub(super) enum Control {
    Closed(SocketAddr, String),
    /// A peer opened a connection to us: what it sends comes through the frame queue, what we
    /// send it (answers, and requests of dialogs it carries) goes here.
    Accepted(SocketAddr, mpsc::Sender<Outgoing>),
    Resolved {
        call_id: String,
        call_hop: Result<(SocketAddr, String), String>,
        registrar_hop: Option<Result<(SocketAddr, String), String>>,
    },
}

/// What a connection task hands to the engine.
#[derive(Clone)]
pub(super) struct Link {
    pub frames: mpsc::Sender<(Box<SipMessage>, SocketAddr)>,
    pub control: mpsc::UnboundedSender<Control>,
    pub stats: Arc<UaStats>,
}

/// The queues between the connection tasks and the engine. They outlive a restarted engine,
/// so the listeners keep working across one.
pub(super) struct Channels {
    link: Link,
    frames: mpsc::Receiver<(Box<SipMessage>, SocketAddr)>,
    control: mpsc::UnboundedReceiver<Control>,
}

impl Channels {
    fn new(stats: Arc<UaStats>) -> Channels {
        let (frames_tx, frames) = mpsc::channel(FRAME_QUEUE);
        let (control_tx, control) = mpsc::unbounded_channel();
        Channels {
            link: Link {
                frames: frames_tx,
                control: control_tx,
                stats,
            },
            frames,
            control,
        }
    }
}

struct Engine {
    state: EngineState,
    udp: Arc<UdpSocket>,
    channels: Channels,
    tcp: HashMap<SocketAddr, mpsc::Sender<Outgoing>>,
    /// The name a TLS peer's certificate must carry, by address (from the URI we resolved).
    tls_names: HashMap<SocketAddr, String>,
    /// TLS client configurations, one per distinct account setting, built on first use.
    tls: HashMap<ClientTls, Arc<rustls::ClientConfig>>,
}

pub(super) type Listener = (tokio::net::TcpListener, Option<tokio_rustls::TlsAcceptor>);

pub(super) fn spawn(
    config: UaConfig,
    socket: UdpSocket,
    local_addr: SocketAddr,
    listeners: Vec<Listener>,
    commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<UaStats>,
) {
    supervise::install_panic_hook();
    let channels = Channels::new(stats.clone());
    for (listener, acceptor) in listeners {
        tokio::spawn(super::transport::listen(
            listener,
            acceptor,
            channels.link.clone(),
        ));
    }
    tokio::spawn(supervise::supervise(
        config,
        Arc::new(socket),
        local_addr,
        channels,
        commands,
        stats,
    ));
}

fn now() -> Instant {
    crate::clock::monotonic().into_std()
}

impl Engine {
    fn new(
        config: UaConfig,
        udp: Arc<UdpSocket>,
        local_addr: SocketAddr,
        channels: Channels,
    ) -> Engine {
        Engine {
            state: EngineState::new(config, local_addr, channels.link.stats.clone()),
            udp,
            channels,
            tcp: HashMap::new(),
            tls_names: HashMap::new(),
            tls: HashMap::new(),
        }
    }

    /// The queues, for the engine that replaces this one.
    fn into_channels(self) -> Channels {
        self.channels
    }

    /// Runs until shut down (or every handle is gone and nothing is left to finish).
    async fn run(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) {
        let mut buf = vec![0u8; 65_536];
        let mut accepting_commands = true;
        loop {
            self.state.drain(now());
            self.carry_out().await;
            if self.state.is_idle() && (!accepting_commands || self.state.is_stopping()) {
                self.state.finish_shutdown();
                return;
            }
            let deadline = self.state.next_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // Control first: a connection is announced before its first message is queued,
                // and the answer to that message must find the connection.
                biased;
                Some(control) = self.channels.control.recv() => self.on_control(control),
                received = self.udp.recv_from(&mut buf) => {
                    if let Ok((len, source)) = received {
                        let data = buf.get(..len).unwrap_or_default();
                        self.state.on_datagram(now(), source, Transport::Udp, data);
                    }
                }
                Some((msg, peer)) = self.channels.frames.recv() => {
                    self.state.route(now(), *msg, peer, Transport::Tcp);
                }
                command = commands.recv(), if accepting_commands => match command {
                    Some(command) => self.state.on_command(now(), command),
                    None => {
                        accepting_commands = false;
                        self.state.begin_shutdown(now(), None);
                    }
                },
                _ = sleep => {}
            }
            self.state.fire_timers(now());
        }
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Closed(peer, reason) => {
                // A connection task drops its queue before it reports: an open queue here
                // belongs to a newer connection to the same address, which lives on.
                if self.tcp.get(&peer).is_some_and(|w| w.is_closed()) {
                    self.tcp.remove(&peer);
                    self.state.on_transport_closed(now(), peer, &reason);
                }
            }
            Control::Accepted(peer, writer) => self.accept(peer, writer),
            Control::Resolved {
                call_id,
                call_hop,
                registrar_hop,
            } => {
                let mut remember = |hop: Result<(SocketAddr, String), String>| {
                    hop.map(|(addr, name)| {
                        self.tls_names.insert(addr, name);
                        addr
                    })
                };
                let call_hop = remember(call_hop);
                let registrar_hop = registrar_hop.map(&mut remember);
                self.state
                    .on_resolved(now(), &call_id, call_hop, registrar_hop);
            }
        }
    }

    /// Puts on the wire (or starts) what the state asked for.
    async fn carry_out(&mut self) {
        while let Some(action) = self.state.poll_action() {
            match action {
                Action::Send(hop, data) => self.send(hop, data).await,
                Action::Reply(hop, data) => self.reply(hop, data).await,
                Action::FlowTimer(hop, interval) => {
                    if let Some(writer) = self.tcp.get(&hop.addr) {
                        let _ = writer.try_send(Outgoing::FlowTimer(interval));
                    }
                }
                Action::Resolve {
                    call_id,
                    call_host,
                    registrar_host,
                    transport,
                } => {
                    let control = self.channels.link.control.clone();
                    tokio::spawn(async move {
                        let bounded = |host: String| async move {
                            tokio::time::timeout(RESOLVE_TIMEOUT, resolve(&host, transport))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(format!("cannot resolve {host}: timed out"))
                                })
                        };
                        let call_hop = bounded(call_host).await;
                        let registrar_hop = match registrar_host {
                            Some(host) => Some(bounded(host).await),
                            None => None,
                        };
                        let _ = control.send(Control::Resolved {
                            call_id,
                            call_hop,
                            registrar_hop,
                        });
                    });
                }
            }
        }
    }
}
