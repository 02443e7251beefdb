//! The call after answer: the 2xx and its ACK, forks, the peer's in-dialog requests (server
//! side of RFC 3261 §12.2.2 and §14.2) and session timers (RFC 4028 §7–§10).

use super::call::{CallCore, DtmfState, MIN_SE, Phase, Purpose};
use super::call_srtp::{SrtpAnswer, carry_srtp, settle_answer};
use super::dialog::{ALLOW, Dialog, response_to, with_via};
use super::message::SipMessage;
use super::sdp;
use super::{CallEnd, CallEvent, Output, random_token};
use bytes::Bytes;
use ezk_sip_types::{Method, Name};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How many peer responses we keep for retransmitted requests.
const RESPONSE_CACHE: usize = 8;

/// Most dialogs one INVITE may create (forked 2xx, §13.2.2.4). Each costs one ACK and one BYE,
/// so the cap is also what a flood of forged 2xx with new To tags can make us send.
pub const MAX_FORKS: usize = 16;

/// Answers to peer requests that do not fit the dialog (481, 500, 491): a steady rate and a
/// burst, so forged in-dialog requests cannot make us reflect at their rate.
pub(super) const REPLY_RATE: u32 = 20;
pub(super) const REPLY_BURST: u32 = 40;

/// Our 2xx to a peer's INVITE, resent until the ACK (T1 doubling to T2, for 64·T1).
#[derive(Debug, Clone)]
pub struct PendingAnswer {
    pub cseq: u32,
    pub data: Bytes,
    pub to: SocketAddr,
    pub next_at: Instant,
    pub interval: Duration,
    pub give_up_at: Instant,
}

/// The ACK we sent for one fork's 2xx, and when, to re-ACK retransmissions at a bounded rate.
#[derive(Debug, Clone)]
pub(super) struct SentAck {
    pub data: Bytes,
    pub to: Option<SocketAddr>,
    pub at: Instant,
}

/// What a call ignored or did not answer because the input looked like a flood. The driver
/// takes these into its counters ([`CallCore::take_flood_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodCounts {
    /// 2xx with a new To tag past [`MAX_FORKS`].
    pub forks_refused: u64,
    /// Retransmitted 2xx not re-ACKed because the last ACK was too recent.
    pub acks_suppressed: u64,
    /// Answers (481 and the like) not sent because of the rate limit.
    pub replies_suppressed: u64,
    /// 2xx for our INVITE that carried a branch we never sent.
    pub foreign_2xx: u64,
}

impl CallCore {
    /// What was dropped as flood since the last call.
    pub fn take_flood_counts(&mut self) -> FloodCounts {
        std::mem::take(&mut self.flood)
    }

    pub(super) fn on_invite_2xx(&mut self, now: Instant, msg: &SipMessage) {
        let Some(to_tag) = msg.to_tag() else { return };
        let min_gap = self.setup.timers.t1 / 2;
        if let Some(sent) = self.acks.get_mut(&to_tag) {
            // A retransmitted 2xx: our ACK got lost. A peer retransmits at T1, 2·T1, …; more
            // often than every T1/2 is not a peer, so those copies get no ACK.
            if now.saturating_duration_since(sent.at) < min_gap {
                self.flood.acks_suppressed += 1;
                return;
            }
            sent.at = now;
            let (to, data) = (sent.to, sent.data.clone());
            self.outputs.push_back(Output::Send { to, data });
            return;
        }
        if self.acks.len() >= MAX_FORKS {
            self.flood.forks_refused += 1;
            return;
        }
        let remote_uri = format!("<{}>", self.setup.target);
        let Some(mut dialog) = Dialog::from_response(
            msg,
            &self.setup.call_id,
            &self.local_tag,
            &remote_uri,
            self.invite_cseq,
        ) else {
            return;
        };
        let ack = self.ack_for(&dialog);
        let first = self.dialog.is_none()
            && matches!(self.phase, Phase::AwaitingAnswer | Phase::AwaitingCancel);
        if !first {
            // §13.2.2.4: a later fork gets ACK and BYE. The BYE goes once, untracked: a fork
            // that never answers it is not worth 11 retransmissions (nor is a forged one).
            let to = if self.setup.local.outbound_proxy.is_some() {
                None
            } else {
                destination_of(&dialog)
            };
            self.acks.insert(
                to_tag,
                SentAck {
                    data: ack.clone(),
                    to,
                    at: now,
                },
            );
            self.outputs.push_back(Output::Send { to, data: ack });
            let bye = dialog.request(&self.setup.local, Method::BYE);
            let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
            let mut bye = with_via(bye, &self.setup.local, &branch);
            self.auth.authorize(&mut bye, &mut self.rng);
            self.outputs.push_back(Output::Send {
                to,
                data: bye.to_bytes(),
            });
            return;
        }
        self.dialog = Some(dialog);
        let to = self.dialog_destination();
        self.acks.insert(
            to_tag,
            SentAck {
                data: ack.clone(),
                to,
                at: now,
            },
        );
        self.outputs.push_back(Output::Send { to, data: ack });
        if self.phase == Phase::AwaitingCancel {
            // The answer crossed our CANCEL: take the call down properly.
            let end = self
                .cancel_reason
                .take()
                .unwrap_or_else(|| CallEnd::local("hung up"));
            self.send_bye(now, end);
            return;
        }
        let mut negotiated =
            match sdp::negotiate_preferring(&msg.body, self.setup.media.video_content) {
                Ok(media) if media.audio.is_some() || media.video.is_some() => media,
                Ok(_) => {
                    return self.send_bye(
                        now,
                        CallEnd::status(488, "no acceptable media in the answer"),
                    );
                }
                Err(err) => {
                    return self.send_bye(
                        now,
                        CallEnd::status(488, format!("unreadable SDP answer: {err}")),
                    );
                }
            };
        let srtp = settle_answer(
            self.setup.media.crypto.as_ref(),
            self.setup.encryption,
            &mut negotiated,
        );
        let reoffer_plain = match srtp {
            SrtpAnswer::Accept => false,
            SrtpAnswer::Refuse(reason) => {
                return self.send_bye(now, CallEnd::status(488, reason));
            }
            SrtpAnswer::ReofferPlain(why) => {
                self.srtp_fallback = Some(why);
                true
            }
        };
        if negotiated.srtp_fallback.is_none() {
            negotiated.srtp_fallback = self.srtp_fallback.clone();
        }
        // Refreshes re-offer the keys in use only; a plain call offers none.
        match negotiated.encryption() {
            "none" => self.setup.media.crypto = None,
            _ => {
                if let Some(crypto) = self.setup.media.crypto.as_mut() {
                    crypto.keep_only(&negotiated);
                }
            }
        }
        self.negotiated = negotiated.clone();
        self.phase = Phase::Established;
        self.peer_allows_update = msg
            .headers_raw(&Name::ALLOW)
            .any(|v| v.to_ascii_uppercase().contains("UPDATE"));
        self.outputs
            .push_back(Output::Event(CallEvent::Established {
                call_id: self.setup.call_id.clone(),
                negotiated,
            }));
        self.apply_session_timer(now, msg, true);
        if reoffer_plain {
            self.sdp_version += 1;
            self.send_reinvite(now);
        }
        if !self.setup.dtmf_digits.is_empty() {
            self.dtmf = DtmfState::NotStarted {
                at: now + self.setup.dtmf_delay,
            };
        }
    }

    /// The ACK for a 2xx (§13.2.2.4): a new transaction inside the dialog, CSeq of the INVITE.
    fn ack_for(&mut self, dialog: &Dialog) -> Bytes {
        let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
        let ack = dialog.request_with_cseq(&self.setup.local, Method::ACK, self.invite_cseq);
        with_via(ack, &self.setup.local, &branch).to_bytes()
    }

    /// Where in-dialog requests go: the remote target when it is an address and no proxy is on
    /// the route; otherwise the call's next hop (None). With an outbound proxy configured every
    /// request goes through it, as SBCs in front of PBXes expect.
    pub(super) fn dialog_destination(&self) -> Option<SocketAddr> {
        if self.setup.local.outbound_proxy.is_some() {
            return None;
        }
        self.dialog.as_ref().and_then(destination_of)
    }

    /// RFC 4028 §7.2 / §9: who refreshes, and when we act.
    pub(super) fn apply_session_timer(&mut self, now: Instant, msg: &SipMessage, we_are_uac: bool) {
        self.refresh_at = None;
        self.expire_at = None;
        let Some(value) = msg.header(&Name::SESSION_EXPIRES) else {
            return;
        };
        let Some(interval) = msg.header_u32(&Name::SESSION_EXPIRES).filter(|s| *s > 0) else {
            return;
        };
        let refresher = super::message::name_addr_param(&format!("<x>{value}"), "refresher");
        let we_refresh = match refresher.as_deref() {
            Some("uac") => we_are_uac,
            Some("uas") => !we_are_uac,
            _ => we_are_uac,
        };
        let interval = Duration::from_secs(interval as u64);
        if we_refresh {
            self.refresh_at = Some(now + interval / 2);
        } else {
            // §10: BYE if no refresh arrives by the interval minus min(32 s, interval / 3).
            self.expire_at = Some(now + interval - (interval / 3).min(Duration::from_secs(32)));
        }
        self.session_expires = interval.as_secs() as u32;
    }

    /// Our session refresh: UPDATE when the peer allows it, else a re-INVITE with the same SDP.
    pub(super) fn send_refresh(&mut self, now: Instant) {
        let method = if self.peer_allows_update {
            Method::UPDATE
        } else {
            Method::INVITE
        };
        self.send_session_request(now, method);
    }

    /// A re-INVITE with our current offer (plain RTP after an SRTP answer we cannot use); its
    /// answer is applied like a refresh's.
    pub(super) fn send_reinvite(&mut self, now: Instant) {
        self.send_session_request(now, Method::INVITE);
    }

    fn send_session_request(&mut self, now: Instant, method: Method) {
        let expires = format!("{};refresher=uac", self.session_expires);
        let Some(dialog) = self.dialog.as_mut() else {
            return;
        };
        let mut msg = dialog.request(&self.setup.local, method.clone());
        msg.push(Name::SUPPORTED, "timer");
        msg.push(Name::SESSION_EXPIRES, expires);
        msg.push(Name::MIN_SE, MIN_SE.to_string());
        if method == Method::INVITE {
            let sdp = sdp::render(&self.setup.media, self.session_id, self.sdp_version, None);
            msg = msg.with_body("application/sdp", sdp);
        }
        self.start_transaction(now, msg, Purpose::Refresh);
    }

    pub(super) fn on_refresh_response(&mut self, now: Instant, msg: &SipMessage, status: u16) {
        if (200..300).contains(&status) {
            if !msg.body.is_empty() {
                // The answer to our re-offer: the media it names is what flows now.
                self.take_peer_sdp(&msg.body, false);
            }
            if msg.cseq().is_some_and(|c| c.method == Method::INVITE) {
                let ack = self.dialog.clone().map(|d| {
                    let branch = format!("z9hG4bK{}", random_token(&mut self.rng, 16));
                    let cseq = msg.cseq().map(|c| c.cseq).unwrap_or(d.local_cseq);
                    with_via(
                        d.request_with_cseq(&self.setup.local, Method::ACK, cseq),
                        &self.setup.local,
                        &branch,
                    )
                    .to_bytes()
                });
                if let Some(data) = ack {
                    let to = self.dialog_destination();
                    self.outputs.push_back(Output::Send { to, data });
                }
            }
            self.apply_session_timer(now, msg, true);
            if self.refresh_at.is_none() && self.expire_at.is_none() {
                self.refresh_at = Some(now + Duration::from_secs(self.session_expires as u64) / 2);
            }
        } else if status == 481 || status == 408 {
            // §10: a refresh the peer no longer knows means the session is gone.
            self.send_bye(now, CallEnd::status(status, "session refresh rejected"));
        } else if status == 422 {
            self.session_expires = msg
                .header_u32(&Name::MIN_SE)
                .unwrap_or(self.session_expires)
                .max(self.session_expires);
            self.send_refresh(now);
        } else {
            self.refresh_at = Some(now + Duration::from_secs(self.session_expires as u64) / 4);
        }
    }

    pub(super) fn handle_request(&mut self, now: Instant, msg: SipMessage, source: SocketAddr) {
        let Some(method) = msg.method().cloned() else {
            return;
        };
        let Some(cseq) = msg.cseq() else { return };
        if method == Method::ACK {
            if self.answer.as_ref().is_some_and(|a| a.cseq == cseq.cseq) {
                self.answer = None;
                if !msg.body.is_empty() {
                    self.take_peer_sdp(&msg.body, false);
                }
            }
            return;
        }
        let Some(dialog) = self.dialog.as_mut() else {
            return self.reply(now, &msg, 481, "Call/Transaction Does Not Exist", source);
        };
        if msg.from_tag().as_deref() != Some(dialog.remote_tag.as_str())
            || msg.to_tag().as_deref() != Some(dialog.local_tag.as_str())
        {
            return self.reply(now, &msg, 481, "Call/Transaction Does Not Exist", source);
        }
        if let Some(last) = dialog.remote_cseq {
            if cseq.cseq < last {
                return self.reply(now, &msg, 500, "Server Internal Error", source);
            }
            if cseq.cseq == last {
                // A retransmission: repeat what we said.
                let cached = self
                    .responses
                    .iter()
                    .find(|(c, m, _, _)| *c == cseq.cseq && *m == method);
                if let Some((_, _, data, to)) = cached {
                    let (data, to) = (data.clone(), *to);
                    self.outputs.push_back(Output::Send { to: Some(to), data });
                }
                return;
            }
        }
        dialog.remote_cseq = Some(cseq.cseq);
        match method {
            Method::BYE => {
                self.reply(now, &msg, 200, "OK", source);
                self.end(CallEnd::remote("remote party hung up"));
            }
            Method::INVITE => self.answer_reinvite(now, &msg, source),
            Method::UPDATE => {
                let mut resp = response_to(&msg, 200, "OK", None);
                if !msg.body.is_empty() {
                    let answer = self.take_peer_sdp(&msg.body, true);
                    resp = resp.with_body("application/sdp", answer);
                }
                self.session_refreshed(now, &msg, &mut resp);
                self.send_response(cseq.cseq, method, resp, source);
            }
            Method::INFO | Method::OPTIONS => self.reply(now, &msg, 200, "OK", source),
            _ => {
                let mut resp = response_to(&msg, 405, "Method Not Allowed", None);
                resp.push(Name::ALLOW, ALLOW);
                self.send_response(cseq.cseq, method, resp, source);
            }
        }
    }

    /// A re-INVITE: a new offer (or none, then our 200 offers and the ACK answers), maybe a
    /// session refresh (RFC 4028 §9).
    fn answer_reinvite(&mut self, now: Instant, msg: &SipMessage, source: SocketAddr) {
        let Some(cseq) = msg.cseq() else { return };
        if self.phase != Phase::Established {
            return self.reply(now, msg, 491, "Request Pending", source);
        }
        let body = if msg.body.is_empty() {
            self.sdp_version += 1;
            sdp::render(&self.setup.media, self.session_id, self.sdp_version, None)
        } else {
            self.take_peer_sdp(&msg.body, true)
        };
        let mut resp = response_to(msg, 200, "OK", None);
        resp.push(Name::CONTACT, format!("<{}>", self.setup.local.contact));
        resp.push(Name::ALLOW, ALLOW);
        self.session_refreshed(now, msg, &mut resp);
        let resp = resp.with_body("application/sdp", body);
        let data = resp.to_bytes();
        self.send_response(cseq.cseq, Method::INVITE, resp, source);
        let t1 = self.setup.timers.t1;
        self.answer = Some(PendingAnswer {
            cseq: cseq.cseq,
            data,
            to: source,
            next_at: now + t1,
            interval: t1,
            give_up_at: now + t1 * 64,
        });
    }

    /// Applies a peer's offer; returns our answer SDP. Reports changed media.
    fn take_peer_sdp(&mut self, body: &[u8], is_offer: bool) -> String {
        let media = match sdp::negotiate_preferring(body, self.setup.media.video_content) {
            Ok(mut media) => {
                carry_srtp(&self.negotiated, &mut media);
                media
            }
            Err(_) => self.negotiated.clone(),
        };
        if media != self.negotiated {
            self.negotiated = media.clone();
            self.outputs
                .push_back(Output::Event(CallEvent::MediaChanged(media)));
        }
        if is_offer {
            self.sdp_version += 1;
        }
        sdp::render(
            &self.setup.media,
            self.session_id,
            self.sdp_version,
            Some(&self.negotiated),
        )
    }

    /// A peer request carrying Session-Expires refreshes the session; echo the timer.
    fn session_refreshed(&mut self, now: Instant, req: &SipMessage, resp: &mut SipMessage) {
        let Some(interval) = req.header_u32(&Name::SESSION_EXPIRES) else {
            return;
        };
        let refresher = super::message::name_addr_param(
            &format!("<x>{}", req.header(&Name::SESSION_EXPIRES).unwrap_or("")),
            "refresher",
        );
        // The peer is the UAC of its own request: refresher=uac means the peer refreshes.
        let value = match refresher.as_deref() {
            Some("uas") => format!("{interval};refresher=uas"),
            _ => format!("{interval};refresher=uac"),
        };
        resp.push(Name::SESSION_EXPIRES, value);
        resp.push(Name::REQUIRE, "timer");
        self.apply_session_timer(now, resp, false);
    }

    pub(super) fn retransmit_answer(&mut self, now: Instant) {
        let Some(answer) = self.answer.as_mut() else {
            return;
        };
        if answer.next_at > now {
            return;
        }
        if now >= answer.give_up_at {
            // §13.3.1.4: no ACK for 64·T1 means the dialog is gone.
            self.answer = None;
            if self.phase == Phase::Established {
                self.send_bye(now, CallEnd::local("no ACK for our 2xx to a re-INVITE"));
            }
            return;
        }
        answer.interval = (answer.interval * 2).min(self.setup.timers.t2);
        answer.next_at = now + answer.interval;
        let (to, data) = (answer.to, answer.data.clone());
        self.outputs.push_back(Output::Send { to: Some(to), data });
    }

    fn reply(
        &mut self,
        now: Instant,
        req: &SipMessage,
        code: u16,
        reason: &str,
        source: SocketAddr,
    ) {
        if code >= 300 && !self.reply_limit.take(now) {
            self.flood.replies_suppressed += 1;
            return;
        }
        let resp = response_to(req, code, reason, None);
        if let (Some(method), Some(cseq)) = (req.method().cloned(), req.cseq()) {
            self.send_response(cseq.cseq, method, resp, source);
        }
    }

    fn send_response(&mut self, cseq: u32, method: Method, resp: SipMessage, source: SocketAddr) {
        let data = resp.to_bytes();
        self.responses
            .push_back((cseq, method, data.clone(), source));
        while self.responses.len() > RESPONSE_CACHE {
            self.responses.pop_front();
        }
        self.outputs.push_back(Output::Send {
            to: Some(source),
            data,
        });
    }
}

fn destination_of(dialog: &Dialog) -> Option<SocketAddr> {
    if !dialog.route_set.is_empty() {
        return None;
    }
    let uri: ezk_sip_types::uri::SipUri = dialog.remote_target.parse().ok()?;
    let ip = uri.host_port.ip()?;
    Some(SocketAddr::new(ip, uri.host_port.port.unwrap_or(5060)))
}
