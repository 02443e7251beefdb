//! The media path: RTP in, [`crate::frame::MediaFrame`]s out.
//!
//! Sans-IO cores, one file per concern: [`rtp`] and [`rtcp`] wire formats, the per-SSRC
//! [`reorder`] buffer (in [`source`], per track), the [`h264`] depacketizer with its [`sps`]
//! reader and [`avcc`] record, audio decoding ([`g711`], [`decode`]), [`resample`] and AAC
//! encoding ([`aac`]), the [`timeline`] that puts every track on one millisecond clock and the
//! [`keyframe`] request policy. [`audio`] and [`video`] are the two track paths, [`receiver`]
//! ties them into one machine per call behind one datagram entry point (with the source
//! [`latch`] that keeps strangers out), [`encryption`] decrypts SRTP before any of that, and
//! [`session`] is their tokio driver.
//!
//! The media task wakes on a 100 ms tick ([`session::RECEIVE_EVERY`]), not per packet: it takes
//! the RTP sockets' waiting datagrams in [`batch`]es (one `recvmmsg` each, stamped with the
//! kernel's arrival time) and hands them to the receiver merged in [`arrival`] order across
//! the sockets; only RTCP, a packet a second, wakes it on arrival (after the RTP waiting before it).
//!
//! A frame crosses two tasks on its way out: the media task receives the datagrams, runs them
//! through the receiver and hands each finished frame to a [`crate::frame::FrameSink`] — in the
//! daemon the broadcast's output, which switches, stamps and queues it for every target under
//! one short lock — and each target's publisher task writes it to its connection. The call's
//! signalling task never touches media ([`MediaSession::start_into`]).
//!
//! How a test or a benchmark uses it (frames through a channel instead of an output):
//!
//! ```no_run
//! # async fn call(remote: sipcast::media::RemoteMedia) -> Result<(), sipcast::media::SessionError> {
//! use sipcast::media::{AudioOutputs, LocalMedia, MediaConfig, MediaEvent, MediaSession};
//! // Before the SDP offer: bind the ports it will name.
//! let local = LocalMedia::bind("0.0.0.0".parse().unwrap(), 16_384..=32_767, true).await?;
//! let (audio_port, video_port) = (local.audio.rtp_port(), local.video.as_ref().map(|v| v.rtp_port()));
//! // After the answer: `remote` is the negotiated SDP mapped onto RemoteMedia.
//! let config = MediaConfig {
//!     audio_outputs: AudioOutputs { aac: Some(Default::default()), copy: true },
//!     ..Default::default()
//! };
//! let (session, mut outputs) = MediaSession::start(local, remote, config)?;
//! let dtmf_socket = session.audio_rtp_socket(); // RFC 4733 from the port the peer latched (non-blocking std socket)
//! while let Some(frame) = outputs.frames.recv().await {
//!     // Fan out: AAC audio to `aac` targets, PCMU/PCMA/Speex audio to `copy` targets,
//!     // everything else to all. On a target's keyframe request: session.request_keyframe().
//! #   let _ = (&frame, &dtmf_socket, audio_port, video_port);
//! }
//! if let Ok(MediaEvent::KeyframeUnanswered) = outputs.events.try_recv() {
//!     // send SIP INFO picture_fast_update
//! }
//! let watchdog = session.status(); // last_rtp_at / last_rtcp_at for media_timeout, stats
//! # let _ = watchdog;
//! session.stop().await; // RTCP BYE
//! # Ok(()) }
//! ```

pub mod aac;
pub mod annexb;
pub mod arrival;
pub mod audio;
pub mod avcc;
pub mod batch;
pub mod decode;
pub mod encryption;
pub mod fdk;
pub mod g711;
pub mod h264;
pub mod keyframe;
pub mod latch;
pub mod opus;
pub mod receiver;
pub mod remote;
pub mod reorder;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod source;
pub mod speech_aac;
pub mod speex;
pub mod sps;
pub mod stats;
pub mod timeline;
pub mod video;

pub use encryption::MediaSrtp;
pub use latch::MediaPort;
pub use receiver::{MAX_DATAGRAM, MediaError, MediaEvent, Verdict};
pub use remote::{AudioOutputs, MediaConfig, RemoteMedia, RemoteStream};
pub use session::{LocalMedia, MediaOutputs, MediaSession, MediaStatus, SessionError};
pub use stats::{DropReason, DroppedDatagrams, MediaStats, TrackStats};
