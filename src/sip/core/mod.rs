//! The sans-IO SIP core: no sockets, no clocks, no tokio. Time comes in as `now`.
//!
//! [`message`] frames and parses, [`digest`] and [`auth`] answer challenges, [`transaction`]
//! retransmits and times out, [`dialog`] builds in-dialog requests, [`call`] runs one call and
//! [`registration`] one binding. [`sdp`] and [`dtmf`] are the media-facing pieces.
pub mod auth;
pub mod call;
mod call_dtmf;
mod call_peer;
mod call_srtp;
pub mod dialog;
pub mod digest;
pub mod dns;
pub mod dtmf;
pub mod framing;
pub mod keepalive;
pub mod limit;
pub mod message;
pub mod registration;
pub mod sdp;
pub mod transaction;

pub use auth::Authenticator;

use bytes::Bytes;
use rand::Rng;
use rand::rngs::StdRng;
use std::net::SocketAddr;
use std::time::Duration;

/// How digits are sent after answer: the spec's `call.dtmf_method` (RFC 4733 events on the
/// audio RTP stream, falling back to SIP INFO if the answer has none; or INFO).
pub use crate::spec::DtmfMethod;

/// `call.media_encryption`: SRTP required, preferred (plain RTP when refused) or off.
pub use crate::spec::MediaEncryption;

/// The longest Retry-After we pass on: a peer's (or a stranger's) "come back in 136 years"
/// must not park a broadcast for longer than an hour.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Why a call (or registration) ended, for the broadcast status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallEnd {
    /// The SIP status that ended it, if one did (486, 404, 408 for our own timeouts, …).
    pub sip_status: Option<u16>,
    pub reason: String,
    /// Retry-After of the final response (503 and friends), for the redial backoff.
    pub retry_after: Option<Duration>,
    /// True when the peer hung up an established call (BYE).
    pub by_remote: bool,
}

impl CallEnd {
    pub fn local(reason: impl Into<String>) -> Self {
        CallEnd {
            sip_status: None,
            reason: reason.into(),
            retry_after: None,
            by_remote: false,
        }
    }

    pub fn remote(reason: impl Into<String>) -> Self {
        CallEnd {
            by_remote: true,
            ..CallEnd::local(reason)
        }
    }

    pub fn status(code: u16, reason: impl Into<String>) -> Self {
        CallEnd {
            sip_status: Some(code),
            ..CallEnd::local(reason)
        }
    }

    /// From a final response: status, reason phrase and Retry-After.
    pub fn from_response(msg: &message::SipMessage) -> Self {
        let code = msg.status().unwrap_or(500);
        let phrase = msg
            .reason()
            .filter(|r| !r.is_empty())
            .unwrap_or("no reason phrase");
        CallEnd {
            retry_after: msg
                .header_u32(&ezk_sip_types::Name::RETRY_AFTER)
                .map(|s| Duration::from_secs(u64::from(s)).min(MAX_RETRY_AFTER)),
            ..CallEnd::status(code, format!("{code} {phrase}"))
        }
    }
}

/// What a call reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallEvent {
    Registering,
    Registered,
    Trying,
    Ringing {
        status: u16,
    },
    Established {
        call_id: String,
        negotiated: sdp::NegotiatedMedia,
    },
    DtmfSent {
        so_far: String,
    },
    MediaChanged(sdp::NegotiatedMedia),
    Ended(CallEnd),
}

/// What a core asks its driver to do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per SIP message or DTMF event, never per media packet"
)]
pub enum Output {
    /// Send SIP bytes to `to`, or to the call's next hop (outbound proxy or Request-URI host).
    Send {
        to: Option<SocketAddr>,
        data: Bytes,
    },
    /// Send an RTP packet from the audio RTP socket (symmetric RTP).
    Rtp {
        to: SocketAddr,
        data: Bytes,
    },
    Event(CallEvent),
}

/// A random token for tags, branches and cnonces.
pub fn random_token(rng: &mut StdRng, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A fixed origin for virtual-time tests; never advanced by reading the clock again.
#[cfg(test)]
#[allow(clippy::disallowed_methods)]
pub(crate) fn test_origin() -> std::time::Instant {
    std::time::Instant::now()
}

#[cfg(test)]
mod call_tests;
