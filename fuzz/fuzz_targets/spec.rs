//! A spec file's bytes, whatever they are, go through the function the directory source uses
//! (`spec::parse_bytes`: size bound, UTF-8, TOML, validation) without panicking; every error
//! points inside the file; an accepted schedule evaluates, lazily and bounded, without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match sipcast::spec::parse_bytes("fuzz.toml", data) {
        Err(errors) => {
            let lines = data.iter().filter(|&&b| b == b'\n').count() + 1;
            for e in &errors.0 {
                assert!(e.line >= 1 && e.line <= lines, "line {} of {lines}", e.line);
                assert!(e.col >= 1 && e.col <= data.len() + 1, "col {}", e.col);
                assert_eq!(e.file, "fuzz.toml");
            }
        }
        Ok(spec) => {
            if let Some(schedule) = &spec.schedule {
                assert!(schedule.rules().len() <= sipcast::schedule::MAX_WINDOWS);
                for now in [1_793_000_000, 1_806_000_000] {
                    let now = jiff::Timestamp::from_second(now).unwrap_or_default();
                    let state = schedule.state_at(now);
                    if let Some(edge) = state.next_edge() {
                        assert!(edge > now, "edge {edge} not after {now}");
                    }
                    let _ = schedule.windows(now, 3);
                }
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = sipcast::spec::broadcast_name(text);
    }
});
