//! Spec loading never panics, whatever the bytes: the same entry point as the daemon and
//! `sipcast validate`, plus the file-name filter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sipcast::spec::parse("fuzz.toml", text);
        let _ = sipcast::spec::broadcast_name(text);
    }
});
