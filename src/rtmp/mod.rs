//! RTMP/RTMPS publishing: [`MediaFrame`](crate::frame::MediaFrame)s in, FLV over RTMP out, one
//! independent publisher per target.
//!
//! - [`flv`] muxes frames into FLV tag bodies (and back); [`flv_file`] reads and writes FLV
//!   files.
//! - [`url`] splits a publish URL into host, app, tcUrl and stream key.
pub mod amf0;
pub mod flv;
pub mod flv_file;
pub mod queue;
pub mod session;
pub mod timeline;
pub mod url;
