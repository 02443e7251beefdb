//! DTMF after answer and keyframe requests: the media-control side of a call.
//!
//! RFC 4733 events go out on the audio RTP socket when the answer has telephone-event and the
//! driver gave us a way to send RTP; otherwise each digit is one SIP INFO
//! (`application/dtmf-relay`), sent after the previous one is answered, 160 ms tone plus 100 ms
//! gap apart. Keyframes are asked for with RFC 5168 `picture_fast_update`.

use super::call::{CallCore, DtmfState, Phase, Purpose};
use super::dtmf::{self, Rfc4733Sender};
use super::{CallEvent, DtmfMethod, Output};
use crate::srtp::SrtpSession;
use bytes::Bytes;
use ezk_sip_types::Method;
use rand::Rng;
use std::time::Instant;

impl CallCore {
    /// Asks the peer for a keyframe with SIP INFO (RFC 5168 picture_fast_update).
    pub fn request_keyframe(&mut self, now: Instant) {
        if self.phase != Phase::Established {
            return;
        }
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n<media_control>\r\n  <vc_primitive>\r\n    <to_encoder>\r\n      <picture_fast_update/>\r\n    </to_encoder>\r\n  </vc_primitive>\r\n</media_control>\r\n";
        self.send_in_dialog(
            now,
            Method::INFO,
            Purpose::KeyframeInfo,
            Some(("application/media_control+xml", body.to_string())),
        );
    }

    pub(super) fn drive_dtmf(&mut self, now: Instant) {
        if let DtmfState::NotStarted { at } = self.dtmf {
            if at > now {
                return;
            }
            let audio = self.negotiated.audio.as_ref();
            let rtp = match (self.setup.dtmf_method, audio) {
                (DtmfMethod::Rfc4733, Some(a)) if self.setup.can_send_rtp => {
                    let srtp = match &a.srtp {
                        Some(negotiated) => SrtpSession::new(negotiated).ok().map(Box::new),
                        None => None,
                    };
                    // An encrypted call never sends events in the clear: INFO instead.
                    let usable = a.srtp.is_none() || srtp.is_some();
                    a.telephone_event_pt
                        .filter(|_| usable)
                        .map(|pt| (pt, a.remote_rtp, srtp))
                }
                _ => None,
            };
            self.dtmf = match rtp {
                Some((pt, to, srtp)) => {
                    let (ssrc, seq, ts) = (self.rng.random(), self.rng.random(), self.rng.random());
                    DtmfState::Rtp {
                        sender: Rfc4733Sender::new(
                            &self.setup.dtmf_digits,
                            pt,
                            ssrc,
                            seq,
                            ts,
                            self.setup.dtmf_timing,
                            now,
                        ),
                        to,
                        srtp,
                    }
                }
                None => DtmfState::Info {
                    next: 0,
                    at: Some(now),
                },
            };
        }
        match &mut self.dtmf {
            DtmfState::Rtp { sender, to, srtp } => {
                let to = *to;
                while let Some(packet) = sender.poll_packet(now) {
                    let data = match srtp {
                        Some(srtp) => {
                            let mut data =
                                Vec::with_capacity(packet.data.len() + srtp.max_trailer_len());
                            data.extend_from_slice(&packet.data);
                            // Only fails past 2^48 packets; such a packet is not sent.
                            if srtp.protect_rtp(&mut data).is_err() {
                                continue;
                            }
                            Bytes::from(data)
                        }
                        None => packet.data,
                    };
                    self.outputs.push_back(Output::Rtp { to, data });
                    if let Some(digit) = packet.completes {
                        self.dtmf_sent.push(digit);
                        self.outputs.push_back(Output::Event(CallEvent::DtmfSent {
                            so_far: self.dtmf_sent.clone(),
                        }));
                    }
                }
                if sender.is_done() {
                    self.dtmf = DtmfState::Done;
                }
            }
            DtmfState::Info { next, at } if at.is_some_and(|t| t <= now) => {
                let digits: Vec<char> = self.setup.dtmf_digits.chars().collect();
                let mut index = *next;
                while digits.get(index) == Some(&',') {
                    index += 1;
                }
                let pauses = (index - *next) as u32;
                if pauses > 0 {
                    self.dtmf = DtmfState::Info {
                        next: index,
                        at: Some(now + dtmf::PAUSE * pauses),
                    };
                    return;
                }
                match digits.get(index) {
                    None => self.dtmf = DtmfState::Done,
                    Some(&digit) if dtmf::event_code(digit).is_some() => {
                        self.dtmf = DtmfState::Info {
                            next: index + 1,
                            at: None,
                        };
                        let body = dtmf::info_body(digit, self.setup.dtmf_timing.tone);
                        self.send_in_dialog(
                            now,
                            Method::INFO,
                            Purpose::DtmfInfo(digit),
                            Some(("application/dtmf-relay", body)),
                        );
                    }
                    Some(_) => {
                        self.dtmf = DtmfState::Info {
                            next: index + 1,
                            at: Some(now),
                        }
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn info_digit_done(&mut self, now: Instant) {
        if let DtmfState::Info { next, .. } = self.dtmf {
            let wait = self.setup.dtmf_timing.tone + self.setup.dtmf_timing.gap;
            self.dtmf = DtmfState::Info {
                next,
                at: Some(now + wait),
            };
        }
    }
}
