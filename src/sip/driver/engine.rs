//! The driver task: sockets in, cores in the middle, sockets out.

use super::resolve::{local_ip_toward, request_uri, resolve};

use super::{CallConfig, Command, UaConfig, UaStats};
use crate::sip::core::call::{CallCore, CallSetup};
use crate::sip::core::dialog::{Transport, stateless_response};
use crate::sip::core::dtmf::DtmfTiming;
use crate::sip::core::message::{Framed, SipMessage, parse_datagram};
use crate::sip::core::registration::{RegistrationCore, RegistrationSetup, RegistrationState};
use crate::sip::core::sdp::LocalMedia as SdpMedia;
use crate::sip::core::{Authenticator, CallEnd, CallEvent, Output};
use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

mod outbound;

pub(super) enum Inbound {
    Message(Box<SipMessage>, SocketAddr),
    Closed(SocketAddr, String),
    Dropped,
    Resolved {
        call_id: String,
        call_hop: Result<(SocketAddr, String), String>,
        registrar_hop: Option<Result<(SocketAddr, String), String>>,
    },
}

#[derive(Debug, Clone, Copy)]
struct Hop {
    addr: SocketAddr,
    transport: Transport,
}

impl Hop {
    /// The same transport to `to`, or this hop itself.
    fn toward(self, to: Option<SocketAddr>) -> Hop {
        Hop {
            addr: to.unwrap_or(self.addr),
            transport: self.transport,
        }
    }
}

struct PendingDial {
    config: Box<CallConfig>,
    events: mpsc::UnboundedSender<CallEvent>,
    waiters: Vec<oneshot::Sender<()>>,
}

struct CallSlot {
    core: CallCore,
    events: mpsc::UnboundedSender<CallEvent>,
    hop: Hop,
    rtp: Option<Arc<UdpSocket>>,
    waiters: Vec<oneshot::Sender<()>>,
    registration: Option<RegKey>,
    ended: bool,
}

type RegKey = (String, String, String, Transport);

struct RegSlot {
    core: RegistrationCore,
    hop: Hop,
    users: Vec<String>,
    /// Calls waiting for the first successful REGISTER: (call id, dial, call hop).
    waiting: Vec<(String, PendingDial, Hop)>,
}

struct Engine {
    config: UaConfig,
    udp: Arc<UdpSocket>,
    local_addr: SocketAddr,
    commands: mpsc::UnboundedReceiver<Command>,
    inbound_tx: mpsc::UnboundedSender<Inbound>,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    stats: Arc<UaStats>,
    dials: HashMap<String, PendingDial>,
    calls: HashMap<String, CallSlot>,
    registrations: HashMap<RegKey, RegSlot>,
    tcp: HashMap<SocketAddr, mpsc::UnboundedSender<Bytes>>,
    /// The name a TLS peer's certificate must carry, by address (from the URI we resolved).
    tls_names: HashMap<SocketAddr, String>,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// Set once shutdown began: who waits for it to finish.
    stopping: Option<Vec<oneshot::Sender<()>>>,
    rng: StdRng,
}

pub(super) fn spawn(
    config: UaConfig,
    socket: UdpSocket,
    local_addr: SocketAddr,
    commands: mpsc::UnboundedReceiver<Command>,
    stats: Arc<UaStats>,
) {
    let (inbound_tx, inbound) = mpsc::unbounded_channel();
    let engine = Engine {
        config,
        udp: Arc::new(socket),
        local_addr,
        commands,
        inbound_tx,
        inbound,
        stats,
        dials: HashMap::new(),
        calls: HashMap::new(),
        registrations: HashMap::new(),
        tcp: HashMap::new(),
        tls_names: HashMap::new(),
        tls: None,
        stopping: None,
        rng: StdRng::from_os_rng(),
    };
    tokio::spawn(engine.run());
}

fn now() -> Instant {
    crate::clock::monotonic().into_std()
}

impl Engine {
    async fn run(mut self) {
        let mut buf = vec![0u8; 65_536];
        let mut accepting_commands = true;
        loop {
            self.flush().await;
            let idle =
                self.calls.is_empty() && self.dials.is_empty() && self.registrations.is_empty();
            if idle && (!accepting_commands || self.stopping.is_some()) {
                for done in self.stopping.take().unwrap_or_default() {
                    let _ = done.send(());
                }
                return;
            }
            let deadline = self.next_timeout();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.udp.recv_from(&mut buf) => {
                    if let Ok((len, source)) = received {
                        match parse_datagram(&buf[..len]) {
                            Ok(Framed::Message(msg, _)) => self.route(*msg, source, Transport::Udp),
                            Ok(Framed::KeepAlive(_)) => {}
                            Err(err) => {
                                tracing::debug!(%source, %err, "dropped SIP datagram");
                                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                Some(inbound) = self.inbound.recv() => self.on_inbound(inbound),
                command = self.commands.recv(), if accepting_commands => match command {
                    Some(command) => self.on_command(command),
                    None => {
                        accepting_commands = false;
                        self.begin_shutdown(None);
                    }
                },
                _ = sleep => {}
            }
            self.fire_timers();
        }
    }

    fn next_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| c.core.poll_timeout())
            .chain(
                self.registrations
                    .values()
                    .filter_map(|r| r.core.poll_timeout()),
            )
            .min()
    }

    fn fire_timers(&mut self) {
        let now = now();
        for slot in self.calls.values_mut() {
            if slot.core.poll_timeout().is_some_and(|t| t <= now) {
                slot.core.handle_timeout(now);
            }
        }
        for slot in self.registrations.values_mut() {
            if slot.core.poll_timeout().is_some_and(|t| t <= now) {
                slot.core.handle_timeout(now);
            }
        }
    }

    /// Hangs up every call and removes every registration; the task ends when all are done.
    fn begin_shutdown(&mut self, done: Option<oneshot::Sender<()>>) {
        let now = now();
        self.stopping.get_or_insert_with(Vec::new).extend(done);
        for slot in self.calls.values_mut() {
            slot.core.hangup(now);
        }
        for (_, dial) in self.dials.drain() {
            finish(dial, CallEnd::local("SIP user agent is shutting down"));
        }
        for slot in self.registrations.values_mut() {
            for (_, dial, _) in slot.waiting.drain(..) {
                finish(dial, CallEnd::local("SIP user agent is shutting down"));
            }
            if slot.users.is_empty() {
                slot.core.unregister(now);
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial { config, events, .. } if self.stopping.is_some() => {
                let dial = PendingDial {
                    config,
                    events,
                    waiters: Vec::new(),
                };
                finish(dial, CallEnd::local("SIP user agent is shutting down"));
            }
            Command::Dial {
                call_id,
                config,
                events,
            } => self.dial(call_id, config, events),
            Command::Hangup { call_id, done } => {
                if let Some(slot) = self.calls.get_mut(&call_id) {
                    slot.waiters.push(done);
                    slot.core.hangup(now());
                } else if let Some(dial) = self.dials.remove(&call_id) {
                    let _ = dial
                        .events
                        .send(CallEvent::Ended(CallEnd::local("hung up")));
                    let _ = done.send(());
                } else if let Some(reg) = self
                    .registrations
                    .values_mut()
                    .find(|r| r.waiting.iter().any(|w| w.0 == call_id))
                {
                    reg.waiting.retain(|(id, dial, _)| {
                        if *id == call_id {
                            let _ = dial
                                .events
                                .send(CallEvent::Ended(CallEnd::local("hung up")));
                        }
                        *id != call_id
                    });
                    let _ = done.send(());
                } else {
                    let _ = done.send(());
                }
            }
            Command::Shutdown { done } => self.begin_shutdown(Some(done)),
            Command::Keyframe { call_id } => {
                if let Some(slot) = self.calls.get_mut(&call_id) {
                    slot.core.request_keyframe(now());
                }
            }
        }
    }

    /// Resolves the next hops in the background; the call starts on [`Inbound::Resolved`].
    fn dial(
        &mut self,
        call_id: String,
        config: Box<CallConfig>,
        events: mpsc::UnboundedSender<CallEvent>,
    ) {
        let account = &config.account;
        let target = request_uri(&config.to, &account.domain);
        let call_host = account.proxy.clone().unwrap_or_else(|| target.clone());
        let registrar_host = account.register.then(|| {
            account
                .registrar
                .clone()
                .or_else(|| account.proxy.clone())
                .unwrap_or_else(|| format!("sip:{}", account.domain))
        });
        let transport = account.transport;
        let inbound = self.inbound_tx.clone();
        let id = call_id.clone();
        tokio::spawn(async move {
            let call_hop = resolve(&call_host, transport).await;
            let registrar_hop = match registrar_host {
                Some(host) => Some(resolve(&host, transport).await),
                None => None,
            };
            let _ = inbound.send(Inbound::Resolved {
                call_id: id,
                call_hop,
                registrar_hop,
            });
        });
        self.dials.insert(
            call_id,
            PendingDial {
                config,
                events,
                waiters: Vec::new(),
            },
        );
    }

    fn on_inbound(&mut self, inbound: Inbound) {
        match inbound {
            Inbound::Message(msg, source) => self.route(*msg, source, Transport::Tcp),
            Inbound::Closed(peer, reason) => {
                self.tcp.remove(&peer);
                let now = now();
                for slot in self
                    .calls
                    .values_mut()
                    .filter(|c| c.hop.addr == peer && c.hop.transport != Transport::Udp)
                {
                    slot.core.transport_failed(now, &reason);
                }
            }
            Inbound::Dropped => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Inbound::Resolved {
                call_id,
                call_hop,
                registrar_hop,
            } => {
                let Some(dial) = self.dials.remove(&call_id) else {
                    return;
                };
                let transport = dial.config.account.transport;
                let call_hop = match call_hop {
                    Ok((addr, name)) => {
                        self.tls_names.insert(addr, name);
                        Hop { addr, transport }
                    }
                    Err(err) => return finish(dial, CallEnd::local(err)),
                };
                match registrar_hop {
                    None => self.start_call(call_id, dial, call_hop, None),
                    Some(Err(err)) => finish(dial, CallEnd::local(err)),
                    Some(Ok((addr, name))) => {
                        self.tls_names.insert(addr, name);
                        self.register_then_call(call_id, dial, call_hop, Hop { addr, transport })
                    }
                }
            }
        }
    }

    fn register_then_call(
        &mut self,
        call_id: String,
        dial: PendingDial,
        call_hop: Hop,
        reg_hop: Hop,
    ) {
        let account = &dial.config.account;
        let key: RegKey = (
            account.user.clone(),
            account.domain.clone(),
            account.registrar.clone().unwrap_or_default(),
            account.transport,
        );
        // A binding that failed or ended (its calls may live on) is started afresh below.
        let mut users = Vec::new();
        if let Some(slot) = self.registrations.get_mut(&key) {
            if slot.core.is_registered() {
                slot.users.push(call_id.clone());
                return self.start_call(call_id, dial, call_hop, Some(key));
            }
            if slot.core.state() == RegistrationState::Registering {
                let _ = dial.events.send(CallEvent::Registering);
                slot.waiting.push((call_id, dial, call_hop));
                return;
            }
            users = std::mem::take(&mut slot.users);
        }
        let local = self.local_party(account, reg_hop);
        let registrar = account
            .registrar
            .clone()
            .unwrap_or_else(|| format!("sip:{}", account.domain));
        let setup = RegistrationSetup {
            local,
            registrar,
            expires: self.config.register_expires,
            timers: self.config.timers,
        };
        let auth = Authenticator::new(
            account
                .auth_user
                .clone()
                .unwrap_or_else(|| account.user.clone()),
            account.password.clone(),
        );
        let rng = StdRng::from_rng(&mut self.rng);
        let core = RegistrationCore::new(setup, auth, rng, now());
        self.registrations.insert(
            key,
            RegSlot {
                core,
                hop: reg_hop,
                users,
                waiting: vec![(call_id, dial, call_hop)],
            },
        );
    }

    fn start_call(
        &mut self,
        call_id: String,
        dial: PendingDial,
        hop: Hop,
        registration: Option<RegKey>,
    ) {
        let PendingDial {
            config,
            events,
            waiters,
        } = dial;
        let local = self.local_party(&config.account, hop);
        let address = self
            .config
            .public_addr
            .unwrap_or_else(|| local_ip_toward(self.local_addr, hop.addr));
        let setup = CallSetup {
            call_id: call_id.clone(),
            local,
            target: request_uri(&config.to, &config.account.domain),
            media: SdpMedia {
                address,
                audio_rtp_port: config.local_media.audio_rtp_port,
                video_rtp_port: config.local_media.video_rtp_port,
                direction: config.local_media.direction,
            },
            answer_timeout: config.answer_timeout,
            dtmf_digits: config.dtmf.digits.clone(),
            dtmf_method: config.dtmf.method,
            dtmf_delay: config.dtmf.delay,
            dtmf_timing: DtmfTiming::default(),
            can_send_rtp: config.dtmf_rtp.is_some(),
            timers: self.config.timers,
        };
        let account = &config.account;
        let auth = Authenticator::new(
            account
                .auth_user
                .clone()
                .unwrap_or_else(|| account.user.clone()),
            account.password.clone(),
        );
        let core = CallCore::new(setup, auth, StdRng::from_rng(&mut self.rng), now());
        self.calls.insert(
            call_id,
            CallSlot {
                core,
                events,
                hop,
                rtp: config.dtmf_rtp.clone(),
                waiters,
                registration,
                ended: false,
            },
        );
    }

    /// Hands a message to its call or registration, or answers it statelessly.
    fn route(&mut self, msg: SipMessage, source: SocketAddr, transport: Transport) {
        let now = now();
        let call_id = msg.call_id().unwrap_or_default().to_string();
        if let Some(slot) = self.calls.get_mut(&call_id) {
            return slot.core.handle_message(now, msg, source);
        }
        if let Some(slot) = self
            .registrations
            .values_mut()
            .find(|r| r.core.call_id() == call_id)
        {
            return slot.core.handle_message(now, &msg);
        }
        if msg.status().is_some() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let tag = crate::sip::core::random_token(&mut self.rng, 10);
        let Some(resp) = stateless_response(&msg, &tag) else {
            return;
        };
        let hop = Hop {
            addr: source,
            transport,
        };
        let data = resp.to_bytes();
        let udp = self.udp.clone();
        let writer = self.tcp.get(&source).cloned();
        tokio::spawn(async move {
            match (hop.transport, writer) {
                (Transport::Udp, _) => {
                    let _ = udp.send_to(&data, hop.addr).await;
                }
                (_, Some(writer)) => {
                    let _ = writer.send(data);
                }
                (_, None) => {}
            }
        });
    }

    async fn flush(&mut self) {
        let mut sends: Vec<(Hop, Bytes)> = Vec::new();
        let mut started_registrations: Vec<RegKey> = Vec::new();
        let mut ended: Vec<String> = Vec::new();
        for (id, slot) in self.calls.iter_mut() {
            while let Some(output) = slot.core.poll_output() {
                match output {
                    Output::Send { to, data } => sends.push((slot.hop.toward(to), data)),
                    Output::Rtp { to, data } => {
                        if let Some(rtp) = &slot.rtp {
                            let _ = rtp.try_send_to(&data, to);
                        }
                    }
                    Output::Event(event) => {
                        if matches!(event, CallEvent::Ended(_)) {
                            slot.ended = true;
                        }
                        let _ = slot.events.send(event);
                    }
                }
            }
            if slot.ended && slot.core.is_ended() {
                ended.push(id.clone());
            }
        }
        for (key, slot) in self.registrations.iter_mut() {
            while let Some(output) = slot.core.poll_output() {
                match output {
                    Output::Send { to, data } => sends.push((slot.hop.toward(to), data)),
                    Output::Rtp { .. } => {}
                    Output::Event(CallEvent::Registered) => started_registrations.push(key.clone()),
                    Output::Event(CallEvent::Ended(end)) => {
                        for (_, dial, _) in slot.waiting.drain(..) {
                            finish(
                                dial,
                                CallEnd {
                                    reason: format!("registration failed: {}", end.reason),
                                    ..end.clone()
                                },
                            );
                        }
                    }
                    Output::Event(event) => {
                        for (_, dial, _) in &slot.waiting {
                            let _ = dial.events.send(event.clone());
                        }
                    }
                }
            }
        }
        for key in started_registrations {
            let Some(slot) = self.registrations.get_mut(&key) else {
                continue;
            };
            let waiting: Vec<_> = slot.waiting.drain(..).collect();
            for (call_id, dial, hop) in waiting {
                let _ = dial.events.send(CallEvent::Registered);
                if let Some(slot) = self.registrations.get_mut(&key) {
                    slot.users.push(call_id.clone());
                }
                self.start_call(call_id, dial, hop, Some(key.clone()));
            }
        }
        for id in ended {
            let Some(slot) = self.calls.remove(&id) else {
                continue;
            };
            for waiter in slot.waiters {
                let _ = waiter.send(());
            }
            if let Some(key) = slot.registration {
                if let Some(reg) = self.registrations.get_mut(&key) {
                    reg.users.retain(|u| *u != id);
                    if reg.users.is_empty() && reg.waiting.is_empty() {
                        reg.core.unregister(now());
                    }
                }
            }
        }
        self.registrations.retain(|_, r| {
            r.core.state() != RegistrationState::Done
                || !r.users.is_empty()
                || !r.waiting.is_empty()
        });
        for (hop, data) in sends {
            self.send(hop, data).await;
        }
    }
}

fn finish(dial: PendingDial, end: CallEnd) {
    let _ = dial.events.send(CallEvent::Ended(end));
    for waiter in dial.waiters {
        let _ = waiter.send(());
    }
}
