//! sipcast: a declarative SIP-to-RTMP gateway.
//!
//! `broadcasts.d/*.toml` ──► [`source`] ──► [`reconcile`] ──► one [`reconcile::SupervisorHandle`] per
//! broadcast, which drives a call through the [`call`] seam; every supervisor reports into
//! [`status`], which the read-only [`api`] serves.
//!
//! Protocol cores (`sip::core`, `media`'s depacketizers and muxers, `rtmp`'s session) are sans-IO:
//! they take `now` as an argument and never touch sockets or clocks. Only drivers do.
//!
//! `unsafe` is denied everywhere but `media::speex::ffi`, the FFI to the libspeex decoder.
#![deny(unsafe_code)]

pub mod api;
pub mod backoff;
pub mod call;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod frame;
pub mod internal_tasks;
pub mod limits;
pub mod logging;
pub mod media;
pub mod output;
pub mod probe;
pub mod reconcile;
pub mod rtmp;
pub mod schedule;
pub mod secret;
pub mod sip;
pub mod source;
pub mod spec;
pub mod srtp;
pub mod status;
pub mod systemd;
