//! One outgoing call as a sans-IO state machine: INVITE (with digest retries, 422 and CANCEL on
//! answer timeout), the dialog its first 2xx creates (RFC 3261 §13, §12), forked 2xx answers
//! (§13.2.2.4: ACK and BYE every dialog but the first), DTMF after answer, session timers
//! (RFC 4028), keyframe requests (RFC 5168) and BYE.
//!
//! Drive it like every core here: feed [`CallCore::handle_input`] and
//! [`CallCore::handle_timeout`], then drain [`CallCore::poll_output`] until `None`, and sleep
//! until [`CallCore::poll_timeout`]. Requests and responses of other calls never reach it: the
//! driver routes by Call-ID.

use super::dialog::{Dialog, LocalParty, with_via};
use super::dtmf::{DtmfTiming, Rfc4733Sender};
use super::limit::TokenBucket;
use super::message::SipMessage;
use super::sdp::{self, LocalMedia, NegotiatedMedia};
use super::transaction::{ClientTransaction, TimerConfig, TransactionKind, TxAction};
use super::{Authenticator, CallEnd, CallEvent, DtmfMethod, MediaEncryption, Output, random_token};
use crate::srtp::SrtpSession;
use bytes::Bytes;
use ezk_sip_types::{Method, Name};
use rand::Rng;
use rand::rngs::StdRng;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub(super) use super::call_peer::SentAck;
pub use super::call_peer::{FloodCounts, MAX_FORKS, PendingAnswer};
use super::call_peer::{REPLY_BURST, REPLY_RATE};

/// Session-Expires we ask for (RFC 4028 recommends 1800 s) and the smallest we accept.
pub const SESSION_EXPIRES: u32 = 1800;
pub const MIN_SE: u32 = 90;

/// How long a hang-up waits for the BYE's answer (or, before answer, for a provisional to
/// CANCEL and the 487) before the call is over anyway. Timer F would be 32 s: a callee that
/// never answers must not hold a broadcast, nor the daemon's shutdown, that long.
pub const HANGUP_WAIT: Duration = Duration::from_secs(4);

/// Everything one call needs, fixed at dial time.
#[derive(Debug, Clone)]
pub struct CallSetup {
    pub call_id: String,
    pub local: LocalParty,
    /// Request-URI and To of the INVITE.
    pub target: String,
    /// What we offer; `media.crypto` holds our SDES keys when SRTP is offered.
    pub media: LocalMedia,
    /// What to do when the callee refuses SRTP (or, with `off`, demands it).
    pub encryption: MediaEncryption,
    pub answer_timeout: Duration,
    pub dtmf_digits: String,
    pub dtmf_method: DtmfMethod,
    pub dtmf_delay: Duration,
    pub dtmf_timing: DtmfTiming,
    /// Whether the driver can send RTP for us (RFC 4733); otherwise DTMF falls back to INFO.
    pub can_send_rtp: bool,
    pub timers: TimerConfig,
}

/// What a pending client transaction is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Purpose {
    Invite,
    Cancel,
    Bye,
    DtmfInfo(char),
    KeyframeInfo,
    Refresh,
}

#[derive(Debug)]
pub(super) struct Pending {
    pub tx: ClientTransaction,
    pub purpose: Purpose,
    /// The request without Via, for a retry with credentials.
    pub template: SipMessage,
    pub method: Method,
    /// Where it goes: None for the call's next hop.
    pub to: Option<SocketAddr>,
}

/// The call's phase, named for what it awaits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A final answer to our INVITE.
    AwaitingAnswer,
    /// The 487 (or 200) after our CANCEL.
    AwaitingCancel,
    Established,
    /// The answer to our BYE.
    AwaitingByeAnswer,
    Ended,
}

/// DTMF progress after answer.
#[derive(Debug)]
pub(super) enum DtmfState {
    NotStarted {
        at: Instant,
    },
    Rtp {
        sender: Rfc4733Sender,
        to: SocketAddr,
        /// Our outbound SRTP context when the audio is encrypted (the events are RTP packets
        /// of the audio stream, RFC 4733 §2.1).
        srtp: Option<Box<SrtpSession>>,
    },
    /// INFO digits: next character index, and when it may go (None while an INFO is pending).
    Info {
        next: usize,
        at: Option<Instant>,
    },
    Done,
}

pub struct CallCore {
    pub(super) setup: CallSetup,
    pub(super) auth: Authenticator,
    pub(super) rng: StdRng,
    pub(super) local_tag: String,
    pub(super) phase: Phase,
    pub(super) pending: Vec<Pending>,
    pub(super) outputs: VecDeque<Output>,
    pub(super) invite_cseq: u32,
    pub(super) invite_branch: String,
    pub(super) invite: Option<SipMessage>,
    pub(super) answer_deadline: Option<Instant>,
    pub(super) got_provisional: bool,
    pub(super) cancel_reason: Option<CallEnd>,
    pub(super) session_expires: u32,
    pub(super) dialog: Option<Dialog>,
    /// ACKs sent for 2xx, by To tag (at most [`MAX_FORKS`]), resent when the 2xx is
    /// retransmitted.
    pub(super) acks: BTreeMap<String, SentAck>,
    /// When a hang-up stops waiting for the peer (see [`HANGUP_WAIT`]).
    pub(super) hangup_deadline: Option<Instant>,
    pub(super) reply_limit: TokenBucket,
    pub(super) flood: FloodCounts,
    pub(super) negotiated: NegotiatedMedia,
    pub(super) session_id: u64,
    pub(super) sdp_version: u64,
    pub(super) dtmf: DtmfState,
    pub(super) dtmf_sent: String,
    /// When we must refresh the session (we are refresher) or give it up (the peer is).
    pub(super) refresh_at: Option<Instant>,
    pub(super) expire_at: Option<Instant>,
    pub(super) peer_allows_update: bool,
    /// Our 2xx to a peer's re-INVITE, retransmitted until its ACK (§13.3.1.4).
    pub(super) answer: Option<PendingAnswer>,
    /// Last response per (CSeq, method) of peer requests, for their retransmissions.
    pub(super) responses: VecDeque<(u32, Method, Bytes, SocketAddr)>,
    /// Why `media_encryption = "prefer"` went plain, once it has.
    pub(super) srtp_fallback: Option<String>,
}

impl CallCore {
    /// Creates the call and sends its INVITE at `now`.
    pub fn new(setup: CallSetup, auth: Authenticator, mut rng: StdRng, now: Instant) -> CallCore {
        let no_keys = setup.encryption == MediaEncryption::Require && setup.media.crypto.is_none();
        let local_tag = random_token(&mut rng, 10);
        let session_id = rng.random_range(1..u32::MAX as u64);
        let mut call = CallCore {
            answer_deadline: Some(now + setup.answer_timeout),
            setup,
            auth,
            rng,
            local_tag,
            phase: Phase::AwaitingAnswer,
            pending: Vec::new(),
            outputs: VecDeque::new(),
            invite_cseq: 0,
            invite_branch: String::new(),
            invite: None,
            got_provisional: false,
            cancel_reason: None,
            session_expires: SESSION_EXPIRES,
            dialog: None,
            acks: BTreeMap::new(),
            hangup_deadline: None,
            reply_limit: TokenBucket::new(REPLY_RATE, REPLY_BURST),
            flood: FloodCounts::default(),
            negotiated: NegotiatedMedia::default(),
            session_id,
            sdp_version: 1,
            dtmf: DtmfState::Done,
            dtmf_sent: String::new(),
            refresh_at: None,
            expire_at: None,
            peer_allows_update: false,
            answer: None,
            responses: VecDeque::new(),
            srtp_fallback: None,
        };
        if no_keys {
            // The driver could not make SRTP keys (the OS RNG failed): never offer plain.
            call.end(CallEnd::local("cannot generate SRTP keys"));
            return call;
        }
        call.send_invite(now, 1);
        call
    }

    pub fn call_id(&self) -> &str {
        &self.setup.call_id
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended && self.outputs.is_empty()
    }

    /// Ends the call at once without waiting for the peer: what a shutdown does at its deadline.
    pub fn abandon(&mut self, reason: &str) {
        self.pending.clear();
        self.answer = None;
        let end = self
            .cancel_reason
            .take()
            .unwrap_or_else(|| CallEnd::local(reason.to_string()));
        self.end(end);
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        let dtmf = match &self.dtmf {
            DtmfState::NotStarted { at } => Some(*at),
            DtmfState::Rtp { sender, .. } => sender.next_timeout(),
            DtmfState::Info { at, .. } => *at,
            DtmfState::Done => None,
        };
        self.pending
            .iter()
            .filter_map(|p| p.tx.next_timeout())
            .chain(
                self.answer_deadline
                    .filter(|_| self.phase == Phase::AwaitingAnswer),
            )
            .chain(dtmf.filter(|_| self.phase == Phase::Established))
            .chain(self.refresh_at)
            .chain(self.expire_at)
            .chain(self.answer.as_ref().map(|a| a.next_at))
            .chain(self.hangup_deadline.filter(|_| self.phase != Phase::Ended))
            .min()
    }

    /// A message for this call from `source`.
    pub fn handle_message(&mut self, now: Instant, msg: SipMessage, source: SocketAddr) {
        if msg.status().is_some() {
            self.handle_response(now, msg);
        } else {
            self.handle_request(now, msg, source);
        }
    }

    /// Ends the call: CANCEL before answer, BYE after.
    pub fn hangup(&mut self, now: Instant) {
        let end = CallEnd::local("hung up");
        match self.phase {
            Phase::AwaitingAnswer => self.cancel(now, end),
            Phase::Established => self.send_bye(now, end),
            Phase::AwaitingCancel | Phase::AwaitingByeAnswer | Phase::Ended => {}
        }
    }

    /// The connection carrying the call failed (§8.1.3.1: as if a 503 had arrived). An answered
    /// call is left alone: its next request re-opens the connection.
    pub fn transport_failed(&mut self, _now: Instant, reason: &str) {
        if matches!(self.phase, Phase::AwaitingAnswer | Phase::AwaitingCancel) {
            self.pending.clear();
            self.end(CallEnd::status(503, reason.to_string()));
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let mut timed_out = Vec::new();
        for (i, p) in self.pending.iter_mut().enumerate() {
            if p.tx.next_timeout().is_some_and(|t| t <= now) {
                for action in p.tx.on_timeout(now) {
                    match action {
                        TxAction::Send(bytes) => self.outputs.push_back(Output::Send {
                            to: p.to,
                            data: bytes,
                        }),
                        TxAction::TimedOut => timed_out.push(i),
                        TxAction::Deliver => {}
                    }
                }
            }
        }
        for i in timed_out.into_iter().rev() {
            let p = self.pending.remove(i);
            self.on_transaction_timeout(now, p);
        }
        self.pending.retain(|p| !p.tx.is_terminated());
        if self.hangup_deadline.is_some_and(|d| d <= now)
            && matches!(self.phase, Phase::AwaitingCancel | Phase::AwaitingByeAnswer)
        {
            // The peer did not answer our CANCEL or BYE in time: stop retransmitting and end.
            self.hangup_deadline = None;
            self.abandon("hung up");
            return;
        }
        if self.phase == Phase::AwaitingAnswer && self.answer_deadline.is_some_and(|d| d <= now) {
            self.answer_deadline = None;
            let secs = self.setup.answer_timeout.as_secs();
            self.cancel(
                now,
                CallEnd::status(408, format!("no answer within {secs}s")),
            );
        }
        if self.phase == Phase::Established {
            self.drive_dtmf(now);
            if self.refresh_at.is_some_and(|t| t <= now) {
                self.refresh_at = None;
                self.send_refresh(now);
            }
            if self.expire_at.is_some_and(|t| t <= now) {
                self.expire_at = None;
                self.send_bye(now, CallEnd::local("session timer expired without refresh"));
            }
        }
        self.retransmit_answer(now);
    }

    fn on_transaction_timeout(&mut self, now: Instant, p: Pending) {
        match p.purpose {
            Purpose::Invite => {
                let end = self.cancel_reason.take().unwrap_or_else(|| {
                    CallEnd::status(408, "no final response to INVITE (timer B)")
                });
                self.end(end);
            }
            Purpose::Cancel => {}
            Purpose::Bye => self.end(
                self.cancel_reason
                    .clone()
                    .unwrap_or_else(|| CallEnd::local("hung up")),
            ),
            Purpose::Refresh => {
                self.send_bye(now, CallEnd::status(408, "session refresh timed out"))
            }
            Purpose::DtmfInfo(_) => self.info_digit_done(now),
            Purpose::KeyframeInfo => {}
        }
    }

    fn handle_response(&mut self, now: Instant, msg: SipMessage) {
        let (Some(status), Some(branch), Some(cseq)) = (msg.status(), msg.branch(), msg.cseq())
        else {
            return;
        };
        let Some(index) = self
            .pending
            .iter()
            .position(|p| p.tx.branch == branch && p.method == cseq.method)
        else {
            // A 2xx retransmission after its transaction ended (or a fork's 2xx): ACK it
            // (§13.2.2.4). Only ours: a 2xx to our INVITE carries the branch we sent.
            if cseq.method == Method::INVITE && (200..300).contains(&status) {
                if branch == self.invite_branch {
                    self.on_invite_2xx(now, &msg);
                } else {
                    self.flood.foreign_2xx += 1;
                }
            }
            return;
        };
        let invite = self.invite.clone();
        let p = &mut self.pending[index];
        let to = p.to;
        let actions =
            p.tx.on_response(now, status, || non_2xx_ack(invite.as_ref(), &msg));
        for action in actions {
            match action {
                TxAction::Send(bytes) => self.outputs.push_back(Output::Send { to, data: bytes }),
                TxAction::Deliver => self.deliver(now, index, &msg, status),
                TxAction::TimedOut => {}
            }
        }
        self.pending.retain(|p| !p.tx.is_terminated());
    }

    fn deliver(&mut self, now: Instant, index: usize, msg: &SipMessage, status: u16) {
        let purpose = self.pending[index].purpose.clone();
        if (status == 401 || status == 407) && purpose != Purpose::Cancel {
            if self.retry_with_credentials(now, index, msg) {
                return;
            }
        } else if status >= 200 {
            self.auth.accepted();
        }
        match purpose {
            Purpose::Invite => self.on_invite_response(now, msg, status),
            Purpose::Bye if status >= 200 => {
                self.end(
                    self.cancel_reason
                        .clone()
                        .unwrap_or_else(|| CallEnd::local("hung up")),
                );
            }
            Purpose::DtmfInfo(digit) if status >= 200 => {
                if status < 300 {
                    self.dtmf_sent.push(digit);
                    self.outputs.push_back(Output::Event(CallEvent::DtmfSent {
                        so_far: self.dtmf_sent.clone(),
                    }));
                }
                self.info_digit_done(now);
            }
            Purpose::Refresh if status >= 200 => self.on_refresh_response(now, msg, status),
            _ => {}
        }
    }

    fn on_invite_response(&mut self, now: Instant, msg: &SipMessage, status: u16) {
        match status {
            100..=199 => {
                self.got_provisional = true;
                if self.phase == Phase::AwaitingCancel {
                    self.send_cancel(now);
                } else if status == 100 {
                    self.outputs.push_back(Output::Event(CallEvent::Trying));
                } else {
                    self.outputs
                        .push_back(Output::Event(CallEvent::Ringing { status }));
                }
            }
            200..=299 => self.on_invite_2xx(now, msg),
            422 if self.phase == Phase::AwaitingAnswer => {
                let min_se = msg.header_u32(&Name::MIN_SE).unwrap_or(MIN_SE);
                if min_se > self.session_expires {
                    self.session_expires = min_se;
                    let cseq = self.invite_cseq + 1;
                    self.send_invite(now, cseq);
                } else {
                    self.end(CallEnd::from_response(msg));
                }
            }
            488 | 606 if self.phase == Phase::AwaitingAnswer => {
                self.on_media_refused(now, msg, status)
            }
            _ => {
                let end = match (self.phase, self.cancel_reason.take()) {
                    (Phase::AwaitingCancel, Some(reason)) => reason,
                    _ => CallEnd::from_response(msg),
                };
                self.end(end);
            }
        }
    }

    pub(super) fn send_invite(&mut self, now: Instant, cseq: u32) {
        let local = &self.setup.local;
        let mut msg = SipMessage::request(Method::INVITE, self.setup.target.clone());
        msg.push(Name::MAX_FORWARDS, "70");
        if let Some(proxy) = &local.outbound_proxy {
            msg.push(Name::ROUTE, format!("<{proxy}>"));
        }
        msg.push(Name::FROM, local.from_value(&self.local_tag));
        msg.push(Name::TO, format!("<{}>", self.setup.target));
        msg.push(Name::CALL_ID, self.setup.call_id.clone());
        msg.push(Name::CSEQ, format!("{cseq} INVITE"));
        msg.push(Name::CONTACT, local.dialog_contact());
        msg.push(Name::ALLOW, super::dialog::ALLOW);
        msg.push(Name::SUPPORTED, "timer");
        msg.push(Name::SESSION_EXPIRES, self.session_expires.to_string());
        msg.push(Name::MIN_SE, MIN_SE.to_string());
        msg.push(Name::USER_AGENT, local.user_agent.clone());
        let sdp = sdp::render(&self.setup.media, self.session_id, self.sdp_version, None);
        let msg = msg.with_body("application/sdp", sdp);
        self.invite_cseq = cseq;
        self.start_transaction(now, msg, Purpose::Invite);
    }

    /// Adds Via (new branch) and credentials, sends, and tracks the transaction.
    pub(super) fn start_transaction(
        &mut self,
        now: Instant,
        template: SipMessage,
        purpose: Purpose,
    ) {
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let method = template.method().cloned().unwrap_or(Method::OPTIONS);
        let mut msg = with_via(template.clone(), &self.setup.local, &branch);
        self.auth.authorize(&mut msg, &mut self.rng);
        if purpose == Purpose::Invite {
            self.invite_branch = branch.clone();
            self.invite = Some(msg.clone());
        }
        self.send_tracked(now, msg, template, purpose, method, branch);
    }

    fn send_tracked(
        &mut self,
        now: Instant,
        msg: SipMessage,
        template: SipMessage,
        purpose: Purpose,
        method: Method,
        branch: String,
    ) {
        let bytes = msg.to_bytes();
        let kind = if method == Method::INVITE {
            TransactionKind::Invite
        } else {
            TransactionKind::NonInvite
        };
        let tx = ClientTransaction::start(
            kind,
            branch,
            bytes.clone(),
            self.setup.local.transport.is_reliable(),
            self.setup.timers,
            now,
        );
        let to = match purpose {
            Purpose::Invite | Purpose::Cancel => None,
            _ => self.dialog_destination(),
        };
        self.outputs.push_back(Output::Send { to, data: bytes });
        self.pending.push(Pending {
            tx,
            purpose,
            template,
            method,
            to,
        });
    }

    /// Answers a 401/407 by resending with credentials; false when we must give up.
    fn retry_with_credentials(&mut self, now: Instant, index: usize, msg: &SipMessage) -> bool {
        match self.auth.challenge(msg) {
            Ok(()) => {}
            Err(end) => {
                if self.pending[index].purpose == Purpose::Invite {
                    self.end(end);
                    return true;
                }
                return false;
            }
        }
        let p = &self.pending[index];
        let purpose = p.purpose.clone();
        let mut template = p.template.clone();
        let cseq = match (&purpose, self.dialog.as_mut()) {
            (Purpose::Invite, _) => self.invite_cseq + 1,
            (_, Some(dialog)) => {
                dialog.local_cseq += 1;
                dialog.local_cseq
            }
            (_, None) => return false,
        };
        let method = p.method.clone();
        template.headers.remove(&Name::CSEQ);
        template.push(Name::CSEQ, format!("{cseq} {method}"));
        if purpose == Purpose::Invite {
            self.invite_cseq = cseq;
        }
        self.start_transaction(now, template, purpose);
        true
    }

    pub(super) fn send_in_dialog(
        &mut self,
        now: Instant,
        method: Method,
        purpose: Purpose,
        body: Option<(&str, String)>,
    ) {
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let mut msg = dialog.request(&self.setup.local, method);
        if let Some((content_type, body)) = body {
            msg = msg.with_body(content_type, body);
        }
        self.start_transaction(now, msg, purpose);
    }

    fn cancel(&mut self, now: Instant, end: CallEnd) {
        self.cancel_reason = Some(end);
        self.phase = Phase::AwaitingCancel;
        self.hangup_deadline = Some(now + HANGUP_WAIT);
        // §9.1: a CANCEL before any provisional response waits for one.
        if self.got_provisional {
            self.send_cancel(now);
        }
    }

    fn send_cancel(&mut self, now: Instant) {
        if self.pending.iter().any(|p| p.purpose == Purpose::Cancel) {
            return; // one CANCEL per INVITE, however many provisionals follow
        }
        let Some(invite) = &self.invite else { return };
        let mut msg = SipMessage::request(Method::CANCEL, self.setup.target.clone());
        for name in [
            Name::VIA,
            Name::MAX_FORWARDS,
            Name::ROUTE,
            Name::FROM,
            Name::TO,
            Name::CALL_ID,
        ] {
            for value in invite.headers_raw(&name) {
                msg.push(name.clone(), value.to_string());
            }
        }
        msg.push(Name::CSEQ, format!("{} CANCEL", self.invite_cseq));
        let template = msg.clone();
        let branch = self.invite_branch.clone();
        self.send_tracked(now, msg, template, Purpose::Cancel, Method::CANCEL, branch);
    }

    pub(super) fn send_bye(&mut self, now: Instant, end: CallEnd) {
        self.cancel_reason = Some(end);
        self.phase = Phase::AwaitingByeAnswer;
        self.hangup_deadline = Some(now + HANGUP_WAIT);
        self.refresh_at = None;
        self.expire_at = None;
        self.send_in_dialog(now, Method::BYE, Purpose::Bye, None);
    }

    pub(super) fn end(&mut self, end: CallEnd) {
        if self.phase == Phase::Ended {
            return;
        }
        self.phase = Phase::Ended;
        self.refresh_at = None;
        self.expire_at = None;
        self.dtmf = DtmfState::Done;
        self.outputs.push_back(Output::Event(CallEvent::Ended(end)));
    }
}

/// The ACK for a non-2xx final response (§17.1.1.3): same branch, Route and From as the INVITE,
/// the response's To.
fn non_2xx_ack(invite: Option<&SipMessage>, response: &SipMessage) -> Bytes {
    let Some(invite) = invite else {
        return Bytes::new();
    };
    let uri = super::dialog::request_uri(invite).to_string();
    let mut ack = SipMessage::request(Method::ACK, uri);
    if let Some(via) = invite.header(&Name::VIA) {
        ack.push(Name::VIA, via.to_string());
    }
    for name in [Name::MAX_FORWARDS, Name::ROUTE, Name::FROM, Name::CALL_ID] {
        for value in invite.headers_raw(&name) {
            ack.push(name.clone(), value.to_string());
        }
    }
    if let Some(to) = response.header(&Name::TO) {
        ack.push(Name::TO, to.to_string());
    }
    let cseq = invite.cseq().map(|c| c.cseq).unwrap_or(1);
    ack.push(Name::CSEQ, format!("{cseq} ACK"));
    ack.to_bytes()
}
