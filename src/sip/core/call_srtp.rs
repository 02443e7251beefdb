//! SRTP in the call's offer/answer: matching the answer's `a=crypto` lines with our offer
//! (SDES, RFC 4568 §7.1), the `media_encryption` policy, and reasons that say what was offered
//! and what the callee wanted when it refused.
//!
//! - `require`: the answer must pick one of our crypto lines on every stream; anything else
//!   ends the call with a reason (`callee does not support SRTP`, `no common crypto suite`).
//! - `prefer`: a 488/606 to the SRTP offer is retried once as plain RTP; a 2xx whose m-lines
//!   are plain `RTP/AVP` is taken as plain RTP (the callee chose it); a 2xx with `RTP/SAVP` but
//!   no usable crypto line is taken down to plain RTP by a re-INVITE. Status says which.
//! - `off`: a callee that refuses the plain offer and shows it wants SRTP (Warning text or an
//!   SDP in the 488) ends with `callee requires SRTP`.

use super::call::{CallCore, Phase};
use super::message::SipMessage;
use super::sdp::{NegotiatedMedia, NegotiatedStream, OfferedCrypto};
use super::{CallEnd, MediaEncryption};
use crate::srtp::sdes::{NegotiatedSrtp, SdesKey, SdesOffer};
use ezk_sip_types::Name;
use std::time::Instant;

/// Longest piece of a peer's Warning header quoted in a reason.
const MAX_WARNING_QUOTE: usize = 120;

/// What the answer means for SRTP.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SrtpAnswer {
    /// Use the media as negotiated (SRTP where `srtp` is set, plain elsewhere).
    Accept,
    /// `prefer` with an answer we cannot decrypt: take it as plain, then re-INVITE plain.
    ReofferPlain(String),
    /// End the call with this reason.
    Refuse(String),
}

/// How one answered stream relates to our SRTP offer.
enum StreamAnswer {
    Srtp(NegotiatedSrtp),
    /// `RTP/AVP` without crypto lines: the callee chose plain RTP.
    Plain,
    /// Crypto we cannot use (unknown tag or suite, `RTP/SAVP` without a usable line).
    NoCommonSuite(String),
}

fn answer_stream(offered: &OfferedCrypto, stream: &NegotiatedStream) -> StreamAnswer {
    let ours = SdesOffer {
        attributes: offered.for_kind(stream.kind).to_vec(),
    };
    if !stream.crypto.is_empty() {
        return match ours.accept_answer(&stream.crypto) {
            Ok(negotiated) => StreamAnswer::Srtp(negotiated),
            Err(e) => StreamAnswer::NoCommonSuite(e.to_string()),
        };
    }
    if stream.secure_profile || !stream.crypto_unusable.is_empty() {
        let unusable = if stream.crypto_unusable.is_empty() {
            "none".to_string()
        } else {
            stream.crypto_unusable.join("; ")
        };
        return StreamAnswer::NoCommonSuite(format!(
            "the callee answered {} without a usable crypto line ({unusable})",
            stream.profile()
        ));
    }
    StreamAnswer::Plain
}

/// Applies our offer to the answer in `media` (filling each stream's `srtp`) and decides.
pub(super) fn settle_answer(
    offered: Option<&OfferedCrypto>,
    encryption: MediaEncryption,
    media: &mut NegotiatedMedia,
) -> SrtpAnswer {
    let Some(offered) = offered else {
        // A plain offer: an SRTP answer to it is not one we can use.
        let secure = [&media.audio, &media.video]
            .into_iter()
            .flatten()
            .any(|s| s.secure_profile);
        return match secure {
            true => SrtpAnswer::Refuse(
                "callee requires SRTP: it answered RTP/SAVP to our RTP/AVP offer".into(),
            ),
            false => SrtpAnswer::Accept,
        };
    };
    let suites = offered.suite_names();
    let mut plain = false;
    let mut no_common = None;
    for stream in [&mut media.audio, &mut media.video].into_iter().flatten() {
        match answer_stream(offered, stream) {
            StreamAnswer::Srtp(negotiated) => stream.srtp = Some(Box::new(negotiated)),
            StreamAnswer::Plain => plain = true,
            StreamAnswer::NoCommonSuite(why) => no_common = Some(why),
        }
    }
    match (encryption, no_common, plain) {
        (_, None, false) => SrtpAnswer::Accept,
        (MediaEncryption::Require, Some(why), _) => SrtpAnswer::Refuse(format!(
            "no common crypto suite: we offered RTP/SAVP with {suites}; {why}"
        )),
        (MediaEncryption::Require, None, true) => SrtpAnswer::Refuse(format!(
            "callee does not support SRTP: it answered RTP/AVP without a=crypto to our \
             RTP/SAVP offer ({suites})"
        )),
        (_, Some(why), _) => {
            clear_srtp(media);
            SrtpAnswer::ReofferPlain(format!(
                "no common crypto suite ({why}); plain RTP after a re-INVITE"
            ))
        }
        (_, None, true) => {
            if media.encryption() == "none" {
                media.srtp_fallback =
                    Some("the callee answered plain RTP/AVP to our SRTP offer: plain RTP".into());
            }
            SrtpAnswer::Accept
        }
    }
}

fn clear_srtp(media: &mut NegotiatedMedia) {
    for stream in [&mut media.audio, &mut media.video].into_iter().flatten() {
        stream.srtp = None;
    }
}

/// A peer's new offer (re-INVITE, UPDATE) on an SRTP call: keep our key, take the peer's line
/// of the suite in use (its key may have changed, RFC 4568 §7.1.4). A stream the peer no longer
/// encrypts goes plain.
pub(super) fn carry_srtp(previous: &NegotiatedMedia, next: &mut NegotiatedMedia) {
    let pairs = [
        (&previous.audio, &mut next.audio),
        (&previous.video, &mut next.video),
    ];
    for (before, after) in pairs {
        let (Some(before), Some(after)) = (before, after.as_mut()) else {
            continue;
        };
        let Some(current) = &before.srtp else {
            continue;
        };
        after.srtp = after
            .crypto
            .iter()
            .find(|line| line.suite() == current.suite)
            .map(|line| {
                Box::new(NegotiatedSrtp {
                    suite: current.suite,
                    tag: line.tag,
                    local: current.local.clone(),
                    remote: SdesKey::from(line),
                })
            });
    }
    next.srtp_fallback = previous.srtp_fallback.clone();
}

impl CallCore {
    /// A 488 or 606 to our INVITE: `prefer` retries once without SRTP; otherwise the call ends
    /// with a reason naming what we offered and what the callee said it wants.
    pub(super) fn on_media_refused(&mut self, now: Instant, msg: &SipMessage, status: u16) {
        let phrase = msg.reason().filter(|r| !r.is_empty()).unwrap_or("");
        let response = format!("{status} {phrase}").trim_end().to_string();
        let wants = callee_wants(msg);
        if self.setup.media.crypto.is_some()
            && self.setup.encryption == MediaEncryption::Prefer
            && self.phase == Phase::AwaitingAnswer
        {
            self.srtp_fallback = Some(format!(
                "callee refused SRTP ({response}{}): plain RTP",
                wants
                    .as_deref()
                    .map(|w| format!("; {w}"))
                    .unwrap_or_default()
            ));
            self.setup.media.crypto = None;
            self.sdp_version += 1;
            let cseq = self.invite_cseq + 1;
            self.send_invite(now, cseq);
            return;
        }
        let reason = refused_reason(
            self.setup.media.crypto.as_ref(),
            self.srtp_fallback.is_some(),
            &response,
            wants.as_deref(),
        );
        let mut end = CallEnd::from_response(msg);
        end.reason = reason;
        self.end(end);
    }
}

/// The reason a refused offer ends the call with.
fn refused_reason(
    offered: Option<&OfferedCrypto>,
    after_fallback: bool,
    response: &str,
    wants: Option<&str>,
) -> String {
    let said = wants.map(|w| format!("; {w}")).unwrap_or_default();
    if let Some(offered) = offered {
        return format!(
            "callee does not support SRTP: {response} to our RTP/SAVP offer ({}){said}",
            offered.suite_names()
        );
    }
    let srtp_wanted = wants.is_some_and(|w| {
        let w = w.to_ascii_lowercase();
        ["savp", "srtp", "crypto", "encrypt", "secure"]
            .iter()
            .any(|word| w.contains(word))
    });
    if srtp_wanted {
        format!("callee requires SRTP: {response} to our RTP/AVP offer{said}")
    } else if after_fallback {
        format!("callee refused both SRTP and plain RTP: {response}{said}")
    } else {
        format!(
            "{response} to our RTP/AVP offer{said} (if the callee requires SRTP, set \
             call.media_encryption = \"prefer\" or \"require\")"
        )
    }
}

/// What a refusal says about the media the callee wants: its Warning header (RFC 3261
/// §20.43, e.g. `305 "Incompatible media format"`) and the profile and crypto of an SDP it
/// attached (RFC 3261 §21.4.26 allows one describing its capabilities).
fn callee_wants(msg: &SipMessage) -> Option<String> {
    let mut said = Vec::new();
    if let Some(warning) = msg.header(&Name::WARNING) {
        let quoted: String = warning
            .chars()
            .take(MAX_WARNING_QUOTE)
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        said.push(format!("Warning: {quoted}"));
    }
    if !msg.body.is_empty()
        && let Ok(media) = super::sdp::negotiate(&msg.body)
        && let Some(stream) = media.audio.as_ref().or(media.video.as_ref())
    {
        let suites: Vec<&str> = stream
            .crypto
            .iter()
            .map(|c| c.suite().sdes_name())
            .collect();
        let crypto = match suites.is_empty() {
            true => String::new(),
            false => format!(" with {}", suites.join(", ")),
        };
        said.push(format!("its SDP offers {}{crypto}", stream.profile()));
    }
    (!said.is_empty()).then(|| format!("callee says {}", said.join(", ")))
}
