//! The seam between a broadcast's supervisor and one call attempt.
//!
//! A [`Dialer`] starts an attempt and hands back a [`CallSession`]: a command sender (hang up,
//! retarget RTMP) and a stream of [`CallEvent`]s that ends with exactly one
//! [`CallEvent::Ended`]. The supervisor never runs two sessions at once for one broadcast: it
//! waits for `Ended` (or the event stream closing) before dialing again.

pub mod live;
pub mod scripted;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::spec::{BroadcastSpec, RtmpTarget};

/// What the supervisor asks for: dial this broadcast's call and publish it.
#[derive(Clone, Debug)]
pub struct CallRequest {
    pub broadcast: String,
    pub spec: Arc<BroadcastSpec>,
    /// 1 for the first attempt since the broadcast became desired live.
    pub attempt: u64,
    /// Where the call's media goes: the broadcast's output, which outlives the attempt.
    /// `None` when nothing publishes (no output policy allows it yet, or tests).
    pub output: Option<crate::output::OutputSink>,
}

/// Orders for a running attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum CallCommand {
    /// Send BYE (or CANCEL), close the streams, then report `Ended`.
    Hangup,
    /// The targets changed: produce the audio flavours they want, keeping the call up.
    UpdateTargets(Vec<RtmpTarget>),
}

/// Progress of an attempt, in the order it happens.
#[derive(Clone, Debug, PartialEq)]
pub enum CallEvent {
    Registering,
    Dialing {
        call_id: String,
    },
    Ringing {
        sip_status: u16,
    },
    Established {
        audio_codec: Option<String>,
        video_codec: Option<String>,
    },
    /// The DTMF digits sent so far.
    DtmfSent(String),
    /// The call's media since it began.
    Media(crate::status::CallMedia),
    /// The attempt is over; nothing follows.
    Ended(CallEnd),
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq)]
pub struct CallEnd {
    pub cause: EndCause,
    pub sip_status: Option<u16>,
    /// For people: "486 Busy Here", "no RTP or RTCP for 30s", …
    pub reason: String,
    /// From a 503's Retry-After: wait at least this long before redialing.
    pub retry_after: Option<Duration>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// We hung up because we were asked to.
    LocalHangup,
    /// The far end sent BYE after the call was established.
    RemoteHangup,
    /// The attempt failed (rejected, timed out, media dead, missing capability).
    Failed,
}

impl CallEnd {
    pub fn failed(sip_status: Option<u16>, reason: impl Into<String>) -> Self {
        CallEnd {
            cause: EndCause::Failed,
            sip_status,
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// The metrics result class of an attempt that ended this way.
    pub fn result_class(&self, was_established: bool) -> &'static str {
        match (self.cause, self.sip_status) {
            _ if was_established => "established",
            (EndCause::Failed, Some(408)) | (EndCause::Failed, None) => "failed",
            (EndCause::Failed, Some(486 | 600)) => "busy",
            (EndCause::Failed, Some(_)) => "rejected",
            _ => "cancelled",
        }
    }
}

/// One running attempt, as the supervisor holds it.
pub struct CallSession {
    pub commands: mpsc::UnboundedSender<CallCommand>,
    pub events: mpsc::UnboundedReceiver<CallEvent>,
    /// Cancels the attempt's task, dropping its publishers and sockets: the supervisor's
    /// backstop when a hang-up overruns its grace (`None` where nothing needs cancelling).
    pub abort: Option<tokio::task::AbortHandle>,
}

/// Starts call attempts. One per daemon; shared by every supervisor.
pub trait Dialer: Send + Sync + 'static {
    fn dial(&self, request: CallRequest) -> CallSession;

    /// How a scheduled broadcast is preflighted (`sipcast probe`'s checks) as it becomes
    /// desired live, at `lead` before its window; `None`, the default: not at all (dialers that
    /// reach no real network).
    fn preflight(&self) -> Option<crate::probe::ProbeOptions> {
        None
    }
}

/// The dialer used until the SIP user agent and media path are wired in: every attempt fails
/// at once with a reason that says so, so status never pretends a call is up.
pub struct UnavailableDialer;

impl Dialer for UnavailableDialer {
    fn dial(&self, _request: CallRequest) -> CallSession {
        let (commands, _) = mpsc::unbounded_channel();
        let (tx, events) = mpsc::unbounded_channel();
        let _ = tx.send(CallEvent::Ended(CallEnd::failed(
            None,
            "this build has no SIP user agent yet: calls cannot be placed",
        )));
        CallSession {
            commands,
            events,
            abort: None,
        }
    }
}
