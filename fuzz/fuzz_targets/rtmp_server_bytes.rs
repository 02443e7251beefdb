//! Arbitrary server bytes into the publish session: first byte 0 feeds them to the handshake,
//! otherwise the session completes a real handshake first and gets them as RTMP chunks.
//!
//! The session turns panics inside `rml_rtmp` (its chunk parser has some) into protocol errors.
//! libFuzzer's panic hook would abort on those caught panics too, so a quiet hook replaces it:
//! a panic that escapes the session still reaches libfuzzer-sys's `catch_unwind` and is
//! reported as a crash.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use sipcast::rtmp::session::{PublishSession, SessionParams};
use sipcast::secret::Secret;

fn session(now: Instant) -> PublishSession {
    let params = SessionParams {
        app: "live".into(),
        tc_url: "rtmp://fuzz/live".into(),
        stream_key: Secret::new("key"),
        setup_timeout: Duration::from_secs(10),
    };
    PublishSession::new(now, params).expect("session starts")
}

/// Runs the handshake against rml_rtmp's server side; returns false if it did not finish.
fn handshake(client: &mut PublishSession, now: Instant) -> bool {
    let mut server = Handshake::new(PeerType::Server);
    for _ in 0..4 {
        let Some(bytes) = client.poll_transmit() else {
            return false;
        };
        let reply = match server.process_bytes(&bytes) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => response_bytes,
            Ok(HandshakeProcessResult::Completed { .. }) => return true,
            Err(_) => return false,
        };
        if client.handle_input(now, &reply).is_err() {
            return false;
        }
    }
    false
}

static QUIET_PANICS: std::sync::Once = std::sync::Once::new();

fuzz_target!(|data: &[u8]| {
    QUIET_PANICS.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    #[allow(clippy::disallowed_methods)] // fuzzing needs some instant; the session only compares
    let now = Instant::now();
    let mut client = session(now);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode != 0 && !handshake(&mut client, now) {
        return;
    }
    // Feed in two pieces to exercise partial input.
    let (a, b) = rest.split_at(rest.len() / 2);
    for piece in [a, b] {
        if client.handle_input(now, piece).is_err() {
            return;
        }
        while client.poll_transmit().is_some() {}
        while client.poll_event().is_some() {}
    }
});
