//! What every real-peer test needs: a clear failure when a peer program is missing, and a
//! polite stop (SIGTERM, so the peer can flush logs or hang up, then SIGKILL).
#![allow(dead_code)]

#[path = "../../benches/common/host.rs"]
pub mod host;
pub mod kamailio;
pub mod tone;

use std::process::Child;
use std::time::Duration;

/// Fails the test with a clear message when `program` (ffmpeg, ffprobe, nginx, sipp) is missing.
pub fn require(program: &str) {
    assert!(
        host::installed(program),
        "{program} is required for this test (install it; CI does)"
    );
}

/// SIGTERM, up to `grace` for the process to exit, then SIGKILL. Always reaps it.
pub fn stop(child: &mut Child, grace: Duration) {
    host::stop(child, grace);
}
