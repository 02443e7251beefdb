//! Cron expressions as the daemon meets them: inside a spec's `[schedule]` (through
//! `spec::parse_bytes`, the directory source's entry point), then evaluated at an instant the
//! input chooses. Also straight into the cron and time parsers, whose error offsets must point
//! inside the input. Nothing may panic; an evaluation's next edge is always in the future.
//!
//! Input: 4 bytes of instant (seconds after 2026-01-01), 2 bytes of duration (minutes), 1 byte
//! of lead (minutes, low 7 bits; the high bit adds an always-open `* * * * *` window to merge
//! with), then the expression.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::schedule::{CronExpr, parse_time};

const BASE: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fuzz_target!(|data: &[u8]| {
    let [a, b, c, d, e, f, lead, rest @ ..] = data else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let offset = i64::from(u32::from_le_bytes([*a, *b, *c, *d]));
    let minutes = u64::from(u16::from_le_bytes([*e, *f])).max(1);
    let always = if lead & 0x80 != 0 {
        ", { cron = \"* * * * *\", duration = \"1m\" }"
    } else {
        ""
    };
    let lead = lead & 0x7f;
    if let Ok(berlin) = jiff::tz::TimeZone::get("Europe/Berlin") {
        let _ = parse_time(text, &berlin);
    }
    if let Err(e) = CronExpr::parse(text) {
        assert!(e.offset <= text.len(), "offset {} past the end", e.offset);
    }
    // The daemon's way in: a spec file holding the expression as a TOML string.
    let escaped: String = text
        .chars()
        .flat_map(|ch| match ch {
            '"' | '\\' => vec!['\\', ch],
            c if c.is_control() => format!("\\u{:04x}", c as u32).chars().collect(),
            c => vec![c],
        })
        .collect();
    let spec = format!(
        "[sip]\nuser = \"u\"\ndomain = \"pbx.test\"\n[call]\nto = \"1\"\n[rtmp]\nurl = \"rtmp://h/a/k\"\n\
         [schedule]\ntimezone = \"Europe/Berlin\"\nlead = \"{lead}m\"\n\
         windows = [{{ cron = \"{escaped}\", duration = \"{minutes}m\" }}{always}]\n"
    );
    let Ok(spec) = sipcast::spec::parse_bytes("cron.toml", spec.as_bytes()) else {
        return;
    };
    let Some(schedule) = spec.schedule else {
        return;
    };
    let Ok(now) = jiff::Timestamp::from_second(BASE + offset) else {
        return;
    };
    let state = schedule.state_at(now);
    if let Some(edge) = state.next_edge() {
        assert!(edge > now, "edge {edge} not after {now}");
    }
    if state.in_window {
        assert!(state.next_change.is_some_and(|c| c > now));
    }
    let _ = schedule.windows(now, 3);
});
