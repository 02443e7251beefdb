//! The SRTP per-packet path allocates nothing: after the session is made, protecting and
//! unprotecting audio-sized and video-sized RTP packets and RTCP compounds never calls the
//! allocator (a counting allocator watches). It also prints the cost per packet, a figure for
//! the README, not an assertion (run with `--release` for meaningful numbers).

mod alloc_support;

use alloc_support::{ALLOCATIONS, COUNTING};

use std::sync::atomic::Ordering;

use sipcast::srtp::{MasterKey, SrtpSession, SrtpSuite};

#[global_allocator]
static GLOBAL: alloc_support::Counting = alloc_support::Counting;

const PACKETS: u32 = 20_000;

fn rtp_into(buffer: &mut Vec<u8>, seq: u16, payload_len: usize) {
    buffer.clear();
    buffer.extend_from_slice(&[0x80, 96]);
    buffer.extend_from_slice(&seq.to_be_bytes());
    buffer.extend_from_slice(&(u32::from(seq) * 3000).to_be_bytes());
    buffer.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    buffer.resize(12 + payload_len, 0x5a);
}

/// Protects and unprotects `PACKETS` packets of `payload_len` bytes (through a sequence wrap);
/// returns (allocations, ns per protect, ns per unprotect).
fn run(suite: SrtpSuite, payload_len: usize) -> (u64, f64, f64) {
    let key = MasterKey::generate(suite).unwrap();
    let mut sender = SrtpSession::from_keys(&key, None, &key, None).unwrap();
    let mut receiver = SrtpSession::from_keys(&key, None, &key, None).unwrap();
    let mut packets: Vec<Vec<u8>> = (0..PACKETS)
        .map(|_| Vec::with_capacity(12 + payload_len + sender.max_trailer_len()))
        .collect();
    let first_seq = 60_000u16;

    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    for (n, packet) in packets.iter_mut().enumerate() {
        rtp_into(packet, first_seq.wrapping_add(n as u16), payload_len);
    }
    let start = sipcast::clock::monotonic().into_std();
    for packet in packets.iter_mut() {
        sender.protect_rtp(packet).unwrap();
    }
    let protect = start.elapsed();
    let start = sipcast::clock::monotonic().into_std();
    for packet in packets.iter_mut() {
        receiver.unprotect_rtp(packet).unwrap();
    }
    let unprotect = start.elapsed();
    // RTCP both ways, reusing the first buffers.
    for packet in packets.iter_mut().take(1000) {
        packet.clear();
        packet.extend_from_slice(&[0x81, 201, 0, 7, 0x12, 0x34, 0x56, 0x78]);
        packet.resize(32, 0);
        sender.protect_rtcp(packet).unwrap();
        receiver.unprotect_rtcp(packet).unwrap();
    }
    COUNTING.store(false, Ordering::Relaxed);
    let per = |d: std::time::Duration| d.as_nanos() as f64 / f64::from(PACKETS);
    (
        ALLOCATIONS.load(Ordering::Relaxed),
        per(protect),
        per(unprotect),
    )
}

#[test]
fn srtp_per_packet_path_never_allocates() {
    for suite in SrtpSuite::PREFERENCE {
        for payload_len in [160, 1200] {
            let (allocations, protect_ns, unprotect_ns) = run(suite, payload_len);
            eprintln!(
                "{suite} {payload_len:>4}-byte payload: protect {protect_ns:.0} ns, \
                 unprotect {unprotect_ns:.0} ns per packet, {allocations} allocations"
            );
            assert_eq!(allocations, 0, "{suite}, {payload_len}-byte payloads");
        }
    }
}
