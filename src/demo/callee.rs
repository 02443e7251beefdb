//! The demo's test callee, sans-IO: a minimal SIP UAS for one call at a time (RFC 3261 §8.2
//! UAS behaviour, §13.3 answering INVITE, §15.1.2 BYE) that answers with H.264 + PCMU +
//! telephone-event (RFC 3264 answer to our offer, RFC 6184 §8.1 sprop-parameter-sets), and
//! reads the DTMF it is sent: RFC 4733 events on its audio port (one digit per event
//! timestamp, §2.5.1.1) and SIP INFO `application/dtmf-relay` bodies (`Signal=`).
//!
//! Drive it with [`Callee::handle_request`] per SIP request and [`Callee::handle_audio_rtp`]
//! per datagram on the audio port; act on the returned [`CalleeAction`]s in order. The driver
//! ([`super::callee_driver`]) owns sockets, retransmits the 200 until ACK and plays the clip.

use std::net::IpAddr;
use std::sync::Arc;

use ezk_sip_types::{Method, Name};

use super::clip::Clip;
use crate::sip::core::dialog::{ALLOW, response_to};
use crate::sip::core::dtmf::parse_event_packet;
use crate::sip::core::message::SipMessage;
use crate::sip::core::sdp::{NegotiatedMedia, negotiate};

/// Where the callee's media sockets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CalleeMedia {
    pub ip: IpAddr,
    pub audio_port: u16,
    pub video_port: u16,
    pub sip_port: u16,
}

/// How a digit reached the callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtmfVia {
    Rfc4733,
    Info,
}

/// What the driver must do, in order.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "a few per call, never per packet: the negotiated media is moved once"
)]
pub enum CalleeAction {
    /// Send this response to where the request came from.
    Reply(SipMessage),
    /// Send this 2xx to INVITE and repeat it until ACK arrives (RFC 3261 §13.3.1.4).
    ReplyUntilAck(SipMessage),
    /// Send this 180 a moment later, as a phone would start ringing.
    Ring(SipMessage),
    /// Like `ReplyUntilAck`, after letting the phone ring for a moment (a new call).
    AnswerAfterRinging(SipMessage),
    /// An INVITE arrived (for progress output).
    Invited,
    /// Play the clip to these addresses (replacing any playback already running).
    Play(NegotiatedMedia),
    /// Stop playing: the call is over.
    Stop,
    /// A digit arrived.
    Digit(char, DtmfVia),
}

/// Where the one call is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CallState {
    Idle,
    /// 200 sent, waiting for ACK.
    Answered {
        call_id: String,
    },
    Confirmed {
        call_id: String,
    },
    Ended,
}

/// The callee's state: its single call and the digits received so far.
#[derive(Debug)]
pub struct Callee {
    clip: Arc<Clip>,
    media: CalleeMedia,
    local_tag: String,
    state: CallState,
    /// The offer we answered, to start media on ACK.
    offer: Option<NegotiatedMedia>,
    /// Where the clip is being played, so a re-INVITE that moves nothing keeps playback going.
    playing: Option<NegotiatedMedia>,
    /// Our last 2xx to INVITE, repeated if the INVITE is retransmitted.
    last_ok: Option<SipMessage>,
    sdp_version: u64,
    /// Telephone-event payload type agreed for the call.
    telephone_event_pt: Option<u8>,
    /// (SSRC, RTP timestamp) of the last RFC 4733 event counted.
    last_event: Option<(u32, u32)>,
    digits: String,
}

impl Callee {
    pub fn new(clip: Arc<Clip>, media: CalleeMedia, local_tag: String) -> Self {
        Callee {
            clip,
            media,
            local_tag,
            state: CallState::Idle,
            offer: None,
            playing: None,
            last_ok: None,
            sdp_version: 1,
            telephone_event_pt: None,
            last_event: None,
            digits: String::new(),
        }
    }

    /// Every digit received, in order, by either method.
    pub fn digits(&self) -> &str {
        &self.digits
    }

    pub fn is_answered(&self) -> bool {
        matches!(
            self.state,
            CallState::Answered { .. } | CallState::Confirmed { .. }
        )
    }

    pub fn handle_request(&mut self, request: &SipMessage) -> Vec<CalleeAction> {
        let Some(method) = request.method().cloned() else {
            return Vec::new();
        };
        let call_id = request.call_id().unwrap_or_default().to_string();
        let ours = match &self.state {
            CallState::Answered { call_id: c } | CallState::Confirmed { call_id: c } => {
                *c == call_id
            }
            CallState::Idle | CallState::Ended => false,
        };
        if method == Method::INVITE {
            return self.invite(request, call_id, ours);
        }
        if method == Method::ACK {
            if !ours {
                return Vec::new();
            }
            self.state = CallState::Confirmed { call_id };
            if self.playing == self.offer {
                return Vec::new();
            }
            self.playing = self.offer.clone();
            return self
                .offer
                .clone()
                .map(CalleeAction::Play)
                .into_iter()
                .collect();
        }
        if method == Method::BYE && ours {
            self.state = CallState::Ended;
            self.playing = None;
            return vec![self.reply(request, 200, "OK"), CalleeAction::Stop];
        }
        if method == Method::INFO && ours {
            let mut actions = vec![self.reply(request, 200, "OK")];
            if request
                .content_type()
                .is_some_and(|t| t.eq_ignore_ascii_case("application/dtmf-relay"))
                && let Some(digit) = info_digit(&request.body)
            {
                self.digits.push(digit);
                actions.push(CalleeAction::Digit(digit, DtmfVia::Info));
            }
            return actions;
        }
        if method == Method::OPTIONS {
            let mut ok = response_to(request, 200, "OK", Some(&self.local_tag));
            ok.push(Name::ALLOW, ALLOW);
            return vec![CalleeAction::Reply(ok)];
        }
        if method == Method::CANCEL && ours {
            // The INVITE was answered already: the CANCEL is acknowledged and changes nothing
            // (§9.2); the caller hangs up with BYE.
            return vec![self.reply(request, 200, "OK")];
        }
        if method == Method::CANCEL || request.to_tag().is_some() {
            return vec![self.reply(request, 481, "Call/Transaction Does Not Exist")];
        }
        vec![self.reply(request, 405, "Method Not Allowed")]
    }

    fn invite(&mut self, request: &SipMessage, call_id: String, ours: bool) -> Vec<CalleeAction> {
        let in_dialog = request.to_tag().is_some();
        if in_dialog && !ours {
            return vec![self.reply(request, 481, "Call/Transaction Does Not Exist")];
        }
        if !in_dialog && ours {
            // A retransmission (§17.2.1): repeat our answer.
            return self
                .last_ok
                .clone()
                .map(CalleeAction::ReplyUntilAck)
                .into_iter()
                .collect();
        }
        if !in_dialog && self.is_answered() {
            return vec![self.reply(request, 486, "Busy Here")];
        }
        let offer = match negotiate(&request.body) {
            Ok(offer) if offer.video.is_some() && offer.audio.is_some() => offer,
            _ => return vec![self.reply(request, 488, "Not Acceptable Here")],
        };
        let answer = self.answer_sdp(&offer);
        self.telephone_event_pt = offer.audio.as_ref().and_then(|a| a.telephone_event_pt);
        self.offer = Some(offer);
        if !in_dialog {
            self.last_event = None;
        }
        self.state = CallState::Answered { call_id };
        let mut ok = response_to(request, 200, "OK", Some(&self.local_tag));
        ok.push(Name::CONTACT, self.contact());
        ok.push(Name::ALLOW, ALLOW);
        let ok = ok.with_body("application/sdp", answer);
        self.last_ok = Some(ok.clone());
        let mut actions = Vec::new();
        if !in_dialog {
            actions.push(CalleeAction::Invited);
            actions.push(self.reply(request, 100, "Trying"));
            let mut ringing = response_to(request, 180, "Ringing", Some(&self.local_tag));
            ringing.push(Name::CONTACT, self.contact());
            actions.push(CalleeAction::Ring(ringing));
        }
        actions.push(match in_dialog {
            true => CalleeAction::ReplyUntilAck(ok),
            false => CalleeAction::AnswerAfterRinging(ok),
        });
        actions
    }

    /// One RTP datagram on the audio port: a digit if it starts a new RFC 4733 event.
    pub fn handle_audio_rtp(&mut self, datagram: &[u8]) -> Option<CalleeAction> {
        let pt = self.telephone_event_pt?;
        let event = parse_event_packet(datagram).filter(|e| e.payload_type == pt)?;
        // All packets of one event share its timestamp; the end packet is sent three times.
        let key = (event.ssrc, event.timestamp);
        if self.last_event == Some(key) {
            return None;
        }
        self.last_event = Some(key);
        let digit = event_digit(event.event)?;
        self.digits.push(digit);
        Some(CalleeAction::Digit(digit, DtmfVia::Rfc4733))
    }

    fn reply(&self, request: &SipMessage, code: u16, reason: &str) -> CalleeAction {
        CalleeAction::Reply(response_to(request, code, reason, Some(&self.local_tag)))
    }

    fn contact(&self) -> String {
        format!(
            "<sip:callee@{}>",
            sip_host(self.media.ip, self.media.sip_port)
        )
    }

    /// Our answer: the offer's payload numbers for PCMU, telephone-event and H.264 mode 1.
    fn answer_sdp(&mut self, offer: &NegotiatedMedia) -> String {
        self.sdp_version += 1;
        let ip = self.media.ip;
        let family = if ip.is_ipv4() { "IP4" } else { "IP6" };
        let mut sdp = format!(
            "v=0\r\no=callee 1 {} IN {family} {ip}\r\ns=sipcast demo callee\r\nc=IN {family} {ip}\r\nt=0 0\r\n",
            self.sdp_version
        );
        if let Some(audio) = &offer.audio {
            let te = audio.telephone_event_pt;
            let pts = match te {
                Some(te) => format!("{} {te}", audio.payload_type),
                None => audio.payload_type.to_string(),
            };
            sdp.push_str(&format!(
                "m=audio {} RTP/AVP {pts}\r\na=rtpmap:{} {}/{}\r\n",
                self.media.audio_port, audio.payload_type, audio.codec, audio.clock_rate
            ));
            if let Some(te) = te {
                sdp.push_str(&format!(
                    "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
                ));
            }
            sdp.push_str("a=rtcp-mux\r\na=sendrecv\r\n");
        }
        if let Some(video) = &offer.video {
            let pt = video.payload_type;
            sdp.push_str(&format!(
                "m=video {} RTP/AVP {pt}\r\na=rtpmap:{pt} H264/90000\r\n\
                 a=fmtp:{pt} profile-level-id={};packetization-mode=1;sprop-parameter-sets={}\r\n\
                 a=rtcp-mux\r\na=sendonly\r\n",
                self.media.video_port,
                self.clip.profile_level_id(),
                self.clip.sprop_parameter_sets(),
            ));
        }
        sdp
    }
}

fn sip_host(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

/// RFC 4733 §3.2 event codes back to DTMF characters.
fn event_digit(event: u8) -> Option<char> {
    Some(match event {
        0..=9 => char::from(b'0' + event),
        10 => '*',
        11 => '#',
        12..=15 => char::from(b'A' + event - 12),
        _ => return None,
    })
}

/// The digit of an `application/dtmf-relay` body (`Signal=5\r\nDuration=160\r\n`).
fn info_digit(body: &[u8]) -> Option<char> {
    let text = std::str::from_utf8(body).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("signal") {
            return None;
        }
        let digit = value.trim().chars().next()?.to_ascii_uppercase();
        crate::sip::core::dtmf::event_code(digit).map(|_| digit)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::core::dtmf::{DtmfTiming, Rfc4733Sender};
    use crate::sip::core::message::{Framed, parse_datagram};
    use crate::sip::core::sdp::{Direction, LocalMedia, render};

    fn callee() -> Callee {
        let media = CalleeMedia {
            ip: "127.0.0.1".parse().unwrap(),
            audio_port: 7000,
            video_port: 7002,
            sip_port: 5070,
        };
        Callee::new(
            Arc::new(Clip::bundled().unwrap()),
            media,
            "calleetag".into(),
        )
    }

    fn request(method: &str, to_tag: bool, extra: &str, body: &str) -> SipMessage {
        let to = if to_tag { ";tag=calleetag" } else { "" };
        let text = format!(
            "{method} sip:callee@127.0.0.1:5070 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK{method}\r\n\
             From: <sip:demo@127.0.0.1>;tag=caller\r\nTo: <sip:callee@127.0.0.1:5070>{to}\r\nCall-ID: call-1\r\n\
             CSeq: 1 {method}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        match parse_datagram(text.as_bytes()) {
            Ok(Framed::Message(m, _)) => *m,
            other => panic!("{other:?}"),
        }
    }

    fn offer() -> String {
        let local = LocalMedia {
            address: "127.0.0.1".parse().unwrap(),
            audio_rtp_port: Some(40000),
            video_rtp_port: Some(40002),
            direction: Direction::SendRecv,
            video_content: Default::default(),
            crypto: None,
        };
        render(&local, 1, 1, None)
    }

    fn invite_with_our_offer() -> SipMessage {
        request(
            "INVITE",
            false,
            "Content-Type: application/sdp\r\n",
            &offer(),
        )
    }

    fn replies(actions: &[CalleeAction]) -> Vec<u16> {
        actions
            .iter()
            .filter_map(|a| match a {
                CalleeAction::Reply(m)
                | CalleeAction::Ring(m)
                | CalleeAction::ReplyUntilAck(m)
                | CalleeAction::AnswerAfterRinging(m) => m.status(),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn our_own_offer_is_answered_with_h264_pcmu_and_telephone_event_that_we_negotiate() {
        let mut callee = callee();
        let invite = invite_with_our_offer();
        let actions = callee.handle_request(&invite);
        assert_eq!(replies(&actions), vec![100, 180, 200]);
        let Some(CalleeAction::AnswerAfterRinging(ok)) = actions.last() else {
            panic!("{actions:?}")
        };
        assert_eq!(ok.to_tag().as_deref(), Some("calleetag"));
        let answer = negotiate(&ok.body).unwrap();
        let audio = answer.audio.unwrap();
        assert_eq!((audio.codec.as_str(), audio.payload_type), ("PCMU", 0));
        assert_eq!(audio.telephone_event_pt, Some(101));
        assert!(audio.rtcp_mux);
        let video = answer.video.unwrap();
        assert_eq!((video.codec.as_str(), video.payload_type), ("H264", 99));
        assert_eq!(video.remote_rtp.port(), 7002);
        let mut depacketizer = crate::media::h264::H264Depacketizer::new();
        depacketizer
            .set_sprop_parameter_sets(&video.fmtp["sprop-parameter-sets"])
            .unwrap();
        assert_eq!(depacketizer.dimensions(), Some((320, 240)));

        let play = callee.handle_request(&request("ACK", true, "", ""));
        let Some(CalleeAction::Play(to)) = play.first() else {
            panic!("{play:?}")
        };
        assert_eq!(to.video.as_ref().unwrap().remote_rtp.port(), 40002);
        // A retransmitted INVITE gets the same 200; a re-INVITE that moves nothing keeps the
        // clip playing (no new Play after its ACK).
        let again = callee.handle_request(&invite);
        assert!(matches!(&again[..], [CalleeAction::ReplyUntilAck(m)] if m.body == ok.body));
        let reinvite = request(
            "INVITE",
            true,
            "Content-Type: application/sdp\r\n",
            &offer(),
        );
        assert_eq!(replies(&callee.handle_request(&reinvite)), vec![200]);
        assert!(
            callee
                .handle_request(&request("ACK", true, "", ""))
                .is_empty()
        );
        let bye = callee.handle_request(&request("BYE", true, "", ""));
        assert_eq!(replies(&bye), vec![200]);
        assert!(matches!(bye[1], CalleeAction::Stop));
    }

    #[test]
    fn digits_arrive_once_each_by_rfc4733_and_by_info() {
        let mut callee = callee();
        let invite = invite_with_our_offer();
        callee.handle_request(&invite);
        callee.handle_request(&request("ACK", true, "", ""));
        let t0 = crate::sip::core::test_origin();
        let mut sender = Rfc4733Sender::new("12", 101, 9, 1, 1000, DtmfTiming::default(), t0);
        while let Some(at) = sender.next_timeout() {
            while let Some(packet) = sender.poll_packet(at) {
                callee.handle_audio_rtp(&packet.data);
            }
        }
        let info = request(
            "INFO",
            true,
            "Content-Type: application/dtmf-relay\r\n",
            "Signal=#\r\nDuration=160\r\n",
        );
        let actions = callee.handle_request(&info);
        assert_eq!(replies(&actions), vec![200]);
        assert!(matches!(
            actions[1],
            CalleeAction::Digit('#', DtmfVia::Info)
        ));
        // Media (PCMU) on the audio port is not DTMF.
        assert!(
            callee
                .handle_audio_rtp(&[
                    0x80, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff, 0xff, 0xff
                ])
                .is_none()
        );
        assert_eq!(callee.digits(), "12#");
    }

    #[test]
    fn unknown_and_stray_requests_get_proper_errors() {
        let mut callee = callee();
        assert_eq!(
            replies(&callee.handle_request(&request("BYE", true, "", ""))),
            vec![481]
        );
        assert_eq!(
            replies(&callee.handle_request(&request("OPTIONS", false, "", ""))),
            vec![200]
        );
        assert_eq!(
            replies(&callee.handle_request(&request("MESSAGE", false, "", ""))),
            vec![405]
        );
        let no_video = "v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n";
        let invite = request(
            "INVITE",
            false,
            "Content-Type: application/sdp\r\n",
            no_video,
        );
        assert_eq!(replies(&callee.handle_request(&invite)), vec![488]);
        assert_eq!(info_digit(b"Signal= 7\r\n"), Some('7'));
        assert_eq!(info_digit(b"Signal=x\r\n"), None);
    }
}
