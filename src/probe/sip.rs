//! Does the SIP side answer? With `register = true`, a REGISTER to the registrar with the real
//! digest credentials (and, once bound, an un-REGISTER of that one contact); otherwise an
//! OPTIONS to the callee, through the outbound proxy if there is one. Built from the SIP core's
//! own pieces: [`SipMessage`], [`ClientTransaction`] (retransmission over UDP) and the
//! [`Authenticator`] the calls use.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use ezk_sip_types::{Method, Name};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::sip_link::Link;
use super::{Check, ProbeOptions};
use crate::clock::monotonic;
use crate::sip::core::dialog::{LocalParty, with_via};
use crate::sip::core::message::SipMessage;
use crate::sip::core::transaction::{ClientTransaction, TimerConfig, TransactionKind, TxAction};
use crate::sip::core::{Authenticator, random_token};
use crate::sip::driver::resolve::{local_ip_toward, request_uri, resolve};
use crate::spec::{CallSpec, SipSpec};

/// What a probe asks, and what the answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Register,
    Options,
}

/// How one exchange ended, before it becomes a checklist line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// A final response other than a challenge we could answer.
    Final { code: u16, reason: String },
    /// A 401/407 we could not answer: after our credentials, or without a password.
    Challenge {
        code: u16,
        reason: String,
        credentials_sent: bool,
    },
    /// Nothing before the deadline.
    NoAnswer,
    /// The link failed (port unreachable, connection closed, …).
    LinkFailed(String),
}

/// The checklist line for an answer from `hop`.
pub fn judge(ask: Ask, what: &str, hop: SocketAddr, answer: &Answer) -> Check {
    let name = "sip";
    let peer = match ask {
        Ask::Register => "registrar",
        Ask::Options => "SIP peer",
    };
    match answer {
        Answer::Final { code, reason } => {
            let status = format!("{code} {reason}");
            match (ask, code) {
                (_, 200..=299) => Check::ok(name, format!("{what}: {status} from {hop}")),
                (Ask::Register, 403) => {
                    Check::fail(name, format!("registrar refused credentials ({status})"))
                }
                (Ask::Options, 404 | 484 | 604) => {
                    Check::fail(name, format!("callee not found ({status} from {hop})"))
                }
                // The peer is there and knows the callee; it just does not do OPTIONS (or is
                // busy right now): a call would be routed.
                (Ask::Options, 405 | 420 | 480 | 486 | 488 | 501) => Check::ok(
                    name,
                    format!("{what}: {status} from {hop} (the peer answers)"),
                ),
                _ => Check::fail(name, format!("{peer} answered {status} ({what})")),
            }
        }
        Answer::Challenge {
            code,
            reason,
            credentials_sent: true,
        } => Check::fail(
            name,
            format!("{peer} refused credentials ({code} {reason})"),
        ),
        Answer::Challenge { code, reason, .. } => Check::fail(
            name,
            format!(
                "{peer} asks for authentication ({code} {reason}) but no password is configured"
            ),
        ),
        Answer::NoAnswer => Check::fail(name, format!("no answer from {hop} ({what})")),
        Answer::LinkFailed(why) => Check::fail(name, format!("{hop}: {why} ({what})")),
    }
}

/// Probes the SIP side of a spec.
pub async fn check(sip: &SipSpec, call: &CallSpec, options: &ProbeOptions) -> Check {
    let (ask, uri) = if sip.register {
        let registrar = sip
            .registrar
            .clone()
            .unwrap_or_else(|| format!("sip:{}", sip.domain));
        (Ask::Register, registrar)
    } else {
        (Ask::Options, request_uri(&call.to, &sip.domain))
    };
    let method = match ask {
        Ask::Register => "REGISTER",
        Ask::Options => "OPTIONS",
    };
    let what = format!("{method} {uri}");
    let hop_uri = sip.proxy.clone().unwrap_or_else(|| uri.clone());
    let step = options.timeout;
    let (hop, host) = match tokio::time::timeout(step, resolve(&hop_uri, sip.transport)).await {
        Ok(Ok(found)) => found,
        Ok(Err(why)) => return Check::fail("sip", why),
        Err(_) => {
            return Check::fail(
                "sip",
                format!("cannot resolve {hop_uri}: no answer within {step:?}"),
            );
        }
    };
    let (mut link, local) = match Link::open(
        sip.transport,
        hop,
        &host,
        sip.ca_file.as_ref().or(options.sip_tls_ca_file.as_ref()),
        step,
    )
    .await
    {
        Ok(pair) => pair,
        Err(why) => return Check::fail("sip", why),
    };
    let mut exchange = Exchange::new(sip, ask, uri, hop, local);
    let answer = exchange.run(&mut link, step).await;
    let check = judge(ask, &what, hop, &answer);
    if ask == Ask::Register
        && matches!(
            answer,
            Answer::Final {
                code: 200..=299,
                ..
            }
        )
    {
        // Leave nothing behind: remove the one binding the probe made (best effort).
        exchange.expires = 0;
        let _ = exchange.run(&mut link, step).await;
    }
    check
}

/// One request (and its challenge rounds) on one link.
struct Exchange {
    local: LocalParty,
    uri: String,
    method: Method,
    auth: Authenticator,
    rng: StdRng,
    call_id: String,
    tag: String,
    cseq: u32,
    /// REGISTER's Expires (0: remove our binding).
    expires: u32,
    has_password: bool,
}

/// Lifetime a probe's binding asks for; it is removed again at once.
const PROBE_EXPIRES: u32 = 60;

impl Exchange {
    fn new(sip: &SipSpec, ask: Ask, uri: String, hop: SocketAddr, local: SocketAddr) -> Self {
        let mut rng = StdRng::from_os_rng();
        let ip = match local_ip_toward(local, hop) {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        };
        let sent_by = format!("{ip}:{}", local.port());
        let local = LocalParty {
            aor: format!("sip:{}@{}", sip.user, sip.domain),
            display_name: sip.display_name.clone(),
            contact: format!("sip:{}@{sent_by}{}", sip.user, sip.transport.uri_param()),
            sent_by,
            transport: sip.transport,
            outbound_proxy: sip.proxy.as_ref().map(|p| {
                if p.contains(";lr") {
                    p.clone()
                } else {
                    format!("{p};lr")
                }
            }),
            user_agent: format!("sipcast/{} (probe)", env!("CARGO_PKG_VERSION")),
            instance: None,
        };
        Exchange {
            call_id: format!("{}@sipcast-probe", random_token(&mut rng, 20)),
            tag: random_token(&mut rng, 10),
            local,
            uri,
            method: match ask {
                Ask::Register => Method::REGISTER,
                Ask::Options => Method::OPTIONS,
            },
            auth: Authenticator::new(sip.auth_user.clone(), sip.password.clone()),
            rng,
            cseq: 0,
            expires: PROBE_EXPIRES,
            has_password: sip.password.is_some(),
        }
    }

    /// The next request, authorized for the current challenge if there is one. Returns its
    /// branch and bytes.
    fn request(&mut self) -> (String, bytes::Bytes) {
        self.cseq += 1;
        let register = self.method == Method::REGISTER;
        let mut msg = SipMessage::request(self.method.clone(), self.uri.clone());
        msg.push(Name::MAX_FORWARDS, "70");
        if let Some(proxy) = &self.local.outbound_proxy {
            msg.push(Name::ROUTE, format!("<{proxy}>"));
        }
        msg.push(Name::FROM, self.local.from_value(&self.tag));
        let to = if register {
            format!("<{}>", self.local.aor)
        } else {
            format!("<{}>", self.uri)
        };
        msg.push(Name::TO, to);
        msg.push(Name::CALL_ID, self.call_id.clone());
        msg.push(Name::CSEQ, format!("{} {}", self.cseq, self.method));
        if register {
            msg.push(
                Name::CONTACT,
                format!("<{}>;expires={}", self.local.contact, self.expires),
            );
            msg.push(Name::EXPIRES, self.expires.to_string());
        } else {
            msg.push(Name::CONTACT, format!("<{}>", self.local.contact));
            msg.push(Name::ACCEPT, "application/sdp");
        }
        msg.push(Name::USER_AGENT, self.local.user_agent.clone());
        msg.push(Name::CONTENT_LENGTH, "0");
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let mut msg = with_via(msg, &self.local, &branch);
        self.auth.authorize(&mut msg, &mut self.rng);
        (branch, msg.to_bytes())
    }

    /// Sends the request, answers challenges, and returns the final answer; the whole
    /// exchange is bounded by `step`.
    async fn run(&mut self, link: &mut Link, step: Duration) -> Answer {
        let deadline = monotonic() + step;
        loop {
            let (branch, bytes) = self.request();
            let now = std_now();
            let reliable = self.local.transport.is_reliable();
            let mut tx = ClientTransaction::start(
                TransactionKind::NonInvite,
                branch.clone(),
                bytes.clone(),
                reliable,
                TimerConfig::default(),
                now,
            );
            if let Err(why) = link.send(&bytes, step).await {
                return Answer::LinkFailed(why);
            }
            let response = loop {
                let retransmit = tx
                    .next_timeout()
                    .map(|at| monotonic() + at.saturating_duration_since(std_now()))
                    .unwrap_or(deadline)
                    .min(deadline);
                tokio::select! {
                    received = link.recv() => match received {
                        Err(why) => return Answer::LinkFailed(why),
                        Ok(msg) => {
                            let (Some(status), Some(got)) = (msg.status(), msg.branch()) else {
                                continue;
                            };
                            if got != branch {
                                continue;
                            }
                            let actions = tx.on_response(std_now(), status, bytes::Bytes::new);
                            if status >= 200 && actions.contains(&TxAction::Deliver) {
                                break msg;
                            }
                        }
                    },
                    _ = tokio::time::sleep_until(retransmit) => {
                        if monotonic() >= deadline {
                            return Answer::NoAnswer;
                        }
                        for action in tx.on_timeout(std_now()) {
                            match action {
                                TxAction::Send(data) => {
                                    if let Err(why) = link.send(&data, step).await {
                                        return Answer::LinkFailed(why);
                                    }
                                }
                                TxAction::TimedOut => return Answer::NoAnswer,
                                TxAction::Deliver => {}
                            }
                        }
                    }
                }
            };
            let code = response.status().unwrap_or(500);
            let reason = response.reason().unwrap_or_default().to_string();
            if matches!(code, 401 | 407) {
                if self.auth.challenge(&response).is_ok() {
                    continue;
                }
                // With a password, the authenticator gives up only after its credentials
                // were refused (or on a challenge it cannot answer at all).
                return Answer::Challenge {
                    code,
                    reason,
                    credentials_sent: self.has_password,
                };
            }
            self.auth.accepted();
            return Answer::Final { code, reason };
        }
    }
}

/// The SIP core's transactions take `std::time::Instant`; the probe's clock is tokio's.
fn std_now() -> Instant {
    monotonic().into_std()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop() -> SocketAddr {
        "127.0.0.1:5060".parse().unwrap()
    }

    #[test]
    fn credentials_refused_after_sending_them_is_named() {
        let answer = Answer::Challenge {
            code: 401,
            reason: "Unauthorized".into(),
            credentials_sent: true,
        };
        let check = judge(Ask::Register, "REGISTER sip:pbx", hop(), &answer);
        assert_eq!(check.verdict, super::super::Verdict::Fail);
        assert_eq!(
            check.detail,
            "registrar refused credentials (401 Unauthorized)"
        );
        let forbidden = Answer::Final {
            code: 403,
            reason: "Forbidden".into(),
        };
        let check = judge(Ask::Register, "REGISTER sip:pbx", hop(), &forbidden);
        assert_eq!(
            check.detail,
            "registrar refused credentials (403 Forbidden)"
        );
    }

    #[test]
    fn a_challenge_without_a_password_says_so() {
        let answer = Answer::Challenge {
            code: 407,
            reason: "Proxy Authentication Required".into(),
            credentials_sent: false,
        };
        let check = judge(Ask::Options, "OPTIONS sip:a@b", hop(), &answer);
        assert!(
            check.detail.contains("no password is configured"),
            "{}",
            check.detail
        );
    }

    #[test]
    fn silence_names_the_address() {
        let check = judge(Ask::Options, "OPTIONS sip:a@b", hop(), &Answer::NoAnswer);
        assert_eq!(
            check.detail,
            "no answer from 127.0.0.1:5060 (OPTIONS sip:a@b)"
        );
    }

    #[test]
    fn options_answers_that_still_route_a_call_are_green() {
        for (code, ok) in [
            (200, true),
            (405, true),
            (501, true),
            (404, false),
            (503, false),
        ] {
            let answer = Answer::Final {
                code,
                reason: "x".into(),
            };
            let check = judge(Ask::Options, "OPTIONS sip:a@b", hop(), &answer);
            assert_eq!(check.verdict == super::super::Verdict::Ok, ok, "{code}");
        }
        let answer = Answer::Final {
            code: 405,
            reason: "Method Not Allowed".into(),
        };
        let check = judge(Ask::Register, "REGISTER sip:pbx", hop(), &answer);
        assert_eq!(check.verdict, super::super::Verdict::Fail);
    }
}
