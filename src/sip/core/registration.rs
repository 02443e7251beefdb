//! One registration binding (RFC 3261 §10): REGISTER with digest, refresh before expiry, 423
//! with Min-Expires, un-REGISTER (Expires: 0) on stop.
//!
//! The granted lifetime is our Contact's `expires` parameter in the 2xx if present, else its
//! Expires header, else what we asked for. We refresh at the lifetime minus
//! min(lifetime / 2, 60 s). Driven like every core: inputs, then drain `poll_output`.
//!
//! On TCP and TLS the binding is an RFC 5626 outbound flow: the Contact carries
//! `+sip.instance` and `reg-id`, a `Flow-Timer` in the 2xx sets how often the driver pings the
//! connection, and a failed flow ([`RegistrationCore::flow_failed`]) re-registers over a new one.

use super::dialog::{LocalParty, with_via};
use super::message::{Contacts, SipMessage};
use super::transaction::{ClientTransaction, TimerConfig, TransactionKind, TxAction};
use super::{Authenticator, CallEnd, CallEvent, Output, random_token};
use ezk_sip_types::{Method, Name};
use rand::rngs::StdRng;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// After the flow of a working binding fails, wait this long before re-registering over a new
/// connection (RFC 5626 §4.5 backs off; one short wait keeps a dead registrar from costing us a
/// connection attempt per event).
pub const FLOW_RECOVERY_DELAY: Duration = Duration::from_secs(1);

/// RFC 5626 §10.4.
const FLOW_TIMER: Name = Name::custom("Flow-Timer", &["flow-timer"]);

#[derive(Debug, Clone)]
pub struct RegistrationSetup {
    pub local: LocalParty,
    /// Request-URI of REGISTER, e.g. `sip:pbx.example.com`.
    pub registrar: String,
    /// Lifetime we ask for, seconds.
    pub expires: u32,
    pub timers: TimerConfig,
}

/// Where the binding stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrationState {
    /// Awaiting the answer to a REGISTER (first or refresh).
    Registering,
    Registered,
    Unregistering,
    /// Over: failed, or un-registered.
    Done,
}

pub struct RegistrationCore {
    setup: RegistrationSetup,
    auth: Authenticator,
    rng: StdRng,
    call_id: String,
    local_tag: String,
    cseq: u32,
    expires: u32,
    state: RegistrationState,
    registered_once: bool,
    tx: Option<ClientTransaction>,
    refresh_at: Option<Instant>,
    /// The registrar's `Flow-Timer` (RFC 5626 §5.4), not yet taken by the driver.
    flow_timer: Option<Duration>,
    outputs: VecDeque<Output>,
}

impl RegistrationCore {
    /// Sends the first REGISTER at `now`.
    pub fn new(
        setup: RegistrationSetup,
        auth: Authenticator,
        mut rng: StdRng,
        now: Instant,
    ) -> Self {
        let call_id = format!("{}@sipcast", random_token(&mut rng, 20));
        let local_tag = random_token(&mut rng, 10);
        let expires = setup.expires;
        let mut core = RegistrationCore {
            setup,
            auth,
            rng,
            call_id,
            local_tag,
            cseq: 0,
            expires,
            state: RegistrationState::Registering,
            registered_once: false,
            tx: None,
            refresh_at: None,
            flow_timer: None,
            outputs: VecDeque::new(),
        };
        core.outputs
            .push_back(Output::Event(CallEvent::Registering));
        core.send_register(now);
        core
    }

    pub fn call_id(&self) -> &str {
        &self.call_id
    }

    pub fn state(&self) -> RegistrationState {
        self.state
    }

    /// True while a binding is in place (also while it is being refreshed).
    pub fn is_registered(&self) -> bool {
        self.registered_once
            && matches!(
                self.state,
                RegistrationState::Registered | RegistrationState::Registering
            )
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tx
            .as_ref()
            .and_then(|t| t.next_timeout())
            .into_iter()
            .chain(self.refresh_at)
            .min()
    }

    /// The keep-alive interval the registrar asked for in its last 2xx, once.
    pub fn take_flow_timer(&mut self) -> Option<Duration> {
        self.flow_timer.take()
    }

    /// The connection this binding was registered over has failed (closed, reset, or its
    /// keep-alive went unanswered). A working binding re-registers over a new connection after
    /// [`FLOW_RECOVERY_DELAY`]; a REGISTER in flight fails now with `reason` rather than
    /// waiting for timer F.
    pub fn flow_failed(&mut self, now: Instant, reason: &str) {
        match self.state {
            RegistrationState::Registered => {
                self.refresh_at = Some(now + FLOW_RECOVERY_DELAY);
            }
            RegistrationState::Registering if self.tx.is_some() => {
                self.tx = None;
                self.fail(CallEnd::local(reason.to_string()));
            }
            RegistrationState::Unregistering => {
                self.tx = None;
                self.state = RegistrationState::Done;
            }
            _ => {}
        }
    }

    /// Gives up at once (a shutdown past its deadline): no more REGISTERs, nothing to wait for.
    pub fn abandon(&mut self) {
        self.tx = None;
        self.refresh_at = None;
        self.state = RegistrationState::Done;
    }

    /// Removes the binding (Expires: 0).
    pub fn unregister(&mut self, now: Instant) {
        self.refresh_at = None;
        match self.state {
            RegistrationState::Done => {}
            _ if !self.registered_once => self.state = RegistrationState::Done,
            _ => {
                self.state = RegistrationState::Unregistering;
                self.expires = 0;
                self.send_register(now);
            }
        }
    }

    fn send_register(&mut self, now: Instant) {
        self.cseq += 1;
        let local = &self.setup.local;
        let mut msg = SipMessage::request(Method::REGISTER, self.setup.registrar.clone());
        msg.push(Name::MAX_FORWARDS, "70");
        if let Some(proxy) = &local.outbound_proxy {
            msg.push(Name::ROUTE, format!("<{proxy}>"));
        }
        msg.push(Name::FROM, local.from_value(&self.local_tag));
        msg.push(Name::TO, format!("<{}>", local.aor));
        msg.push(Name::CALL_ID, self.call_id.clone());
        msg.push(Name::CSEQ, format!("{} REGISTER", self.cseq));
        msg.push(Name::CONTACT, local.register_contact(self.expires));
        if local.instance.is_some() {
            msg.push(Name::SUPPORTED, "path, outbound");
        }
        msg.push(Name::EXPIRES, self.expires.to_string());
        msg.push(Name::USER_AGENT, local.user_agent.clone());
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let mut msg = with_via(msg, local, &branch);
        self.auth.authorize(&mut msg, &mut self.rng);
        let bytes = msg.to_bytes();
        self.tx = Some(ClientTransaction::start(
            TransactionKind::NonInvite,
            branch,
            bytes.clone(),
            local.transport.is_reliable(),
            self.setup.timers,
            now,
        ));
        self.outputs.push_back(Output::Send {
            to: None,
            data: bytes,
        });
    }

    pub fn handle_message(&mut self, now: Instant, msg: &SipMessage) {
        let (Some(status), Some(branch)) = (msg.status(), msg.branch()) else {
            return;
        };
        let Some(tx) = self.tx.as_mut().filter(|t| t.branch == branch) else {
            return;
        };
        let actions = tx.on_response(now, status, bytes::Bytes::new);
        if actions.contains(&TxAction::Deliver) && status >= 200 {
            self.tx = None;
            self.on_final(now, msg, status);
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(tx) = self.tx.as_mut() {
            for action in tx.on_timeout(now) {
                match action {
                    TxAction::Send(data) => self.outputs.push_back(Output::Send { to: None, data }),
                    TxAction::TimedOut => {
                        self.tx = None;
                        self.fail(CallEnd::status(408, "no answer to REGISTER (timer F)"));
                    }
                    TxAction::Deliver => {}
                }
            }
        }
        if self.refresh_at.is_some_and(|t| t <= now) {
            self.refresh_at = None;
            self.state = RegistrationState::Registering;
            self.send_register(now);
        }
    }

    fn on_final(&mut self, now: Instant, msg: &SipMessage, status: u16) {
        if self.state == RegistrationState::Unregistering {
            if (status == 401 || status == 407) && self.auth.challenge(msg).is_ok() {
                return self.send_register(now);
            }
            self.state = RegistrationState::Done;
            return;
        }
        match status {
            200..=299 => {
                self.auth.accepted();
                let granted = self.granted_expires(msg).max(1);
                let lead = (granted / 2).min(60);
                self.refresh_at = Some(now + Duration::from_secs((granted - lead) as u64));
                self.state = RegistrationState::Registered;
                self.flow_timer = msg
                    .header(&FLOW_TIMER)
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .filter(|s| *s > 0)
                    .map(Duration::from_secs);
                if !self.registered_once {
                    self.registered_once = true;
                    self.outputs.push_back(Output::Event(CallEvent::Registered));
                }
            }
            401 | 407 => match self.auth.challenge(msg) {
                Ok(()) => self.send_register(now),
                Err(end) => self.fail(end),
            },
            423 => match msg.header_u32(&Name::MIN_EXPIRES) {
                Some(min) if min > self.expires => {
                    self.expires = min;
                    self.send_register(now);
                }
                _ => self.fail(CallEnd::from_response(msg)),
            },
            _ => self.fail(CallEnd::from_response(msg)),
        }
    }

    fn granted_expires(&self, msg: &SipMessage) -> u32 {
        let ours = match msg.contacts() {
            Contacts::List(list) => list.into_iter().find(|c| {
                let uri = super::dialog::print_uri(&c.uri.uri);
                uri == self.setup.local.contact
            }),
            Contacts::Wildcard => None,
        };
        ours.and_then(|c| c.params.get_val("expires").and_then(|v| v.parse().ok()))
            .or_else(|| msg.header_u32(&Name::EXPIRES))
            .unwrap_or(self.expires)
    }

    fn fail(&mut self, end: CallEnd) {
        self.state = RegistrationState::Done;
        self.refresh_at = None;
        self.outputs.push_back(Output::Event(CallEvent::Ended(end)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::core::call_tests::{CHALLENGE, local, parse, password};
    use crate::sip::core::dialog::response_to;
    use rand::SeedableRng;

    fn registration(now: Instant) -> (RegistrationCore, Vec<SipMessage>) {
        let setup = RegistrationSetup {
            local: local(),
            registrar: "sip:pbx.example.com".into(),
            expires: 3600,
            timers: TimerConfig::default(),
        };
        let mut core = RegistrationCore::new(
            setup,
            Authenticator::new("1001", password()),
            StdRng::seed_from_u64(3),
            now,
        );
        let sent = drain_registration(&mut core);
        (core, sent)
    }

    fn drain_registration(core: &mut RegistrationCore) -> Vec<SipMessage> {
        std::iter::from_fn(|| core.poll_output())
            .filter_map(|o| match o {
                Output::Send { data, .. } => Some(parse(&data)),
                _ => None,
            })
            .collect()
    }

    fn reply(
        core: &mut RegistrationCore,
        now: Instant,
        req: &SipMessage,
        code: u16,
        extra: &[(Name, &str)],
    ) -> Vec<SipMessage> {
        let mut resp = response_to(req, code, "Reason", Some("reg"));
        for (name, value) in extra {
            resp.push(name.clone(), value.to_string());
        }
        core.handle_message(now, &parse(&resp.to_bytes()));
        drain_registration(core)
    }

    #[test]
    fn register_401_then_200_refreshes_before_the_contacts_expiry() {
        let t0 = crate::sip::core::test_origin();
        let (mut core, sent) = registration(t0);
        let sent = reply(
            &mut core,
            t0,
            &sent[0],
            401,
            &[(Name::WWW_AUTHENTICATE, CHALLENGE)],
        );
        assert!(sent[0].header(&Name::AUTHORIZATION).is_some());
        assert_eq!(sent[0].call_id(), Some(core.call_id()));
        let binding = "<sip:1001@192.0.2.10:5060>;expires=120, <sip:other@192.0.2.99>;expires=3600";
        reply(
            &mut core,
            t0,
            &sent[0],
            200,
            &[(Name::CONTACT, binding), (Name::EXPIRES, "3600")],
        );
        assert_eq!(core.state(), RegistrationState::Registered);
        assert_eq!(
            core.poll_timeout(),
            Some(t0 + Duration::from_secs(60)),
            "120 s granted, refreshed 60 s early"
        );
        core.handle_timeout(t0 + Duration::from_secs(60));
        let refresh = drain_registration(&mut core);
        assert_eq!(refresh[0].cseq().unwrap().cseq, 3);
        assert!(
            refresh[0]
                .header(&Name::AUTHORIZATION)
                .unwrap()
                .contains("nc=00000002")
        );
    }

    #[test]
    fn outbound_binding_takes_the_flow_timer_and_recovers_from_a_failed_flow() {
        let t0 = crate::sip::core::test_origin();
        let setup = RegistrationSetup {
            local: crate::sip::core::dialog::LocalParty {
                transport: crate::sip::core::dialog::Transport::Tcp,
                contact: "sip:1001@192.0.2.10:5060;transport=tcp".into(),
                instance: Some("urn:uuid:00000000-0000-5000-8000-000000000001".into()),
                ..local()
            },
            registrar: "sip:pbx.example.com".into(),
            expires: 600,
            timers: TimerConfig::default(),
        };
        let mut core = RegistrationCore::new(
            setup,
            Authenticator::new("1001", password()),
            StdRng::seed_from_u64(3),
            t0,
        );
        let sent = drain_registration(&mut core);
        let contact = sent[0].header(&Name::CONTACT).unwrap();
        assert!(contact.contains(";+sip.instance=\"<urn:uuid:"), "{contact}");
        assert!(contact.contains(";reg-id=1"), "{contact}");
        assert_eq!(sent[0].header(&Name::SUPPORTED), Some("path, outbound"));
        assert!(sent[0].header(&Name::VIA).unwrap().ends_with(";alias"));
        reply(&mut core, t0, &sent[0], 200, &[(FLOW_TIMER, "25")]);
        assert_eq!(core.take_flow_timer(), Some(Duration::from_secs(25)));
        assert_eq!(core.take_flow_timer(), None, "taken once");

        // The flow fails: a new REGISTER goes out after the recovery delay, not at once.
        let t1 = t0 + Duration::from_secs(100);
        core.flow_failed(t1, "127.0.0.1:5060 closed the connection");
        assert_eq!(core.poll_timeout(), Some(t1 + FLOW_RECOVERY_DELAY));
        core.handle_timeout(t1 + FLOW_RECOVERY_DELAY);
        let again = drain_registration(&mut core);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].cseq().unwrap().cseq, 2);
        assert!(
            core.is_registered(),
            "the binding holds while it is renewed"
        );

        // The new connection fails too: the registration ends with the transport's reason.
        core.flow_failed(t1 + FLOW_RECOVERY_DELAY, "cannot connect to 127.0.0.1:5060");
        assert_eq!(core.state(), RegistrationState::Done);
        let ended = std::iter::from_fn(|| core.poll_output()).find_map(|o| match o {
            Output::Event(CallEvent::Ended(end)) => Some(end.reason),
            _ => None,
        });
        assert_eq!(ended.as_deref(), Some("cannot connect to 127.0.0.1:5060"));
    }

    #[test]
    fn register_423_retries_with_min_expires_and_unregister_sends_zero() {
        let t0 = crate::sip::core::test_origin();
        let (mut core, sent) = registration(t0);
        let sent = reply(&mut core, t0, &sent[0], 423, &[(Name::MIN_EXPIRES, "7200")]);
        assert_eq!(sent[0].header(&Name::EXPIRES), Some("7200"));
        reply(&mut core, t0, &sent[0], 200, &[]);
        assert!(core.is_registered());
        core.unregister(t0);
        let unreg = drain_registration(&mut core);
        assert_eq!(unreg[0].header(&Name::EXPIRES), Some("0"));
        reply(&mut core, t0, &unreg[0], 200, &[]);
        assert_eq!(core.state(), RegistrationState::Done);
    }
}
