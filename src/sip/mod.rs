//! The SIP user agent (issue 6): a sans-IO core ([`core`]: messages, digest, transactions,
//! dialogs, calls, registrations, SDP, DTMF) and a thin tokio [`driver`] that owns the sockets.
//!
//! The rest of sipcast calls [`UserAgent::bind`] once and [`UserAgent::dial`] per attempt, then
//! reads [`CallEvent`]s until [`CallEvent::Ended`].
pub mod core;
pub mod driver;

pub use self::core::dialog::Transport;
pub use self::core::sdp::{Direction, MediaKind, NegotiatedMedia, NegotiatedStream};
pub use self::core::transaction::TimerConfig;
pub use self::core::{CallEnd, CallEvent, DtmfMethod};
pub use driver::{
    Account, CallConfig, CallHandle, DtmfPlan, LocalMedia, UaConfig, UaError, UserAgent,
};
