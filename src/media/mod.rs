//! The media path: RTP in, [`crate::frame::MediaFrame`]s out.
//!
//! Sans-IO cores, one file per concern: [`rtp`] and [`rtcp`] wire formats, the per-SSRC
//! [`reorder`] buffer, the [`h264`] depacketizer with its [`sps`] reader and [`avcc`] record,
//! audio decoding ([`g711`]) and AAC encoding ([`aac`]), the [`timeline`] that puts every track
//! on one millisecond clock and the [`keyframe`] request policy.

pub mod aac;
pub mod audio;
pub mod avcc;
pub mod decode;
pub mod g711;
pub mod h264;
pub mod keyframe;
pub mod receiver;
pub mod remote;
pub mod reorder;
pub mod resample;
pub mod rtcp;
pub mod rtp;
pub mod session;
pub mod source;
pub mod sps;
pub mod stats;
pub mod timeline;
pub mod video;

pub use receiver::{MediaError, MediaEvent};
pub use remote::{AudioOutputs, MediaConfig, RemoteMedia, RemoteStream};
pub use session::{LocalMedia, MediaOutputs, MediaSession, MediaStatus, SessionError};
pub use stats::{MediaStats, TrackStats};
