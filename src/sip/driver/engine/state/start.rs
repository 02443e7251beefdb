//! Starting calls and registrations once their next hops are known.

use super::super::super::resolve::{local_ip_toward, request_uri};
use super::super::super::{Account, CallConfig};
use super::{CallSlot, EngineState, Hop, PendingDial, RegKey, RegSlot};
use crate::sip::core::call::{CallCore, CallSetup};
use crate::sip::core::dialog::{LocalParty, Transport, instance_id};
use crate::sip::core::dtmf::DtmfTiming;
use crate::sip::core::registration::{RegistrationCore, RegistrationSetup, RegistrationState};
use crate::sip::core::sdp::LocalMedia as SdpMedia;
use crate::sip::core::{Authenticator, CallEvent, MediaEncryption};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::net::IpAddr;
use std::time::Instant;
use tokio::sync::mpsc;

impl EngineState {
    pub(super) fn register_then_call(
        &mut self,
        now: Instant,
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
                return self.start_call(now, call_id, dial, call_hop, Some(key));
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
        let core = RegistrationCore::new(setup, auth, rng, now);
        self.registrations.insert(
            key,
            RegSlot {
                core,
                hop: reg_hop,
                users,
                tls: account.tls.clone(),
                waiting: vec![(call_id, dial, call_hop)],
            },
        );
    }

    pub(super) fn start_call(
        &mut self,
        now: Instant,
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
        let mut local = self.local_party(&config.account, hop);
        let target = request_uri(&config.to, &config.account.domain);
        if target
            .get(..5)
            .is_some_and(|s| s.eq_ignore_ascii_case("sips:"))
        {
            // A sips: Request-URI needs a sips: Contact (RFC 3261 §8.1.1.8).
            local.contact = format!("sips:{}@{}", config.account.user, local.sent_by);
        }
        let address = self.local_ip(hop);
        let setup = CallSetup {
            call_id: call_id.clone(),
            local,
            target,
            media: SdpMedia {
                address,
                audio_rtp_port: config.local_media.audio_rtp_port,
                video_rtp_port: config.local_media.video_rtp_port,
                direction: config.local_media.direction,
                video_content: config.local_media.video_content,
                crypto: offered_crypto(config.local_media.encryption),
            },
            encryption: config.local_media.encryption,
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
        let core = CallCore::new(setup, auth, StdRng::from_rng(&mut self.rng), now);
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
                tls: config.account.tls.clone(),
            },
        );
    }

    fn local_ip(&self, hop: Hop) -> IpAddr {
        self.config
            .public_addr
            .unwrap_or_else(|| local_ip_toward(self.local_addr, hop.addr))
    }

    fn local_party(&self, account: &Account, hop: Hop) -> LocalParty {
        let host = match self.local_ip(hop) {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        // Where a peer reaches us: our TLS listener's port for TLS if we have one, else the
        // UDP/TCP port (over TLS without a listener, the peer must reuse our connection).
        let port = match (&self.config.tls_listen, account.transport) {
            (Some(tls), Transport::Tls) => tls.addr.port(),
            _ => self.local_addr.port(),
        };
        let sent_by = format!("{host}:{port}");
        LocalParty {
            aor: format!("sip:{}@{}", account.user, account.domain),
            display_name: account.display_name.clone(),
            contact: format!(
                "sip:{}@{sent_by}{}",
                account.user,
                account.transport.uri_param()
            ),
            sent_by,
            transport: account.transport,
            outbound_proxy: account.proxy.as_ref().map(|p| {
                if p.contains(";lr") {
                    p.clone()
                } else {
                    format!("{p};lr")
                }
            }),
            user_agent: self.config.user_agent.clone(),
            instance: account.transport.is_reliable().then(|| {
                instance_id(
                    &format!("sip:{}@{}", account.user, account.domain),
                    &self.local_addr.to_string(),
                )
            }),
        }
    }

    /// Starts a call straight at `hop` (no resolution): the fuzz entry point's live call.
    pub(crate) fn start_call_at(
        &mut self,
        now: Instant,
        call_id: String,
        config: CallConfig,
        events: mpsc::UnboundedSender<CallEvent>,
        hop: Hop,
    ) {
        let dial = PendingDial {
            config: Box::new(config),
            events,
            waiters: Vec::new(),
        };
        self.start_call(now, call_id, dial, hop, None);
    }
}

/// Fresh SDES keys for an SRTP offer (read from the OS RNG here, in the driver: the core does
/// no I/O). `None` for plain RTP, and when the RNG fails: a `require` call then ends at once.
fn offered_crypto(encryption: MediaEncryption) -> Option<crate::sip::core::sdp::OfferedCrypto> {
    match encryption {
        MediaEncryption::Off => None,
        MediaEncryption::Require | MediaEncryption::Prefer => {
            crate::sip::core::sdp::OfferedCrypto::generate().ok()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::super::{CallConfig, TlsListen, UaConfig, UaStats};
    use super::super::{Action, EngineState, Hop};
    use crate::sip::core::dialog::Transport;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    /// The INVITE a call to `to` over `transport` starts with.
    fn invite(to: &str, transport: Transport, tls_listen: bool) -> String {
        let local = SocketAddr::from(([192, 0, 2, 1], 5060));
        let mut config = UaConfig::new(local);
        config.tls_listen = tls_listen.then(|| TlsListen {
            addr: SocketAddr::from(([192, 0, 2, 1], 5061)),
            cert_file: "/c.pem".into(),
            key_file: "/k.pem".into(),
        });
        let mut state = EngineState::new(config, local, Arc::new(UaStats::default()));
        let call = CallConfig {
            account: crate::sip::driver::Account {
                user: "cast".into(),
                domain: "example.com".into(),
                auth_user: None,
                password: None,
                register: false,
                registrar: None,
                proxy: None,
                transport,
                display_name: None,
                tls: Default::default(),
            },
            to: to.into(),
            answer_timeout: Duration::from_secs(60),
            local_media: Default::default(),
            dtmf: Default::default(),
            dtmf_rtp: None,
        };
        let (events, _) = tokio::sync::mpsc::unbounded_channel();
        let hop = Hop {
            addr: SocketAddr::from(([192, 0, 2, 5], 5061)),
            transport,
        };
        let now = crate::sip::core::test_origin();
        state.start_call_at(now, "c1".into(), call, events, hop);
        state.drain(now);
        match state.poll_action() {
            Some(Action::Send(_, data)) => String::from_utf8_lossy(&data).into_owned(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn contacts_and_vias_follow_the_transport_and_the_target_scheme() {
        let sips = invite("sips:meeting@webex.example", Transport::Tls, true);
        assert!(
            sips.contains("\r\nContact: <sips:cast@192.0.2.1:5061;ob>\r\n"),
            "{sips}"
        );
        assert!(
            sips.contains("\r\nVia: SIP/2.0/TLS 192.0.2.1:5061;branch="),
            "{sips}"
        );
        assert!(sips.contains(";rport;alias\r\n"), "{sips}");
        let tls = invite("sip:meeting@sbc.example", Transport::Tls, false);
        assert!(
            tls.contains("\r\nContact: <sip:cast@192.0.2.1:5060;transport=tls;ob>\r\n"),
            "without a TLS listener the flow we open is the way back: {tls}"
        );
        let tcp = invite("sip:meeting@sbc.example", Transport::Tcp, true);
        assert!(
            tcp.contains("\r\nContact: <sip:cast@192.0.2.1:5060;transport=tcp;ob>\r\n"),
            "{tcp}"
        );
        let udp = invite("sip:meeting@sbc.example", Transport::Udp, true);
        assert!(
            udp.contains("\r\nContact: <sip:cast@192.0.2.1:5060>\r\n"),
            "{udp}"
        );
        assert!(!udp.contains("alias"), "{udp}");
    }
}
