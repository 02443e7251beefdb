//! The SIP user agent (issue 6): a sans-IO core ([`core`]: messages, digest, transactions,
//! dialogs, calls, registrations, SDP, DTMF, DNS SRV) and a thin tokio [`driver`] that owns the
//! sockets.
//!
//! The rest of sipcast binds one [`UserAgent`] per daemon and dials once per call attempt, then
//! reads [`CallEvent`]s until [`CallEvent::Ended`], which is always the last one:
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use sipcast::sip::*;
//! use std::time::Duration;
//!
//! let ua = UserAgent::bind(UaConfig::new("0.0.0.0:5060".parse()?)).await?;
//! let (call, mut events) = ua.dial(CallConfig {
//!     account: Account {
//!         user: "1001".into(),
//!         domain: "pbx.example.com".into(),
//!         auth_user: None,
//!         password: None,
//!         register: false,
//!         registrar: None,
//!         proxy: None,
//!         transport: Transport::Udp,
//!         display_name: None,
//!         tls: Default::default(),
//!     },
//!     to: "sip:311705123@zoomcrc.com".into(),
//!     answer_timeout: Duration::from_secs(60),
//!     local_media: LocalMedia { audio_rtp_port: Some(40000), video_rtp_port: Some(40002), ..Default::default() },
//!     dtmf: DtmfPlan { digits: "311705123#".into(), method: DtmfMethod::Rfc4733, delay: Duration::from_secs(1) },
//!     dtmf_rtp: None, // the media path's audio RTP socket, for RFC 4733
//! });
//! while let Some(event) = events.recv().await {
//!     match event {
//!         CallEvent::Established { negotiated, .. } => { /* start the media path */ }
//!         CallEvent::Ended(end) => { /* end.sip_status, end.reason, end.retry_after */ break }
//!         _ => {}
//!     }
//! }
//! call.hangup().await;
//! ua.shutdown().await;
//! # Ok(())
//! # }
//! ```
pub mod core;
pub mod driver;

pub use self::core::dialog::Transport;
pub use self::core::sdp::{Direction, MediaKind, NegotiatedMedia, NegotiatedStream, VideoContent};
pub use self::core::transaction::TimerConfig;
pub use self::core::{CallEnd, CallEvent, DtmfMethod, MediaEncryption};
pub use driver::{
    Account, CallConfig, CallHandle, ClientTls, DtmfPlan, LocalMedia, TlsListen, UaConfig, UaError,
    UserAgent,
};
