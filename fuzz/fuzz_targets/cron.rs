//! Cron expressions and window times come from spec files: parsing must never panic, and an
//! error's offset must point inside the input. A parsed expression must evaluate without panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sipcast::schedule::{CronExpr, Schedule, WindowRule, parse_time};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(berlin) = jiff::tz::TimeZone::get("Europe/Berlin") else {
        return;
    };
    let _ = parse_time(text, &berlin);
    match CronExpr::parse(text) {
        Err(e) => assert!(e.offset <= text.len(), "offset {} past the end", e.offset),
        Ok(cron) => {
            let rules = vec![WindowRule::Cron {
                cron,
                duration: Duration::from_secs(90 * 60),
            }];
            if let Ok(schedule) = Schedule::new("Europe/Berlin", Duration::from_secs(60), rules) {
                let now = jiff::Timestamp::from_second(1_793_000_000).unwrap_or_default();
                let _ = schedule.state_at(now);
                let _ = schedule.windows(now, 3);
            }
        }
    }
});
