//! DNS SRV responses (RFC 3263 next-hop lookup): any bytes parse or fail cleanly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::sip::core::dns::parse_srv_response;

fuzz_target!(|data: &[u8]| {
    let id = data.first().map_or(0, |b| {
        u16::from(*b) << 8 | u16::from(data.get(1).copied().unwrap_or(0))
    });
    if let Ok(records) = parse_srv_response(data, id) {
        assert!(records.len() <= 64);
    }
});
