//! The engine's state without any I/O: every call and registration core, routing by Call-ID,
//! stateless answers to strangers, and shutdown. Time comes in as `now`; what to put on the wire
//! comes out as [`Action`]s. The async driver ([`super::Engine`]) and the fuzz entry point
//! ([`crate::sip::driver::harness`]) both drive this same code, so a datagram takes the same
//! path in a fuzzer as in the daemon.
//!
//! Drive it: feed [`EngineState::on_datagram`] / [`EngineState::route`] /
//! [`EngineState::on_command`] / [`EngineState::fire_timers`], then call
//! [`EngineState::drain`] and carry out [`EngineState::poll_action`] until `None`, then sleep
//! until [`EngineState::next_timeout`].

use super::super::resolve::request_uri;
use super::super::{CallConfig, ClientTls, Command, UaConfig, UaStats};
use crate::sip::core::call::CallCore;
use crate::sip::core::dialog::{Transport, stateless_response};
use crate::sip::core::dns::transport_for;
use crate::sip::core::limit::TokenBucket;
use crate::sip::core::message::{Framed, SipMessage, parse_datagram};
use crate::sip::core::registration::{RegistrationCore, RegistrationState};
use crate::sip::core::{CallEnd, CallEvent, Output};
use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod start;

/// Stateless answers to requests that match nothing of ours (OPTIONS pings, stray INVITEs,
/// unknown dialogs): a steady rate and a burst. Past it, requests are dropped and counted.
const STRAY_RATE: u32 = 50;
const STRAY_BURST: u32 = 100;

/// How long a shutdown waits for CANCELs, BYEs and un-REGISTERs to be answered before it
/// abandons what is left (the README promises exit within 10 s).
pub(crate) const SHUTDOWN_WAIT: Duration = Duration::from_millis(2500);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hop {
    pub addr: SocketAddr,
    pub transport: Transport,
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

/// What the driver must do.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send bytes to a hop, opening a TCP/TLS connection if needed.
    Send(Hop, Bytes),
    /// Answer on the transport the request came in on; never opens a connection.
    Reply(Hop, Bytes),
    /// The registrar's keep-alive interval for the connection to a hop (RFC 5626 Flow-Timer).
    FlowTimer(Hop, Duration),
    /// Resolve the next hops of a dial; the answer comes back through
    /// [`EngineState::on_resolved`].
    Resolve {
        call_id: String,
        call_host: String,
        registrar_host: Option<String>,
        transport: Transport,
    },
}

pub(crate) struct PendingDial {
    config: Box<CallConfig>,
    events: mpsc::UnboundedSender<CallEvent>,
    waiters: Vec<oneshot::Sender<()>>,
}

struct CallSlot {
    core: CallCore,
    events: mpsc::UnboundedSender<CallEvent>,
    hop: Hop,
    rtp: Option<Arc<std::net::UdpSocket>>,
    waiters: Vec<oneshot::Sender<()>>,
    registration: Option<RegKey>,
    ended: bool,
    /// The account's TLS settings, for connections to `hop`.
    tls: ClientTls,
}

type RegKey = (String, String, String, Transport);

struct RegSlot {
    core: RegistrationCore,
    hop: Hop,
    users: Vec<String>,
    /// Calls waiting for the first successful REGISTER: (call id, dial, call hop).
    waiting: Vec<(String, PendingDial, Hop)>,
    tls: ClientTls,
}

pub(crate) struct EngineState {
    config: UaConfig,
    local_addr: SocketAddr,
    stats: Arc<UaStats>,
    dials: HashMap<String, PendingDial>,
    calls: HashMap<String, CallSlot>,
    registrations: HashMap<RegKey, RegSlot>,
    /// Set once shutdown began: who waits for it to finish.
    stopping: Option<Vec<oneshot::Sender<()>>>,
    /// When a shutdown stops waiting for peers.
    shutdown_deadline: Option<Instant>,
    stray_limit: TokenBucket,
    rng: StdRng,
    actions: VecDeque<Action>,
}

impl EngineState {
    pub(crate) fn new(config: UaConfig, local_addr: SocketAddr, stats: Arc<UaStats>) -> Self {
        EngineState {
            config,
            local_addr,
            stats,
            dials: HashMap::new(),
            calls: HashMap::new(),
            registrations: HashMap::new(),
            stopping: None,
            shutdown_deadline: None,
            stray_limit: TokenBucket::new(STRAY_RATE, STRAY_BURST),
            rng: StdRng::from_os_rng(),
            actions: VecDeque::new(),
        }
    }

    /// A fixed random seed (fuzzing: the same input takes the same path).
    pub(crate) fn seed(&mut self, seed: u64) {
        self.rng = StdRng::seed_from_u64(seed);
    }

    pub(crate) fn config(&self) -> &UaConfig {
        &self.config
    }

    /// The TLS settings of the account whose call or registration goes to `addr`.
    pub(crate) fn tls_settings(&self, addr: SocketAddr) -> ClientTls {
        self.calls
            .values()
            .filter(|c| c.hop.addr == addr)
            .map(|c| &c.tls)
            .chain(
                self.registrations
                    .values()
                    .filter(|r| r.hop.addr == addr)
                    .map(|r| &r.tls),
            )
            .next()
            .cloned()
            .unwrap_or_default()
    }

    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.calls.is_empty() && self.dials.is_empty() && self.registrations.is_empty()
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// Tells whoever waits for the shutdown that it is done.
    pub(crate) fn finish_shutdown(&mut self) {
        for done in self.stopping.take().unwrap_or_default() {
            let _ = done.send(());
        }
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.calls
            .values()
            .filter_map(|c| c.core.poll_timeout())
            .chain(
                self.registrations
                    .values()
                    .filter_map(|r| r.core.poll_timeout()),
            )
            .chain(self.shutdown_deadline)
            .min()
    }

    pub(crate) fn fire_timers(&mut self, now: Instant) {
        if self.shutdown_deadline.is_some_and(|d| d <= now) {
            self.shutdown_deadline = None;
            self.abandon_all(now);
        }
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

    /// Past the shutdown deadline: every call and registration ends without waiting for peers.
    fn abandon_all(&mut self, _now: Instant) {
        for slot in self.calls.values_mut() {
            slot.core.abandon("SIP user agent is shutting down");
        }
        for slot in self.registrations.values_mut() {
            slot.core.abandon();
            for (_, dial, _) in slot.waiting.drain(..) {
                finish(dial, CallEnd::local("SIP user agent is shutting down"));
            }
        }
    }

    /// Hangs up every call and removes every registration; the engine ends when all are done,
    /// or at the deadline.
    pub(crate) fn begin_shutdown(&mut self, now: Instant, done: Option<oneshot::Sender<()>>) {
        self.stopping.get_or_insert_with(Vec::new).extend(done);
        self.shutdown_deadline.get_or_insert(now + SHUTDOWN_WAIT);
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

    /// After the engine panicked: every call, dial and waiter learns that its attempt is over
    /// (the broadcasts redial on the restarted engine). Touches only the channels, not the cores,
    /// whose state the panic may have left half-changed.
    pub(crate) fn fail_all(&mut self, reason: &str) {
        for (_, slot) in self.calls.drain() {
            if !slot.ended {
                let _ = slot.events.send(CallEvent::Ended(CallEnd::local(reason)));
            }
            for waiter in slot.waiters {
                let _ = waiter.send(());
            }
        }
        for (_, dial) in self.dials.drain() {
            finish(dial, CallEnd::local(reason));
        }
        for (_, mut slot) in self.registrations.drain() {
            for (_, dial, _) in slot.waiting.drain(..) {
                finish(dial, CallEnd::local(reason));
            }
        }
        self.finish_shutdown();
    }

    pub(crate) fn on_command(&mut self, now: Instant, command: Command) {
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
            Command::Hangup { call_id, done } => self.hangup(now, call_id, done),
            Command::Shutdown { done } => self.begin_shutdown(now, Some(done)),
            #[cfg(test)]
            Command::Panic => panic!("a panic injected by a test"),
            Command::Keyframe { call_id } => {
                if let Some(slot) = self.calls.get_mut(&call_id) {
                    slot.core.request_keyframe(now);
                }
            }
        }
    }

    fn hangup(&mut self, now: Instant, call_id: String, done: oneshot::Sender<()>) {
        if let Some(slot) = self.calls.get_mut(&call_id) {
            slot.waiters.push(done);
            slot.core.hangup(now);
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

    /// Asks the driver to resolve the next hops; the call starts on [`Self::on_resolved`].
    fn dial(
        &mut self,
        call_id: String,
        mut config: Box<CallConfig>,
        events: mpsc::UnboundedSender<CallEvent>,
    ) {
        let target = request_uri(&config.to, &config.account.domain);
        let call_host = config
            .account
            .proxy
            .clone()
            .unwrap_or_else(|| target.clone());
        // A `sips:` next hop (or one with `;transport=`) decides the transport (RFC 3263 §4.1).
        config.account.transport = transport_for(&call_host, config.account.transport);
        let account = &config.account;
        let registrar_host = account.register.then(|| {
            account
                .registrar
                .clone()
                .or_else(|| account.proxy.clone())
                .unwrap_or_else(|| format!("sip:{}", account.domain))
        });
        self.actions.push_back(Action::Resolve {
            call_id: call_id.clone(),
            call_host,
            registrar_host,
            transport: account.transport,
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

    /// The next hops of a dial are known (or not).
    pub(crate) fn on_resolved(
        &mut self,
        now: Instant,
        call_id: &str,
        call_hop: Result<SocketAddr, String>,
        registrar_hop: Option<Result<SocketAddr, String>>,
    ) {
        let Some(dial) = self.dials.remove(call_id) else {
            return;
        };
        let transport = dial.config.account.transport;
        let call_hop = match call_hop {
            Ok(addr) => Hop { addr, transport },
            Err(err) => return finish(dial, CallEnd::local(err)),
        };
        match registrar_hop {
            None => self.start_call(now, call_id.to_string(), dial, call_hop, None),
            Some(Err(err)) => finish(dial, CallEnd::local(err)),
            Some(Ok(addr)) => self.register_then_call(
                now,
                call_id.to_string(),
                dial,
                call_hop,
                Hop { addr, transport },
            ),
        }
    }

    /// A connection-oriented transport to `peer` failed: calls over it that are not answered
    /// yet end (§8.1.3.1).
    /// Registrations over it have lost their flow (RFC 5626 §4.4): they re-register.
    pub(crate) fn on_transport_closed(&mut self, now: Instant, peer: SocketAddr, reason: &str) {
        for slot in self
            .calls
            .values_mut()
            .filter(|c| c.hop.addr == peer && c.hop.transport != Transport::Udp)
        {
            slot.core.transport_failed(now, reason);
        }
        for slot in self
            .registrations
            .values_mut()
            .filter(|r| r.hop.addr == peer && r.hop.transport != Transport::Udp)
        {
            slot.core.flow_failed(now, reason);
        }
    }

    /// One UDP datagram (or one framed stream message's bytes) from `source`.
    pub(crate) fn on_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        transport: Transport,
        data: &[u8],
    ) {
        match parse_datagram(data) {
            Ok(Framed::Message(msg, _)) => self.route(now, *msg, source, transport),
            Ok(Framed::KeepAlive(_)) => {}
            Err(err) => {
                tracing::debug!(%source, %err, "dropped SIP datagram");
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Hands a message to its call or registration, or answers it statelessly.
    pub(crate) fn route(
        &mut self,
        now: Instant,
        msg: SipMessage,
        source: SocketAddr,
        transport: Transport,
    ) {
        let call_id = msg.call_id().unwrap_or_default();
        if let Some(slot) = self.calls.get_mut(call_id) {
            slot.core.handle_message(now, msg, source);
            let flood = slot.core.take_flood_counts();
            let stats = &self.stats;
            stats
                .forks_refused
                .fetch_add(flood.forks_refused, Ordering::Relaxed);
            stats
                .acks_suppressed
                .fetch_add(flood.acks_suppressed, Ordering::Relaxed);
            stats
                .replies_suppressed
                .fetch_add(flood.replies_suppressed, Ordering::Relaxed);
            stats
                .dropped
                .fetch_add(flood.foreign_2xx, Ordering::Relaxed);
            return;
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
        if !self.stray_limit.take(now) {
            self.stats
                .stray_rate_limited
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        let tag = crate::sip::core::random_token(&mut self.rng, 10);
        let Some(resp) = stateless_response(&msg, &tag) else {
            return;
        };
        self.stats.stray_answered.fetch_add(1, Ordering::Relaxed);
        let hop = Hop {
            addr: source,
            transport,
        };
        self.actions.push_back(Action::Reply(hop, resp.to_bytes()));
    }

    /// Collects what every core has queued into actions, starts calls whose registration just
    /// succeeded and removes what has ended; repeats until nothing new starts.
    pub(crate) fn drain(&mut self, now: Instant) {
        while self.drain_once(now) {}
    }

    fn drain_once(&mut self, now: Instant) -> bool {
        let mut again = false;
        let mut started_registrations: Vec<RegKey> = Vec::new();
        let mut ended: Vec<String> = Vec::new();
        for (id, slot) in self.calls.iter_mut() {
            while let Some(output) = slot.core.poll_output() {
                match output {
                    Output::Send { to, data } => {
                        self.actions
                            .push_back(Action::Send(slot.hop.toward(to), data));
                    }
                    Output::Rtp { to, data } => {
                        if let Some(rtp) = &slot.rtp {
                            let _ = rtp.send_to(&data, to);
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
            if let Some(interval) = slot.core.take_flow_timer() {
                self.actions
                    .push_back(Action::FlowTimer(slot.hop, interval));
            }
            while let Some(output) = slot.core.poll_output() {
                match output {
                    Output::Send { to, data } => {
                        self.actions
                            .push_back(Action::Send(slot.hop.toward(to), data));
                    }
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
        again |= !started_registrations.is_empty();
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
                self.start_call(now, call_id, dial, hop, Some(key.clone()));
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
                        reg.core.unregister(now);
                        again = true;
                    }
                }
            }
        }
        self.registrations.retain(|_, r| {
            r.core.state() != RegistrationState::Done
                || !r.users.is_empty()
                || !r.waiting.is_empty()
        });
        again
    }
}

fn finish(dial: PendingDial, end: CallEnd) {
    let _ = dial.events.send(CallEvent::Ended(end));
    for waiter in dial.waiters {
        let _ = waiter.send(());
    }
}
