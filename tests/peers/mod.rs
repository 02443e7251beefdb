//! What every real-peer test needs: a clear failure when a peer program is missing, and a
//! polite stop (SIGTERM, so the peer can flush logs or hang up, then SIGKILL).
#![allow(dead_code)]

pub mod kamailio;
pub mod tone;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Fails the test with a clear message when `program` (ffmpeg, ffprobe, nginx, sipp) is missing.
pub fn require(program: &str) {
    let found = Command::new(program)
        .arg("-version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "{program} is required for this test (install it; CI does)"
    );
}

/// SIGTERM, up to `grace` for the process to exit, then SIGKILL. Always reaps it.
pub fn stop(child: &mut Child, grace: Duration) {
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < grace {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(step);
        waited += step;
    }
    let _ = child.kill();
    let _ = child.wait();
}
