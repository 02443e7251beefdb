//! The SIP engine's whole datagram path, as the daemon runs it: parse, route by Call-ID into
//! the live call's transactions and dialog (or a stateless answer), timers, hang-up and
//! shutdown. The engine has one call to a callee, answered or not (first input byte).
//!
//! The rest of the input is up to 16 datagrams separated by NUL bytes. In each, `$B`, `$F`,
//! `$C` and `$T` become the live INVITE's branch, our From tag, the Call-ID and the callee's
//! To tag, so the fuzzer reaches in-dialog paths without guessing random tokens. Nothing may
//! panic, and what the engine sends stays bounded whatever arrives.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::sip::core::message::{Framed, parse_datagram};
use sipcast::sip::driver::harness::{CALLEE, EngineHarness, LIVE_CALL_ID};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    #[allow(clippy::disallowed_methods)] // a fixed origin; time only moves by the offsets below
    *ORIGIN.get_or_init(Instant::now)
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut h = EngineHarness::new(origin());
    if mode & 1 == 0 {
        h.answer();
    }
    let (branch, from_tag) = match h.invite().map(|d| parse_datagram(d)) {
        Some(Ok(Framed::Message(invite, _))) => (
            invite.branch().unwrap_or_default(),
            invite.from_tag().unwrap_or_default(),
        ),
        _ => return,
    };
    let callee: SocketAddr = CALLEE.parse().unwrap();
    let stranger: SocketAddr = "203.0.113.66:5060".parse().unwrap();
    let step = Duration::from_millis(u64::from(mode >> 4) * 150);
    for (i, datagram) in rest.split(|&b| b == 0).take(16).enumerate() {
        let mut bytes = replace(datagram, b"$B", branch.as_bytes());
        bytes = replace(&bytes, b"$F", from_tag.as_bytes());
        bytes = replace(&bytes, b"$C", LIVE_CALL_ID.as_bytes());
        bytes = replace(&bytes, b"$T", b"callee");
        let source = if (mode >> 1) & (1 << (i % 3)) != 0 { stranger } else { callee };
        h.datagram(source, &bytes);
        h.advance(step);
    }
    h.advance(Duration::from_secs(40));
    if mode & 2 == 0 {
        h.hangup();
        h.advance(Duration::from_secs(5));
    }
    h.shutdown();
    h.advance(Duration::from_secs(5));
    assert!(h.is_idle(), "the engine did not finish within its shutdown deadline");
    // 16 datagrams can cause a few answers each plus the call's own traffic, never a flood.
    assert!(h.sent.len() < 400, "{} messages sent", h.sent.len());
});
