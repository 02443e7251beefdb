//! RTMP/RTMPS publishing: [`MediaFrame`](crate::frame::MediaFrame)s in, FLV over RTMP out, one
//! independent publisher per target.
//!
//! - [`flv`] muxes frames into FLV tag bodies (and back); [`flv_file`] reads and writes FLV
//!   files; [`amf0`] writes the script data we send ourselves.
//! - [`url`] splits a publish URL into host, app, tcUrl and stream key, and redacts it.
//! - [`session`] is the sans-IO publish session for one connection (on `rml_rtmp`).
//! - [`queue`] is the bounded per-target queue and its drop policy; [`timeline`] decides what
//!   each connection sends first and the timestamps on the wire.
//! - [`publisher`] is the tokio driver per target (TCP or [`tls`], reconnect with [`crate::backoff`]),
//!   reporting a [`status::TargetStatus`].
//!
//! ```no_run
//! # async fn example(frame: sipcast::frame::MediaFrame) {
//! use sipcast::rtmp::{PublishTarget, PublisherConfig, spawn};
//! let handle = spawn(
//!     PublishTarget { url: "rtmp://127.0.0.1/live/key".into(), stream_key: None, ca_file: None },
//!     PublisherConfig::default(),
//! );
//! let mut keyframes = handle.keyframe_requests(); // ask the caller for an IDR on each change
//! handle.send(frame);                             // never blocks
//! let status = handle.status().borrow().clone();  // state, bytes_sent, reconnects, dropped_frames, error
//! handle.stop().await;                            // FCUnpublish, deleteStream, close
//! # }
//! ```

pub mod amf0;
pub mod flv;
pub mod flv_file;
pub mod publisher;
pub mod queue;
pub mod session;
pub mod status;
pub mod timeline;
pub mod tls;
pub mod url;

pub use publisher::{
    FrameSender, PublishError, PublishTarget, PublisherConfig, PublisherHandle, spawn,
};
pub use status::{Showing, TargetState, TargetStatus};
